"""Hand-built datasets for the validation tests (tiny PIL images; no generator involved).

``make_valid_dataset`` writes a small dataset that passes every check: 4 train rows (two of them
share one source image, as several edits of one photo do), 2 val and 2 test rows with
ReasonSynth-style ``meta`` (a mask and three counterfactual images). The helpers below rewrite
single records or files so that a test can break exactly one rule.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

SIZE = 32
_COUNTERFACTUALS = ("no_change", "wrong_object", "wrong_change")


def write_image(
    path: Path, seed: int, size: tuple[int, int] = (SIZE, SIZE), mode: str = "RGB"
) -> str:
    """Write a random-noise image (content unique per ``seed``); returns its name under root."""
    rng = np.random.default_rng(seed)
    w, h = size
    channels = {"RGB": 3, "RGBA": 4}.get(mode)
    shape = (h, w, channels) if channels else (h, w)
    arr = rng.integers(0, 256, size=shape, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).convert(mode).save(path)
    return path.name


def write_mask(path: Path, size: tuple[int, int] = (SIZE, SIZE), mode: str = "L") -> None:
    """Write a mask with a square of ones in the middle."""
    w, h = size
    arr = np.zeros((h, w), dtype=np.uint8)
    arr[h // 4 : h // 2, w // 4 : w // 2] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).convert(mode).save(path)


_ROWS: list[dict[str, Any]] = [
    # split, objects, instruction
    {
        "split": "train",
        "objects": ["ice cube"],
        "instruction": "What would happen if the ice cube were left in the sun?",
    },
    {
        "split": "train",
        "objects": ["red candle"],
        # the head noun ("candle") is enough to count as a mention
        "instruction": "Imagine the candle on the left after burning for five hours.",
    },
    {
        "split": "train",
        "objects": ["banana"],
        "instruction": "Suppose two weeks pass: what happens to the bananas?",
        "src_from": 2,  # shares row 2's source image (several edits of one picture)
    },
    {
        "split": "train",
        "objects": ["glass of water", "table"],
        "instruction": "What if the glass were pushed off the table?",
    },
    {
        "split": "val",
        "objects": ["balloon"],
        "instruction": "What would happen if the balloon were released?",
    },
    {
        "split": "val",
        "objects": ["snowman"],
        "instruction": "Imagine the snowman in spring.",
    },
    {
        "split": "test",
        "objects": ["sapling"],
        "instruction": "What would the sapling look like after fifty years?",
    },
    {
        "split": "test",
        "objects": ["first domino"],
        "instruction": "Suppose the first domino is pushed: what happens next?",
    },
]
_CATEGORIES = ("physical", "temporal", "causal", "story")


def make_valid_dataset(root: Path) -> Path:
    """Write the valid fixture dataset under ``root`` and return ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    by_split: dict[str, list[dict[str, Any]]] = {"train": [], "val": [], "test": []}
    for i, spec in enumerate(_ROWS, start=1):
        split = spec["split"]
        src_row = spec.get("src_from", i)
        src = f"images/src/{src_row:03d}.png"
        if src_row == i:
            write_image(root / src, seed=i)
        tgt = f"images/tgt/{i:03d}.png"
        write_image(root / tgt, seed=1000 + i)
        rec: dict[str, Any] = {
            "id": f"{split}-{i:03d}",
            "category": _CATEGORIES[i % 4],
            "src_image": src,
            "tgt_image": tgt,
            "instruction": spec["instruction"],
            "objects": spec["objects"],
            "target_caption": "the outcome",
        }
        if split != "train":
            mask = f"images/mask/{i:03d}.png"
            write_mask(root / mask)
            cfs = {}
            for k, kind in enumerate(_COUNTERFACTUALS):
                cfs[kind] = f"images/cf/{i:03d}_{kind}.png"
                write_image(root / cfs[kind], seed=2000 + 10 * i + k)
            rec["meta"] = {
                "family": "melt",
                "affected_object": spec["objects"][0],
                "mask": mask,
                "counterfactuals": cfs,
                "holdout": "seen",
            }
        by_split[split].append(rec)
    for split, recs in by_split.items():
        write_records(root, split, recs)
    return root


def read_records(root: Path, split: str) -> list[dict[str, Any]]:
    """The records of one split as dicts."""
    lines = (root / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def write_records(root: Path, split: str, recs: list[dict[str, Any]]) -> None:
    """Write one split's manifest from dicts."""
    text = "".join(json.dumps(r) + "\n" for r in recs)
    (root / f"{split}.jsonl").write_text(text, encoding="utf-8")


def update_record(root: Path, split: str, index: int, **changes: Any) -> dict[str, Any]:
    """Change fields of record ``index`` (0-based) of ``split``; returns the new record."""
    recs = read_records(root, split)
    recs[index].update(changes)
    write_records(root, split, recs)
    return recs[index]


def append_line(root: Path, split: str, line: str | bytes) -> int:
    """Append a raw line to a manifest; returns its 1-based line number."""
    path = root / f"{split}.jsonl"
    data = line if isinstance(line, bytes) else line.encode("utf-8")
    n_before = len(path.read_bytes().splitlines())
    with path.open("ab") as fh:
        fh.write(data + b"\n")
    return n_before + 1
