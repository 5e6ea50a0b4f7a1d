"""Is a trained editor under-fitting or failing to generalise? Prints ONE JSON object.

Two figures, both on the *training* split (so held-out effects cannot explain them):

- ``copy_floor_x0_mse``: the x0-prediction denoising loss a model gets by copying the source
  image (mean squared difference source-vs-target in ``[-1, 1]``), next to the model's own final
  ``loss_dm`` from its training log. A final loss near the floor means the model has learned to
  copy and little more.
- ``closer_to_target``: for N training samples edited by the model, how often the output is
  closer (mean squared error inside the affected-region mask) to the target than to the source,
  per guidance setting.

    python benchmarks/learning_diagnostics.py --model models/reasonbrain/model \\
        --log models/reasonbrain/train_log.jsonl --data data/reasonsynth
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def _rgb(root: Path, rel: str) -> np.ndarray:
    return np.asarray(Image.open(root / rel).convert("RGB"), dtype=np.float64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--log", type=Path, required=True, help="train_log.jsonl of the model")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--n-floor", type=int, default=600)
    ap.add_argument("--n-edit", type=int, default=24)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()

    import torch

    from reasonbrain.data.schema import read_manifest
    from reasonbrain.inference import ReasonBrainPipeline

    recs = read_manifest(args.data / "train.jsonl")
    # x0 in [-1, 1]: (src - tgt) / 127.5 in pixel units
    floor = [
        float((((_rgb(args.data, r.src_image) - _rgb(args.data, r.tgt_image)) / 127.5) ** 2).mean())
        for r in recs[: args.n_floor]
    ]
    rows = [json.loads(line) for line in args.log.read_text().splitlines() if line.strip()]
    tail = rows[-20:]

    pipe = ReasonBrainPipeline.from_pretrained(str(args.model))
    sample = recs[: args.n_edit]
    src = [Image.open(args.data / r.src_image).convert("RGB") for r in sample]
    tgt = [_rgb(args.data, r.tgt_image) for r in sample]
    masks = [np.asarray(Image.open(args.data / (r.meta or {})["mask"])) > 0 for r in sample]
    closer: dict[str, Any] = {}
    for gs, igs in ((1.0, 1.0), (2.0, 1.5), (5.0, 1.0)):
        out = pipe(
            image=src,
            prompt=[r.instruction for r in sample],
            num_inference_steps=args.steps,
            guidance_scale=gs,
            image_guidance_scale=igs,
            generator=[torch.Generator().manual_seed(i) for i in range(len(sample))],
        )
        wins = 0
        for o, s, t, m in zip(out.images, src, tgt, masks, strict=True):
            o_, s_ = np.asarray(o, dtype=np.float64), np.asarray(s, dtype=np.float64)
            wins += int(((o_ - t)[m] ** 2).mean() < ((o_ - s_)[m] ** 2).mean())
        closer[f"guidance={gs},image_guidance={igs}"] = f"{wins}/{len(sample)}"

    print(
        json.dumps(
            {
                "benchmark": "learning_diagnostics",
                "model": str(args.model),
                "copy_floor_x0_mse": round(float(np.mean(floor)), 4),
                "final_loss_dm_mean_last20": round(sum(r["loss_dm"] for r in tail) / len(tail), 4),
                "closer_to_target_than_source_in_mask_train": closer,
            }
        )
    )


if __name__ == "__main__":
    main()
