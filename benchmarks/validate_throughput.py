"""Validation throughput: rows/s of ``validate_dataset`` end to end (GX suite included).

Issue 2 §5: validating a Reason50K-sized set (51,039 rows) must not take longer than generating
it (the generator's target is >= 200 samples/s), so validation must run >= 200 rows/s.

By default the benchmark writes its own synthetic dataset, worst case for validation: every row
references six distinct 64 px PNGs (source, target, mask and three counterfactuals). It does not
use the ReasonSynth generator, so the figure measures validation only; ``--dataset DIR`` validates
an existing directory instead (e.g. one made by ``reasonbrain data generate``).

Usage::

    .venv/bin/python -m benchmarks.validate_throughput            # 51,039 rows, 306k images
    .venv/bin/python -m benchmarks.validate_throughput --rows 5000
    .venv/bin/python -m benchmarks.validate_throughput --dataset data/reasonsynth

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

REASON50K_ROWS = 51_039
TARGET_ROWS_PER_S = 200.0
_CATEGORIES = ("physical", "temporal", "causal", "story")
_OBJECTS = ("red candle", "ice cube", "glass of water", "banana", "balloon", "snowman")
_COUNTERFACTUALS = ("no_change", "wrong_object", "wrong_change")


def _split_of(i: int, n: int) -> str:
    # Reason50K-like proportions: ~90 % train, 3 % val, 7 % test
    return "train" if i < int(n * 0.9) else ("val" if i < int(n * 0.93) else "test")


def _save(arr: np.ndarray, path: Path) -> None:
    Image.fromarray(arr).save(path, compress_level=1)


def _write_rows(root: str, start: int, stop: int, n: int, size: int) -> list[tuple[str, str]]:
    """Render rows ``start..stop`` (distinct content per row) and return their manifest lines."""
    base = Path(root) / "images"
    lines = []
    for i in range(start, stop):
        # a colour and a square position unique to the row: no two rows share pixels
        colour = np.array([i % 251, (i // 251) % 251, (i // 63001) % 251 + 4], dtype=np.uint8)
        src = np.empty((size, size, 3), dtype=np.uint8)
        src[:] = colour
        q = size // 4
        src[q : 2 * q, q : 2 * q] = (255, 255, 255)
        tgt = src.copy()
        tgt[2 * q : 3 * q, 2 * q : 3 * q] = (255, 0, 0)
        mask = np.zeros((size, size), dtype=np.uint8)
        mask[2 * q : 3 * q, 2 * q : 3 * q] = 255
        name = f"{i:06d}"
        _save(src, base / "src" / f"{name}.png")
        _save(tgt, base / "tgt" / f"{name}.png")
        _save(mask, base / "mask" / f"{name}.png")
        cfs = {}
        for k, kind in enumerate(_COUNTERFACTUALS):
            cf = src.copy()
            cf[0:q, k * q : (k + 1) * q] = (0, 255 - k, 0)
            rel = f"images/cf/{name}_{kind}.png"
            _save(cf, Path(root) / rel)
            cfs[kind] = rel
        obj = _OBJECTS[i % len(_OBJECTS)]
        record = {
            "id": f"bench-{name}",
            "category": _CATEGORIES[i % 4],
            "src_image": f"images/src/{name}.png",
            "tgt_image": f"images/tgt/{name}.png",
            "instruction": f"What would happen to the {obj} after a long hot afternoon?",
            "objects": [obj],
            "meta": {"mask": f"images/mask/{name}.png", "counterfactuals": cfs},
        }
        lines.append((_split_of(i, n), json.dumps(record)))
    return lines


def make_dataset(root: Path, n: int, size: int, workers: int) -> float:
    """Write ``n`` rows under ``root`` with ``workers`` processes; returns seconds taken."""
    t0 = time.perf_counter()
    for sub in ("src", "tgt", "mask", "cf"):
        (root / "images" / sub).mkdir(parents=True, exist_ok=True)
    step = max(1, min(2000, n // (workers * 4) or 1))
    ranges = [(s, min(s + step, n)) for s in range(0, n, step)]
    by_split: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_write_rows, str(root), a, b, n, size) for a, b in ranges]
        for fut in futures:
            for split, line in fut.result():
                by_split[split].append(line)
    for split, lines in by_split.items():
        (root / f"{split}.jsonl").write_text("".join(s + "\n" for s in lines), encoding="utf-8")
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark and print one JSON object (also returned)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=REASON50K_ROWS, help="rows to generate")
    ap.add_argument("--size", type=int, default=64, help="image side in pixels")
    ap.add_argument("--workers", type=int, default=0, help="processes (0 = all cores)")
    ap.add_argument("--dataset", type=Path, default=None, help="validate this directory instead")
    ap.add_argument("--keep", action="store_true", help="keep the generated dataset")
    args = ap.parse_args(argv)

    from reasonbrain.config import ValidateParams
    from reasonbrain.data.validation import validate_dataset

    workers = args.workers or os.cpu_count() or 1
    tmp: Path | None = None
    gen_seconds = None
    if args.dataset is None:
        tmp = Path(tempfile.mkdtemp(prefix="rb-validate-bench-"))
        root = tmp / "ds"
        gen_seconds = make_dataset(root, args.rows, args.size, workers)
    else:
        root = args.dataset
    try:
        t0 = time.perf_counter()
        report = validate_dataset(
            root,
            ValidateParams(),
            report_path=None,
            docs_dir=None,
            quarantine_dir=None,
            workers=workers,
            progress=False,
        )
        seconds = time.perf_counter() - t0
    except BaseException:
        if tmp is not None and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    rate = report.rows / seconds if seconds > 0 else 0.0
    out: dict[str, Any] = {
        "benchmark": "validate_throughput",
        "rows": report.rows,
        "image_files": report.images_probed,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rate, 1),
        "target_rows_per_s": TARGET_ROWS_PER_S,
        "meets_target": rate >= TARGET_ROWS_PER_S,
        "valid": report.ok,
        "stage_seconds": {k: round(v, 2) for k, v in report.timings.items()},
        "workers": workers,
        "cpu_count": os.cpu_count(),
        "image_size": args.size if args.dataset is None else None,
        "generate_seconds": round(gen_seconds, 1) if gen_seconds is not None else None,
        "dataset": str(root) if (args.dataset is not None or args.keep) else None,
    }
    print(json.dumps(out), flush=True)
    # removing ~300k files can take minutes on a slow disk: only after the figure is out
    if tmp is not None and not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


if __name__ == "__main__":
    main()
