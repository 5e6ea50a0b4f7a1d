"""Calibrate and check the ReasonSynth verifier's bounds. Prints ONE JSON object.

For every adversarial and near-perfect output of :mod:`reasonbrain.evaluation.adversarial` on a
ReasonSynth split: reasoning accuracy under the calibrated rule and under the old "nearest
candidate" rule (overall and on the worst family), and the distribution (5th / 50th / 95th
percentile) of the two quantities the bounds act on — ``edit_ratio`` (how much of the
source→target distance inside the mask is left) and ``background_error`` (mean change outside the
edited regions). With ``--runs``, the same for real evaluation runs (their ``samples.jsonl`` and
``images/``), so the bounds can be read against what models actually produce.

    python benchmarks/verifier_calibration.py --data data/reasonsynth --split test \\
        [--runs reports/eval/reasonbrain --runs reports/eval/ip2p]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from reasonbrain.data.schema import Record, read_manifest
from reasonbrain.evaluation.adversarial import ADVERSARIES, BENIGN, Case, to_image
from reasonbrain.evaluation.images import BoolMask, FloatImage, load_rgb, to_array
from reasonbrain.evaluation.protocols import load_refs
from reasonbrain.evaluation.verifier import Verdict, VerifierConfig, verify


def _cases(root: Path, split: str) -> Iterator[tuple[Record, Case, BoolMask]]:
    """The split's verifiable records, their references loaded as the evaluation loads them
    (``protocols.load_refs``: paths kept inside the dataset, the mask at the target's size)."""
    for i, rec in enumerate(read_manifest(root / f"{split}.jsonl")):
        if "counterfactuals" not in (rec.meta or {}):
            continue
        refs = load_refs(rec, root)
        if refs.target is None or refs.mask is None:
            continue
        cfs = {k: to_array(v) for k, v in refs.counterfactuals.items()}
        yield rec, Case(to_array(refs.source), to_array(refs.target), cfs, i), refs.mask


def _pct(values: list[float]) -> list[float] | None:
    v = [x for x in values if x is not None]
    return [round(float(p), 4) for p in np.percentile(v, [5, 50, 95])] if v else None


def _summary(verdicts: list[tuple[str, Verdict]]) -> dict[str, Any]:
    ok = [(f, v) for f, v in verdicts if v.verifiable]
    new: dict[str, list[bool]] = defaultdict(list)
    old: dict[str, list[bool]] = defaultdict(list)
    for family, v in ok:
        new[family].append(bool(v.correct))
        old[family].append(bool(v.correct_nearest))

    def worst(acc: dict[str, list[bool]]) -> dict[str, Any]:
        fam = max(acc, key=lambda f: float(np.mean(acc[f])))
        return {"family": fam, "accuracy": round(float(np.mean(acc[fam])), 4)}

    outcomes: dict[str, int] = defaultdict(int)
    for _, v in ok:
        outcomes[v.outcome] += 1
    return {
        "n": len(ok),
        "accuracy": round(float(np.mean([v.correct for _, v in ok])), 4),
        "accuracy_nearest_rule": round(float(np.mean([v.correct_nearest for _, v in ok])), 4),
        "worst_family": worst(new),
        "worst_family_nearest_rule": worst(old),
        "edit_ratio_p5_p50_p95": _pct([v.edit_ratio for _, v in ok]),  # type: ignore[misc]
        # among outputs the nearest rule calls right: how far from pixel-accurate they are
        "edit_ratio_nearest_target_p5_p50_p95": _pct(
            [v.edit_ratio for _, v in ok if v.correct_nearest]  # type: ignore[misc]
        ),
        "background_error_p5_p50_p95": _pct([v.background_error for _, v in ok]),  # type: ignore[misc]
        "outcomes": dict(sorted(outcomes.items())),
    }


def _score(
    cases: list[tuple[Record, Case, BoolMask]],
    make: Callable[[Record, Case], FloatImage | None],
    config: VerifierConfig,
) -> dict[str, Any]:
    verdicts = []
    for rec, case, mask in cases:
        out = make(rec, case)
        if out is not None:
            v = verify(out, case.target, case.counterfactuals, mask, config)
            verdicts.append((str((rec.meta or {})["family"]), v))
    return _summary(verdicts)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--runs", type=Path, action="append", default=[], help="evaluation out dirs")
    ap.add_argument("--edit-bound", type=float, default=VerifierConfig.edit_bound)
    ap.add_argument("--background-bound", type=float, default=VerifierConfig.background_bound)
    args = ap.parse_args(argv)
    config = VerifierConfig(edit_bound=args.edit_bound, background_bound=args.background_bound)
    cases = list(_cases(args.data, args.split))
    result: dict[str, Any] = {
        "data": str(args.data),
        "split": args.split,
        "samples": len(cases),
        "config": {"edit_bound": config.edit_bound, "background_bound": config.background_bound},
        "adversarial": {},
        "near_perfect": {},
        "runs": {},
    }
    for group, table in (("adversarial", ADVERSARIES), ("near_perfect", BENIGN)):
        for name, adversary in table.items():

            def make(_rec: Record, case: Case, fn: Any = adversary) -> FloatImage:
                return to_array(to_image(fn(case)))

            result[group][name] = _score(cases, make, config)
    for run in args.runs:
        rows = {
            r["id"]: r
            for r in map(json.loads, (run / "samples.jsonl").read_text().splitlines())
            if r.get("image")
        }

        def from_run(rec: Record, case: Case, rows: Any = rows, run: Path = run) -> Any:
            row = rows.get(rec.id)
            if row is None:
                return None
            return to_array(load_rgb(run / row["image"]), case.target.shape[1::-1])

        result["runs"][str(run)] = _score(cases, from_run, config)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
