"""Generate a ReasonSynth dataset in the Reason50K layout, in parallel and deterministically.

The main process *plans* every sample (split, index, family, hold-out) from the seed; workers
*render* chunks of planned samples, each from its own RNG derived from ``(seed, split, index)``
with :class:`numpy.random.SeedSequence`. Nothing depends on the number of workers, the order
in which chunks finish, dict order or the clock, so the same seed gives byte-identical files.

Layout written (all paths in the manifests are relative to the dataset root)::

    train.jsonl  val.jsonl  test.jsonl  reasonsynth.json
    images/src/<id>.png   images/tgt/<id>.png   images/mask/<id>.png (L, 0/255)
    images/cf/<id>_wrong_object.png   images/cf/<id>_wrong_change.png   (val/test only)

The ``no_change`` counterfactual is the source image itself, so it points at ``src_image``.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from reasonbrain.config import CATEGORIES, SynthParams
from reasonbrain.data.prepare import DatasetSummary
from reasonbrain.data.schema import SPLITS, Record, atomic_write_text, manifest_path, write_manifest
from reasonbrain.data.staging import staged_dir
from reasonbrain.data.synth.families import FAMILIES, families_in, resolve_wrong
from reasonbrain.data.synth.family import Family
from reasonbrain.data.synth.instructions import Instruction, compose, full_name
from reasonbrain.data.synth.scene import (
    AFFECTED,
    SLOT_NAMES,
    TWIN,
    Scene,
    affected_mask,
    sample_scene,
)

FORMAT_VERSION = 1
HOLDOUTS: tuple[str, ...] = ("seen", "phrasing", "combination")
PNG_OPTIONS: dict[str, Any] = {"format": "PNG", "compress_level": 6, "optimize": False}
"""Fixed PNG options: PIL writes no timestamp or other varying chunk with these."""

IMAGE_DIRS: tuple[str, ...] = ("images/src", "images/tgt", "images/mask", "images/cf")
ROLES: tuple[str, ...] = ("affected", "twin", "other")


@dataclass(frozen=True)
class SampleSpec:
    """One planned sample: where it goes and what it shows."""

    split: str
    index: int
    family: int
    holdout: str

    @property
    def id(self) -> str:
        """Record id, e.g. ``train-000123``."""
        return f"{self.split}-{self.index:06d}"


# ------------------------------------------------------------------------------- planning
def _seed_entropy(seed: int) -> int:
    return seed % (1 << 64)


def category_counts(n: int, proportions: dict[str, float]) -> dict[str, int]:
    """Split ``n`` samples over categories by largest remainder (ties in category order)."""
    weights = [max(0.0, float(proportions.get(c, 0.0))) for c in CATEGORIES]
    total = sum(weights)
    quotas = [n * w / total for w in weights]
    counts = [math.floor(q) for q in quotas]
    order = sorted(range(len(CATEGORIES)), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return dict(zip(CATEGORIES, counts, strict=True))


def plan(params: SynthParams) -> list[SampleSpec]:
    """Every sample of every split, in manifest order.

    Categories are shuffled within a split; families cycle within their category (so each
    family gets its share); test samples cycle through the hold-outs per family.
    """
    specs: list[SampleSpec] = []
    index_of = {f.name: i for i, f in enumerate(FAMILIES)}
    for code, split in enumerate(SPLITS):
        n = int(getattr(params, f"n_{split}"))
        counts = category_counts(n, params.categories)
        cats = [c for c in CATEGORIES for _ in range(counts[c])]
        rng = np.random.default_rng(
            np.random.SeedSequence([_seed_entropy(params.seed), 1000 + code])
        )
        order = [cats[int(i)] for i in rng.permutation(len(cats))]
        cycles = {c: [index_of[f.name] for f in families_in(c)] for c in CATEGORIES}
        for c in CATEGORIES:
            fams = cycles[c]
            cycles[c] = [fams[int(i)] for i in rng.permutation(len(fams))]
        seen_cat = dict.fromkeys(CATEGORIES, 0)
        seen_fam = [0] * len(FAMILIES)
        for index, cat in enumerate(order):
            fam = cycles[cat][seen_cat[cat] % len(cycles[cat])]
            seen_cat[cat] += 1
            holdout = HOLDOUTS[seen_fam[fam] % len(HOLDOUTS)] if split == "test" else "seen"
            seen_fam[fam] += 1
            specs.append(SampleSpec(split, index, fam, holdout))
    return specs


# ------------------------------------------------------------------------------ rendering
def _save(img: Image.Image, root: Path, rel: str) -> str:
    img.save(root / rel, **PNG_OPTIONS)
    return rel


def sample_of(spec: SampleSpec, size: int, seed: int) -> tuple[Family, Scene, Instruction]:
    """The family, scene and instruction of a planned sample (nothing is rendered or written).

    Every random choice of the sample is made here, from its own RNG, in a fixed order.
    """
    split_code = SPLITS.index(spec.split)
    rng = np.random.default_rng(
        np.random.SeedSequence([_seed_entropy(seed), split_code, spec.index])
    )
    family = FAMILIES[spec.family]
    if spec.holdout == "combination":
        colour = family.held_out_colour()
    else:
        choices = family.train_colours()
        colour = choices[int(rng.integers(len(choices)))]
    scene = sample_scene(family, colour, size, rng)
    return family, scene, compose(family, scene.objects[AFFECTED], spec.holdout, rng)


def render_sample(spec: SampleSpec, root: Path, size: int, seed: int) -> dict[str, Any]:
    """Render and write one sample's images; return its manifest record as a dict."""
    family, scene, instr = sample_of(spec, size, seed)
    affected = scene.objects[AFFECTED]

    src, boxes = scene.render()
    tgt, _ = scene.render({AFFECTED: family.after})
    src_a = np.asarray(src)
    mask = affected_mask(src_a, np.asarray(tgt), radius=max(1, round(size / 32)))
    sid = spec.id
    src_rel = _save(src, root, f"images/src/{sid}.png")
    tgt_rel = _save(tgt, root, f"images/tgt/{sid}.png")
    mask_rel = _save(
        Image.fromarray(mask.astype(np.uint8) * 255, mode="L"), root, f"images/mask/{sid}.png"
    )

    counterfactuals: dict[str, str] = {}
    wrong_painter, wrong_name = resolve_wrong(family)
    if spec.split != "train":
        wrong_obj, _ = scene.render({TWIN: family.after})
        wrong_change, _ = scene.render({AFFECTED: wrong_painter})
        counterfactuals = {
            "no_change": src_rel,
            "wrong_object": _save(wrong_obj, root, f"images/cf/{sid}_wrong_object.png"),
            "wrong_change": _save(wrong_change, root, f"images/cf/{sid}_wrong_change.png"),
        }
    objects = [
        {
            "role": ROLES[i],
            "kind": o.kind.name,
            "name": o.kind.named(o.colour),
            "colour": o.colour,
            "size": o.size_word,
            "position": SLOT_NAMES[o.slot],
            "bbox": boxes[i],
        }
        for i, o in enumerate(scene.objects)
    ]
    return {
        "id": sid,
        "category": family.category,
        "src_image": src_rel,
        "tgt_image": tgt_rel,
        "instruction": instr.text,
        "objects": [instr.named],
        "target_caption": instr.caption,
        "meta": {
            "family": family.name,
            "affected_object": full_name(affected),
            "mask": mask_rel,
            "counterfactuals": counterfactuals,
            "holdout": spec.holdout,
            "template": instr.phrasing.id,
            "reference": instr.style,
            "colour": affected.colour,
            "background": scene.background.name,
            "wrong_change": wrong_name,
            "mask_fraction": round(float(mask.mean()), 4),
            "objects": objects,
        },
    }


_WORKER: dict[str, Any] = {}


def _init_worker(root: str, size: int, seed: int) -> None:
    _WORKER.update(root=Path(root), size=size, seed=seed)


def _render_chunk(chunk: Sequence[SampleSpec]) -> list[dict[str, Any]]:
    return [render_sample(s, _WORKER["root"], _WORKER["size"], _WORKER["seed"]) for s in chunk]


def _chunks(specs: Sequence[SampleSpec], size: int) -> Iterator[list[SampleSpec]]:
    for i in range(0, len(specs), size):
        yield list(specs[i : i + size])


def resolve_workers(workers: int) -> int:
    """``0`` means all cores."""
    return workers if workers > 0 else max(1, os.cpu_count() or 1)


def render_all(
    specs: Sequence[SampleSpec], root: Path, params: SynthParams, *, progress: bool
) -> list[dict[str, Any]]:
    """Render every planned sample into ``root`` (in parallel when workers > 1)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    workers = min(resolve_workers(params.workers), max(1, len(specs)))
    chunk = max(1, min(256, math.ceil(len(specs) / (workers * 8)))) if specs else 1
    out: list[dict[str, Any]] = []
    columns = (
        TextColumn("[bold]ReasonSynth[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    if workers == 1:
        _init_worker(str(root), params.size, params.seed)
        with Progress(*columns, disable=not progress) as bar:
            task = bar.add_task("render", total=len(specs))
            for part in _chunks(specs, chunk):
                out.extend(_render_chunk(part))
                bar.advance(task, len(part))
        return out

    import multiprocessing

    # spawn: workers never inherit the parent's threads (rich's refresher, Prefect, Ray …)
    ctx = multiprocessing.get_context("spawn")
    with (
        ctx.Pool(
            workers, initializer=_init_worker, initargs=(str(root), params.size, params.seed)
        ) as pool,
        Progress(*columns, disable=not progress) as bar,
    ):
        task = bar.add_task("render", total=len(specs))
        for done in pool.imap_unordered(_render_chunk, _chunks(specs, chunk)):
            out.extend(done)
            bar.advance(task, len(done))
    return out


def dataset_card(params: SynthParams) -> dict[str, Any]:
    """What ``reasonsynth.json`` records: parameters, families and hold-out rules."""
    from reasonbrain.data.synth.family import TEST_FRAMES

    return {
        "generator": "reasonsynth",
        "format_version": FORMAT_VERSION,
        "params": params.model_dump(mode="json", exclude={"workers"}),
        "families": [
            {
                "name": f.name,
                "category": f.category,
                "kind": f.kind.name,
                "held_out_colour": f.held_out_colour(),
                "train_phrasings": len(f.train_phrasings()),
                "test_phrasings": len(f.test_phrasings()),
            }
            for f in FAMILIES
        ],
        "held_out_frames": list(TEST_FRAMES),
        "holdouts": list(HOLDOUTS),
    }


def generate_dataset(
    out: Path, params: SynthParams, *, force: bool = False, progress: bool = True
) -> DatasetSummary:
    """Generate ReasonSynth into ``out`` (built next to it, swapped in when complete).

    Args:
        out: dataset directory to create.
        params: sizes, image side, seed, category proportions and worker count.
        force: replace a non-empty ``out``.
        progress: show a progress bar.

    Returns:
        Record counts per split and the wall time.

    Raises:
        DatasetError: ``out`` is a file, or a non-empty directory without ``force``.
    """
    start = time.perf_counter()
    specs = plan(params)
    with staged_dir(Path(out), force) as root:
        for d in IMAGE_DIRS:
            (root / d).mkdir(parents=True, exist_ok=True)
        rows = render_all(specs, root, params, progress=progress)
        by_id = {r["id"]: r for r in rows}
        counts: dict[str, int] = {}
        for split in SPLITS:
            records = [Record.model_validate(by_id[s.id]) for s in specs if s.split == split]
            counts[split] = write_manifest(manifest_path(root, split), records)
        atomic_write_text(
            root / "reasonsynth.json", json.dumps(dataset_card(params), indent=2) + "\n"
        )
    return DatasetSummary(counts=counts, seconds=time.perf_counter() - start)
