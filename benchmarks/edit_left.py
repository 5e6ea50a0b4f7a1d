"""How much of the edit a model leaves undone, on any split — the training split included.

The verifier (``reasonbrain.evaluation.verifier``) needs counterfactual outcomes, which only
val and test records carry, so an evaluation of the *training* split has no verdicts. Its
criterion 2 needs only the source, the target and the mask, which every ReasonSynth record
has: ``edit_ratio = mean |output − target| / mean |source − target|`` over the mask (0 = the
edit is done exactly, 1 = as far from the target as the source). Comparing the training split
with val tells under-fitting (both far from the target) from over-fitting (training close,
val far). Prints ONE JSON object::

    reasonbrain evaluate --model M --split train --limit 300 --out runs/m-train
    reasonbrain evaluate --model M --split val --out runs/m-val
    python benchmarks/edit_left.py --data data/reasonsynth --run train=runs/m-train \\
        --run val=runs/m-val
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from reasonbrain.data.schema import read_manifest
from reasonbrain.evaluation.images import load_mask, load_rgb, to_array
from reasonbrain.evaluation.verifier import VerifierConfig, bounds_check


def _pct(values: list[float]) -> list[float] | None:
    return [round(float(p), 4) for p in np.percentile(values, [5, 50, 95])] if values else None


def edit_left(data: Path, split: str, run: Path, config: VerifierConfig) -> dict[str, Any]:
    """``edit_ratio`` and background error of every scored sample of ``run`` (a ``split``
    evaluation of the dataset ``data``) that has a mask and an image.

    Not ``evaluation.protocols.load_refs``: it loads the mask only for records with
    counterfactuals (the ``reasonsynth`` protocol), and training records have none.
    """
    records = {r.id: r for r in read_manifest(data / f"{split}.jsonl")}
    rows = [json.loads(line) for line in (run / "samples.jsonl").read_text("utf-8").splitlines()]
    if rows and not any(row.get("id") in records for row in rows):
        raise ValueError(
            f"{run} scores none of the {len(records)} records of {split}.jsonl in {data}: "
            "pair each evaluation with the split it evaluated (SPLIT=EVAL_DIR)"
        )
    ratios: list[float] = []
    background: list[float] = []
    for row in rows:
        rec = records.get(row["id"])
        mask_rel = ((rec.meta or {}).get("mask") if rec else None) or None
        if rec is None or not row.get("image") or mask_rel is None:
            continue
        tgt = to_array(load_rgb(data / rec.tgt_image))
        size = tgt.shape[1::-1]
        src = to_array(load_rgb(data / rec.src_image), size)
        out = to_array(load_rgb(run / row["image"]), size)
        ratio, _, bg = bounds_check(out, tgt, src, {}, load_mask(data / mask_rel), config)
        if ratio is not None:
            ratios.append(ratio)
            if bg is not None:
                background.append(bg)
    return {
        "samples": len(ratios),
        "edit_ratio_p5_p50_p95": _pct(ratios),
        "within_edit_bound": round(float(np.mean([r <= config.edit_bound for r in ratios])), 4)
        if ratios
        else None,
        # outside the mask only (no counterfactual regions to leave out on the training split)
        "background_error_p5_p50_p95": _pct(background),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="the evaluated dataset directory")
    ap.add_argument("--run", action="append", required=True, help="SPLIT=EVAL_DIR (repeatable)")
    args = ap.parse_args(argv)
    config = VerifierConfig()
    result: dict[str, Any] = {"data": str(args.data), "edit_bound": config.edit_bound, "runs": {}}
    for spec in args.run:
        split, _, run = spec.partition("=")
        where = Path(run)
        if not run or not (where / "samples.jsonl").is_file():
            print(
                f"error: --run {spec!r}: expected SPLIT=EVAL_DIR with EVAL_DIR/samples.jsonl "
                "(an output directory of `reasonbrain evaluate`)",
                file=sys.stderr,
            )
            return 2
        if not (args.data / f"{split}.jsonl").is_file():
            print(f"error: no {split}.jsonl in {args.data} (--run {spec!r})", file=sys.stderr)
            return 2
        try:
            result["runs"][spec] = edit_left(args.data, split, where, config)
        except ValueError as err:
            print(f"error: --run {spec!r}: {err}", file=sys.stderr)
            return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
