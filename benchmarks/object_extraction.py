"""Benchmark: the object-phrase extractor (``reasonbrain.models.objects``) — accuracy, not speed.

Three sets:

1. **ReasonSynth test split, by hold-out type** (``seen``, ``phrasing``, ``combination``). The
   record's ``objects`` holds the one phrase the instruction names ("orange cake", "banana on the
   purple plate", or just "candle" when the object is named by position). Per sample:
   ``exact`` — an extracted phrase, without its trailing position ("on the left"), equals it;
   ``contains`` — it appears whole inside an extracted phrase ("fuse of the orange firework
   rocket" contains "orange firework rocket"); ``colour_kept`` — for gold phrases with a colour,
   the extracted phrase holding the gold's head noun also holds the colour; ``in_first_k`` —
   ``contains`` within the first ``max_objects`` (4, the tiny preset's) phrases the model keeps.
   The closed-vocabulary matcher it replaces (phrases seen in training, longest match first) is
   scored the same way (``closed_vocabulary``).
2. **Imported benchmark fixtures** (the importer tests' MagicBrush and Reason-Edit builders, run
   through the real importers): their few instructions, annotated by hand here.
3. **Open-domain instructions** written for this benchmark in the styles of MagicBrush, Emu Edit,
   InstructPix2Pix and Reason-Edit (not copied from them), annotated by hand with the object
   phrases an editor needs. Scored as phrase-level precision/recall (exact text) and head-noun
   recall.

Prints ONE JSON object::

    python benchmarks/object_extraction.py                    # generates ReasonSynth (default
                                                              # params) in a temp directory
    python benchmarks/object_extraction.py --data data/reasonsynth
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: the fixtures' instructions (tests/data/test_importers_fixtures.py) → gold object phrases
FIXTURE_GOLD: dict[str, list[str]] = {
    "make it brighter, step 1": [],
    "make it brighter, step 2": [],
    "Replace the left cup with a bowl": ["left cup", "bowl"],
    "Remove the right apple": ["right apple"],
    "What could keep me warm?": [],
}

#: open-domain instructions in the benchmarks' styles → gold object phrases
OPEN_DOMAIN: list[tuple[str, list[str]]] = [
    # MagicBrush-style (short imperative, local edits)
    ("make the sky pink", ["sky"]),
    ("put a hat on the dog", ["hat", "dog"]),
    ("let the woman hold an umbrella", ["woman", "umbrella"]),
    ("change the red car to a blue truck", ["red car", "blue truck"]),
    ("remove the bird from the fence", ["bird", "fence"]),
    ("add a vase of flowers on the table", ["vase of flowers", "table"]),
    ("have the cat wear sunglasses", ["cat", "sunglasses"]),
    ("the clock should say midnight", ["clock"]),
    ("turn the grass into snow", ["grass", "snow"]),
    ("make the man on the left smile", ["man on the left"]),
    # Emu Edit-style (task-typed)
    ("Change the background to a beach", ["background", "beach"]),
    ("Add a rainbow to the sky", ["rainbow", "sky"]),
    ("Remove the person in the red jacket", ["person in the red jacket"]),
    ("Replace the wooden chair with a leather sofa", ["wooden chair", "leather sofa"]),
    ("Make the image look like a watercolor painting", ["watercolor painting"]),
    ("Change the color of the bus to yellow", ["bus"]),
    ("Add the text 'OPEN' on the door", ["text", "door"]),
    ("Make it nighttime", []),
    # InstructPix2Pix-style
    ("turn him into a cyborg", ["cyborg"]),
    ("make the mountains snowy", ["mountains"]),
    ("swap the apples for oranges", ["apples", "oranges"]),
    ("what if the house was made of gingerbread", ["house", "gingerbread"]),
    ("give the horse a saddle", ["horse", "saddle"]),
    ("make the lake frozen", ["lake"]),
    # Reason-Edit-style (spatial, size, colour, reasoning)
    ("Change the left apple to a pear", ["left apple", "pear"]),
    ("Remove the bigger dog", ["bigger dog"]),
    ("Make the small cup on the right green", ["small cup on the right"]),
    ("Replace the middle bottle with a candle", ["middle bottle", "candle"]),
    ("Change the color of the rightmost car to black", ["rightmost car"]),
    ("What can I use to cut the bread?", ["bread"]),
    ("Remove the object that is used for writing", ["object"]),
    ("Make the food that monkeys like purple", ["food", "monkeys"]),
]


def _norm(text: str) -> str:
    return " " + " ".join(text.lower().split()) + " "


def closed_vocabulary(instruction: str, phrases: Iterable[str], max_objects: int) -> list[str]:
    """The extractor this benchmark's extractor replaced: training phrases matched in the text,
    longest first, non-overlapping, in order of appearance (kept here only to compare)."""
    text = instruction.lower()
    taken = [False] * len(text)
    hits: list[tuple[int, str]] = []
    for phrase in sorted({p.strip().lower() for p in phrases if p.strip()}, key=len, reverse=True):
        for m in re.finditer(rf"\b{re.escape(phrase)}\b", text):
            if not any(taken[m.start() : m.end()]):
                taken[m.start() : m.end()] = [True] * (m.end() - m.start())
                hits.append((m.start(), phrase))
    return [p for _, p in sorted(hits)][:max_objects]


def _head(gold: str, colours: frozenset[str]) -> str:
    """The gold phrase's head noun: its last word before any preposition, colours aside."""
    words = []
    for w in gold.split():
        if w in ("on", "in", "with", "of"):
            break
        words.append(w)
    return [w for w in words if w not in colours][-1]


def _score_synth(
    records: list[Any], extract: Any, colours: frozenset[str], k: int
) -> dict[str, dict[str, Any]]:
    """``extract(text) -> [(phrase, phrase without its trailing position)]``."""
    by: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in records:
        gold = r.objects[0].lower()
        found = extract(r.instruction)
        phrases = [p for p, _ in found]
        row = by[(r.meta or {}).get("holdout", "seen")]
        row["n"] += 1
        row["exact"] += any(core == gold for _, core in found)
        row["contains"] += any(_norm(gold) in _norm(p) for p in phrases)
        row["in_first_k"] += any(_norm(gold) in _norm(p) for p in phrases[:k])
        row["phrases"] += len(phrases)
        gold_colours = [w for w in gold.split() if w in colours]
        if gold_colours:
            row["with_colour"] += 1
            noun = _head(gold, colours)
            holding = [p for p in phrases if f" {noun} " in _norm(p)]
            row["colour_kept"] += bool(holding) and all(
                any(f" {c} " in _norm(p) for c in gold_colours) for p in holding
            )
    out: dict[str, dict[str, Any]] = {}
    for key, row in sorted(by.items()):
        n = row["n"]
        out[key] = {
            "n": int(n),
            "exact": round(row["exact"] / n, 4),
            "contains": round(row["contains"] / n, 4),
            "in_first_k": round(row["in_first_k"] / n, 4),
            "colour_kept": f"{int(row['colour_kept'])}/{int(row['with_colour'])}",
            "phrases_per_instruction": round(row["phrases"] / n, 2),
        }
    return out


def _score_open(items: list[tuple[str, list[str]]], extract: Any) -> dict[str, Any]:
    tp = n_pred = n_gold = heads = 0
    misses = []
    for text, gold in items:
        pred = extract(text)
        n_pred += len(pred)
        n_gold += len(gold)
        hit = sum(1 for g in gold if g in pred)
        tp += hit
        heads += sum(1 for g in gold if any(f" {g.split()[-1]} " in _norm(p) for p in pred))
        if hit < len(gold) or len(pred) > len(gold):
            misses.append({"instruction": text, "gold": gold, "extracted": pred})
    return {
        "instructions": len(items),
        "precision": round(tp / max(1, n_pred), 4),
        "recall": round(tp / max(1, n_gold), 4),
        "head_recall": round(heads / max(1, n_gold), 4),
        "disagreements": misses,
    }


def _fixture_instructions(work: Path) -> list[str]:
    from reasonbrain.data.importers import import_dataset
    from reasonbrain.data.schema import SPLITS, manifest_path, read_manifest
    from tests.data.test_importers_fixtures import make_magicbrush, make_reason_edit

    texts: list[str] = []
    for fmt, build in (("magicbrush", make_magicbrush), ("reason_edit", make_reason_edit)):
        src = build(work / f"{fmt}-src")
        out = work / f"{fmt}-out"
        import_dataset(fmt, src, out)
        for split in SPLITS:
            texts += [r.instruction for r in read_manifest(manifest_path(out, split))]
    return texts


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark and print/return its JSON result."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, help="a ReasonSynth dataset (default: generate one)")
    ap.add_argument("--max-objects", type=int, default=4, help="phrases the model keeps")
    args = ap.parse_args(argv)

    from reasonbrain.config import SynthParams
    from reasonbrain.data.schema import manifest_path, read_manifest
    from reasonbrain.data.synth.canvas import COLOUR_NAMES
    from reasonbrain.models.objects import COLOURS, extract_phrases

    def ours(text: str) -> list[str]:
        return [p.text for p in extract_phrases(text)]

    def ours_with_core(text: str) -> list[tuple[str, str]]:
        return [(p.text, p.core) for p in extract_phrases(text)]

    with tempfile.TemporaryDirectory(prefix="rb-extract-") as tmp:
        data = args.data
        if data is None:
            from reasonbrain.data.synth.generate import generate_dataset

            data = Path(tmp) / "reasonsynth"
            generate_dataset(data, SynthParams(), progress=False)
        train = read_manifest(manifest_path(data, "train"))
        test = read_manifest(manifest_path(data, "test"))
        vocab = sorted({o for r in train for o in r.objects})
        colours = frozenset(COLOUR_NAMES) | COLOURS
        t0 = time.perf_counter()
        synth = _score_synth(test, ours_with_core, colours, args.max_objects)
        per_ms = (time.perf_counter() - t0) / max(1, len(test)) * 1000
        closed = _score_synth(
            test,
            lambda t: [(p, p) for p in closed_vocabulary(t, vocab, args.max_objects)],
            colours,
            args.max_objects,
        )
        fixtures = _fixture_instructions(Path(tmp))
    unknown = [t for t in fixtures if t not in FIXTURE_GOLD]
    if unknown:
        raise SystemExit(f"fixture instructions without annotation: {unknown}")
    result = {
        "benchmark": "object_extraction",
        "extractor": "pattern-np/1 (textblob's Pattern tagger + chunker, reasonbrain rules)",
        "reasonsynth_test": {
            "dataset": str(args.data or "generated with default params (seed 0)"),
            "extractor": synth,
            "closed_vocabulary": closed,
            "ms_per_instruction": round(per_ms, 3),
        },
        "importer_fixtures": _score_open([(t, FIXTURE_GOLD[t]) for t in fixtures], ours),
        "open_domain": _score_open(OPEN_DOMAIN, ours),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
