"""The best reasoning accuracy *any* editor can reach from what the source image shows.

ReasonSynth draws the affected object at a continuous centre ``cx`` (uniform over ±1 layout
unit around its slot, half a pixel either way at 32 px) and with a mirror ``variant`` (±1).
Rasterised at 32 px without anti-aliasing, many ``(cx, variant)`` give the *same* source image
but different outcome images: an outcome's edges can move by a pixel while the object's do
not. Those outcomes are equally likely given the source and the instruction, so no editor can
tell which one is the true target. This script measures what that costs under the calibrated
verifier (``reasonbrain.evaluation.verifier``), per record of a split:

1. rebuild the record's scene from the generator's seed (``sample_of``) and check that it
   renders the stored source byte for byte;
2. re-render the source for ``cx`` on a fine grid over the generator's range and both variants
   and keep the *consistent* ones (same source bytes); render their outcomes;
3. score, with the real verifier and the record's real counterfactuals and mask:
   - ``conditional_mean``: the pixel mean of the consistent outcomes — what a model trained
     with MSE on x0 (our L_DM) converges to with unlimited capacity and data;
   - ``conditional_median``: the pixel median (the L1 optimum, ``model.dm_loss=l1``);
   - ``perfect_sampler``: one consistent outcome drawn at random — a sampler that commits to
     a sharp, plausible outcome (the accuracy is the expected one over the consistent set);
   - ``oracle``: the true target (100 % by construction).

Prints ONE JSON object::

    python benchmarks/verifier_ceiling.py --data data/reasonsynth --split test [--grid 101]

Assumed and not measured: background details hidden behind the object are visible elsewhere
(clouds, the sun and the ground never pass behind objects in the layouts), so ``cx`` and
``variant`` are the only hidden variables.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from reasonbrain.config import SynthParams
from reasonbrain.data.schema import read_manifest
from reasonbrain.data.synth.canvas import UNITS
from reasonbrain.data.synth.generate import plan, sample_of
from reasonbrain.data.synth.scene import AFFECTED, Scene
from reasonbrain.evaluation.images import FloatImage, to_array
from reasonbrain.evaluation.protocols import SampleRefs, load_refs
from reasonbrain.evaluation.verifier import Verdict, VerifierConfig, verify

PREDICTORS = ("conditional_mean", "conditional_median", "perfect_sampler", "oracle")


def _with_affected(scene: Scene, cx: float, variant: int) -> Scene:
    objs = list(scene.objects)
    objs[AFFECTED] = replace(objs[AFFECTED], cx=cx, variant=variant)
    return replace(scene, objects=(objs[0], objs[1], objs[2]))


def consistent_outcomes(scene: Scene, after: Any, grid: int) -> tuple[list[np.ndarray], int]:
    """Outcome images (uint8) of every grid ``(cx, variant)`` whose source equals ``scene``'s
    (the scene's own outcome when no grid point is consistent), and how many are distinct."""
    src = np.asarray(scene.render()[0])
    centre = (2 * scene.objects[AFFECTED].slot + 1) * UNITS / 6
    outcomes: list[np.ndarray] = []
    for variant in (1, -1):
        for cx in np.linspace(centre - 1.0, centre + 1.0, grid):
            alt = _with_affected(scene, float(cx), variant)
            if np.array_equal(np.asarray(alt.render()[0]), src):
                outcomes.append(np.asarray(alt.render({AFFECTED: after})[0]))
    if not outcomes:  # the source pins cx down to less than one grid step: use the true one
        obj = scene.objects[AFFECTED]
        outcomes.append(
            np.asarray(_with_affected(scene, obj.cx, obj.variant).render({AFFECTED: after})[0])
        )
    distinct = len({o.tobytes() for o in outcomes})
    return outcomes, distinct


def score_predictors(
    refs: SampleRefs, outcomes: list[np.ndarray], cfg: VerifierConfig
) -> dict[str, list[Verdict]]:
    """The verifier's verdicts on each predictor of the module docstring for one record."""
    assert refs.target is not None and refs.mask is not None  # a ReasonSynth record's refs
    src, tgt = to_array(refs.source), to_array(refs.target)
    cfs = {k: to_array(v) for k, v in refs.counterfactuals.items()}
    mask = refs.mask
    stack = np.stack([o.astype(np.float32) / 255.0 for o in outcomes])

    def score(output: FloatImage) -> Verdict:
        return verify(output, tgt, cfs, mask, cfg, source=src)

    return {
        "conditional_mean": [score(stack.mean(axis=0))],
        "conditional_median": [score(np.median(stack, axis=0))],
        "perfect_sampler": [score(o) for o in stack],
        "oracle": [score(tgt)],
    }


def _pct(values: list[float]) -> list[float]:
    return [round(float(p), 4) for p in np.percentile(values, [5, 50, 95])]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="a ReasonSynth dataset directory")
    ap.add_argument("--split", default="test", choices=["val", "test"])
    ap.add_argument("--grid", type=int, default=101, help="cx values per variant")
    ap.add_argument("--limit", type=int, default=0, help="first N records only (0 = all)")
    args = ap.parse_args(argv)

    info_path = args.data / "reasonsynth.json"
    if not info_path.is_file():
        print(
            f"error: {info_path} not found: --data must be a ReasonSynth dataset", file=sys.stderr
        )
        return 2
    params = SynthParams(**json.loads(info_path.read_text(encoding="utf-8"))["params"])
    specs = {s.id: s for s in plan(params) if s.split == args.split}
    records = list(read_manifest(args.data / f"{args.split}.jsonl"))
    if args.limit:
        records = records[: args.limit]
    cfg = VerifierConfig()
    correct: dict[str, list[float]] = defaultdict(list)
    edit_left: dict[str, list[float]] = defaultdict(list)
    by_family: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    distinct_counts: list[int] = []
    for rec in records:
        spec = specs.get(rec.id)
        rebuilt = sample_of(spec, params.size, params.seed) if spec else None
        try:
            refs = load_refs(rec, args.data)  # what the evaluation compares with, loaded its way
        except OSError as err:  # a missing or unreadable image (PIL raises OSError subclasses)
            print(
                f"error: {rec.id}: cannot read its reference images ({err}); the dataset is "
                f"incomplete: regenerate it (`reasonbrain data prepare`)",
                file=sys.stderr,
            )
            return 2
        src_img = np.asarray(refs.source)
        if rebuilt is None or not np.array_equal(np.asarray(rebuilt[1].render()[0]), src_img):
            print(
                f"error: {rec.id}: the generator does not re-render this source; the dataset "
                "was made by other code or params: regenerate it (`reasonbrain data prepare`)",
                file=sys.stderr,
            )
            return 2
        family, scene, _ = rebuilt
        outcomes, distinct = consistent_outcomes(scene, family.after, args.grid)
        distinct_counts.append(distinct)
        verdicts = score_predictors(refs, outcomes, cfg)
        for name, vs in verdicts.items():
            acc = float(np.mean([bool(v.correct) for v in vs]))
            correct[name].append(acc)
            by_family[name][family.name].append(acc)
            edit_left[name].append(float(np.mean([v.edit_ratio or 0.0 for v in vs])))
    n = len(distinct_counts)
    out: dict[str, Any] = {
        "split": args.split,
        "n": n,
        "grid": args.grid,
        "source_determines_target": round(float(np.mean([d == 1 for d in distinct_counts])), 4),
        "distinct_outcomes_p5_p50_p95": _pct([float(d) for d in distinct_counts]),
        "accuracy": {k: round(float(np.mean(correct[k])), 4) for k in PREDICTORS},
        "edit_ratio_p5_p50_p95": {k: _pct(edit_left[k]) for k in PREDICTORS},
        "worst_family": {
            k: min(
                ((f, round(float(np.mean(v)), 4)) for f, v in by_family[k].items()),
                key=lambda fv: fv[1],
            )
            for k in PREDICTORS
        },
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
