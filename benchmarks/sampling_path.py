"""Where along the DDIM path does an edit take shape? Prints ONE JSON object.

Runs a saved model on the first ``--n`` samples of a ReasonSynth split exactly as
``reasonbrain evaluate`` does (same pipeline, eval params from ``params.yaml``, per-sample seeds),
and at every denoising step decodes the pipeline's *guided prediction of the clean image*
(``pred_original_sample``, read through ``callback_on_step_end``). Each prediction is scored by
the verifier: the share of the edit left inside the mask (``edit_ratio``; the calibrated bound is
0.4), the nearest-candidate rule and the calibrated verdict. The last step's prediction *is* the
output the evaluation scores.

What it answers: if the first step's prediction (≈ the model's conditional mean) is already as
far from the target as the output, the sampler is not the lever: the model does not know what
the outcome looks like, and no step count or schedule will draw it. If the prediction improves
along the path and then degrades, the sampler is.

    python benchmarks/sampling_path.py --model models/reasonbrain/model --split val --n 50 \\
        [--grid path.png]   # rows: source | target | prediction at 5 steps | |output - target| x3
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from reasonbrain.config import load_params
from reasonbrain.data.schema import read_manifest
from reasonbrain.data.torch_dataset import to_pil
from reasonbrain.evaluation.images import to_array
from reasonbrain.evaluation.predictors import sample_seed
from reasonbrain.evaluation.protocols import load_refs
from reasonbrain.evaluation.verifier import VerifierConfig, verify
from reasonbrain.inference import ReasonBrainPipeline


def _pct(values: list[float]) -> list[float]:
    return [round(float(p), 4) for p in np.percentile(values, [5, 50, 95])]


def _predictions_along_the_path(
    pipe: ReasonBrainPipeline, ev: Any, sample_id: str, instruction: str, src_img: Image.Image
) -> tuple[list[np.ndarray], list[int]]:
    """The decoded guided x0 prediction after every denoising step, and the timesteps."""
    preds: list[np.ndarray] = []
    ts: list[int] = []

    def keep(
        pipe_: Any, i: int, t: torch.Tensor, tensors: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor] | None:
        x0 = pipe_.model.diffusion.codec.decode(tensors["pred_original_sample"])
        img = to_pil(x0.float().clamp(-1, 1)[0]).resize(src_img.size, Image.Resampling.BICUBIC)
        preds.append(to_array(img))
        ts.append(int(t))
        return None

    pipe(
        image=src_img,
        prompt=instruction,
        num_inference_steps=ev.num_inference_steps,
        guidance_scale=ev.guidance_scale,
        image_guidance_scale=ev.image_guidance_scale,
        generator=torch.Generator().manual_seed(sample_seed(sample_id, ev.seed)),
        callback_on_step_end=keep,
    )
    return preds, ts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="saved model directory")
    ap.add_argument("--data", type=Path, default=Path("data/reasonsynth"))
    ap.add_argument("--split", default="val")
    ap.add_argument("--n", type=int, default=50, help="first N samples of the split")
    ap.add_argument("--params", type=Path, default=None, help="params file (eval section)")
    ap.add_argument("--grid", type=Path, default=None, help="write a montage PNG here")
    args = ap.parse_args()

    ev = load_params(args.params).eval
    cfg = VerifierConfig.from_params(ev)
    pipe = ReasonBrainPipeline.from_pretrained(args.model)
    records = [r for r in read_manifest(args.data / f"{args.split}.jsonl")][: args.n]

    ratios: list[list[float]] = []  # [step][sample]
    nearest: list[list[bool]] = []
    correct: list[list[bool]] = []
    timesteps: list[int] = []
    rows: list[np.ndarray] = []
    for rec in records:
        refs = load_refs(rec, args.data)  # what the evaluation compares with, loaded its way
        if refs.target is None or refs.mask is None or not refs.counterfactuals:
            continue  # not a ReasonSynth record: nothing for the verifier
        size = refs.target.size
        src, tgt = to_array(refs.source, size), to_array(refs.target)
        cfs = {k: to_array(v, size) for k, v in refs.counterfactuals.items()}
        preds, ts = _predictions_along_the_path(pipe, ev, rec.id, rec.instruction, refs.source)
        verdicts = [verify(p, tgt, cfs, refs.mask, cfg) for p in preds]
        if not verdicts[-1].verifiable:
            continue
        if not ratios:
            ratios = [[] for _ in preds]
            nearest = [[] for _ in preds]
            correct = [[] for _ in preds]
            timesteps = ts
        for k, v in enumerate(verdicts):
            ratios[k].append(float(v.edit_ratio if v.edit_ratio is not None else np.nan))
            nearest[k].append(bool(v.correct_nearest))
            correct[k].append(bool(v.correct))
        if args.grid is not None:
            picks = np.linspace(0, len(preds) - 1, 5).round().astype(int)
            diff = np.clip(np.abs(preds[-1] - tgt) * 3, 0, 1)
            rows.append(np.concatenate([src, tgt, *[preds[j] for j in picks], diff], axis=1))

    steps = [
        {
            "step": k + 1,
            "timestep": timesteps[k],
            "edit_ratio_p5_p50_p95": _pct(ratios[k]),
            "nearest_rule": round(float(np.mean(nearest[k])), 4),
            "calibrated": round(float(np.mean(correct[k])), 4),
        }
        for k in range(len(ratios))
    ]
    if args.grid is not None and rows:
        grid = (np.concatenate(rows, axis=0) * 255).round().astype(np.uint8)
        h, w = grid.shape[:2]
        Image.fromarray(grid).resize((w * 4, h * 4), Image.Resampling.NEAREST).save(args.grid)
    print(
        json.dumps(
            {
                "model": args.model,
                "split": args.split,
                "samples": len(ratios[0]) if ratios else 0,
                "num_inference_steps": ev.num_inference_steps,
                "guidance_scale": ev.guidance_scale,
                "edit_bound": cfg.edit_bound,
                "steps": steps,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    import sys

    from reasonbrain.errors import ReasonBrainError

    try:
        main()
    except ReasonBrainError as err:  # a wrong --model / --params: one line, exit 2
        print(f"error: {err.one_line()}", file=sys.stderr)
        raise SystemExit(err.exit_code) from None
