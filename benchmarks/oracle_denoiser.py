"""How fast the tiny denoiser learns to *draw* outcomes when the reasoning is given to it.

Issue 13's models pick the right outcome often (nearest rule) but draw it too faintly for the
calibrated verifier (criterion 2: at most 40 % of the source→target distance left inside the
mask). This script asks whether that is the reasoning path's fault or the denoiser's: it trains
the tiny preset's own UNet (``presets.tiny_unet_config``, default architecture or
``--unet-channels``) with **oracle conditioning** — the record's family as one learned
cross-attention token and the record's true mask as the grounding-cue channel — on the job of
the first DDIM step only: predict the target from the source (``source_residual``) and pure
noise at the top timestep, with the product's edit-weighted MSE (``edit_weight_map``,
``model.edit_loss_weight`` 10), optimiser and learning-rate schedule (AdamW, warm-up +
cosine). No MLLM, no QFormer, no other timesteps: every optimiser step
goes to drawing, so the curve is an optimistic bound on what the full model can reach in the
same number of steps.

Every ``--eval-every`` steps it scores the outputs on the first ``--eval-n`` training and
validation records with the verifier's own criterion 2 (``verifier.bounds_check``) and prints
one JSON line; the last line is the summary::

    python benchmarks/oracle_denoiser.py --data data/reasonsynth --steps 3000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from reasonbrain.config import ModelParams, TrainParams
from reasonbrain.data.schema import meta_mask_path, read_manifest, resolve_in_root
from reasonbrain.errors import ReasonBrainError
from reasonbrain.evaluation.images import load_mask, load_rgb, to_array
from reasonbrain.evaluation.verifier import VerifierConfig, bounds_check
from reasonbrain.models.diffusion import edit_weight_map
from reasonbrain.models.presets import tiny_unet_config
from reasonbrain.training.optim import build_scheduler

TOP_TIMESTEP = 999


class Split:
    """One split's images as tensors: source/target ``[N, 3, H, W]`` in [-1, 1], mask
    ``[N, 1, H, W]`` in {0, 1}, family index ``[N]``."""

    def __init__(self, data: Path, split: str, families: list[str], limit: int = 0) -> None:
        records = [r for r in read_manifest(data / f"{split}.jsonl") if meta_mask_path(r.meta)]
        if limit:
            records = records[:limit]
        if not records:
            raise ValueError(f"{data / f'{split}.jsonl'} has no records with a mask (meta.mask)")

        def image(rel: str) -> torch.Tensor:
            return (
                torch.from_numpy(to_array(load_rgb(resolve_in_root(data, rel)))).permute(2, 0, 1)
                * 2
                - 1
            )

        self.source = torch.stack([image(r.src_image) for r in records])
        self.target = torch.stack([image(r.tgt_image) for r in records])
        masks = [load_mask(resolve_in_root(data, str(meta_mask_path(r.meta)))) for r in records]
        self.mask = torch.from_numpy(np.stack(masks)).float()[:, None]
        self.family = torch.tensor([families.index(r.meta["family"]) for r in records])  # type: ignore[index]

    def head(self, n: int) -> Split:
        """The first ``n`` records (views, no copy, no re-read)."""
        part = object.__new__(Split)
        part.source, part.target = self.source[:n], self.target[:n]
        part.mask, part.family = self.mask[:n], self.family[:n]
        return part


class OracleDenoiser(nn.Module):
    """The tiny UNet conditioned on a learned per-family token and the true mask."""

    def __init__(self, families: int, params: ModelParams, noise: bool) -> None:
        super().__init__()
        from diffusers import UNet2DConditionModel

        config = tiny_unet_config(params, spatial=True)
        self.unet: Any = UNet2DConditionModel(**config)
        self.family = nn.Embedding(families, config["cross_attention_dim"])
        self.down, self.up = nn.PixelUnshuffle(2), nn.PixelShuffle(2)
        self.noise = noise

    def forward(
        self, source: torch.Tensor, mask: torch.Tensor, family: torch.Tensor, g: torch.Generator
    ) -> torch.Tensor:
        """The predicted target latent (source latent + the UNet's residual)."""
        src = self.down(source)
        noisy = torch.randn(src.shape, generator=g) if self.noise else torch.zeros_like(src)
        cue = nn.functional.max_pool2d(mask, 2)
        t = torch.full((src.shape[0],), TOP_TIMESTEP)
        cond = self.family(family)[:, None]
        return src + self.unet(torch.cat([noisy, src, cue], 1), t, cond).sample


@torch.no_grad()
def score_edit_left(
    model: OracleDenoiser, split: Split, config: VerifierConfig
) -> dict[str, float]:
    """Median share of the edit left (criterion 2) and the share of samples within the bound."""
    g = torch.Generator().manual_seed(1)
    ratios: list[float] = []

    def as_image(x: torch.Tensor) -> np.ndarray:
        return ((x + 1) / 2).permute(1, 2, 0).numpy()

    for i in range(0, len(split.family), 64):
        sl = slice(i, i + 64)
        out = model.up(model(split.source[sl], split.mask[sl], split.family[sl], g)).clamp(-1, 1)
        for k in range(out.shape[0]):
            ratio, _, _ = bounds_check(
                as_image(out[k]),
                as_image(split.target[sl][k]),
                as_image(split.source[sl][k]),
                {},
                split.mask[sl][k, 0].numpy() > 0.5,
                config,
            )
            if ratio is not None:
                ratios.append(ratio)
    return {
        "median_left": round(float(np.median(ratios)), 4),
        "within_bound": round(float(np.mean([r <= config.edit_bound for r in ratios])), 4),
    }


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="a ReasonSynth dataset directory")
    ap.add_argument("--steps", type=_positive, default=3000)
    ap.add_argument("--eval-every", type=_positive, default=600)
    ap.add_argument("--eval-n", type=_positive, default=300, help="records scored per split")
    ap.add_argument("--batch-size", type=_positive, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--unet-channels", type=int, nargs=3, default=None, help="e.g. 64 128 256")
    ap.add_argument("--layers-per-block", type=int, default=None, help="ResNet layers per block")
    ap.add_argument("--noise", choices=["pure", "none"], default="pure", help="the UNet's x_t")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=_positive, default=1)
    args = ap.parse_args(argv)
    try:
        params = ModelParams(
            unet_channels=args.unet_channels, unet_layers_per_block=args.layers_per_block
        )
    except ValueError as err:  # pydantic's ValidationError is a ValueError
        reason = str(err).splitlines()[1].strip() if "\n" in str(err) else str(err)
        print(f"error: --unet-channels / --layers-per-block: {reason}", file=sys.stderr)
        return 2
    try:
        families = sorted(  # a val-only family gets an (untrained) token too
            {
                (r.meta or {})["family"]
                for s in ("train", "val")
                for r in read_manifest(args.data / f"{s}.jsonl")
            }
        )
        train = Split(args.data, "train", families)
        if train.source.shape[-1] != params.image_size:
            params = params.model_copy(update={"image_size": train.source.shape[-1]})
        probe = {
            "train": train.head(args.eval_n),
            "val": Split(args.data, "val", families, args.eval_n),
        }
    except (ReasonBrainError, OSError, KeyError, TypeError, ValueError) as err:
        print(
            f"error: --data {args.data}: not a usable ReasonSynth dataset: {err}", file=sys.stderr
        )
        return 2
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    model = OracleDenoiser(len(families), params, args.noise == "pure")
    train_params = TrainParams(max_steps=args.steps, lr=args.lr)  # the product's schedule
    opt = torch.optim.AdamW(
        model.parameters(),
        lr=args.lr,
        betas=train_params.betas,
        weight_decay=train_params.weight_decay,
    )
    schedule = build_scheduler(opt, train_params)  # warm-up, cosine to min_lr_ratio
    config = VerifierConfig()
    rng = np.random.default_rng(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    curve: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for step in range(1, args.steps + 1):
        idx = torch.from_numpy(rng.integers(0, len(train.family), args.batch_size))
        pred = model(train.source[idx], train.mask[idx], train.family[idx], g)
        target, src = model.down(train.target[idx]), model.down(train.source[idx])
        loss = (edit_weight_map(src, target, params.edit_loss_weight) * (pred - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        schedule.step()
        if step % args.eval_every == 0 or step == args.steps:
            point: dict[str, Any] = {"step": step, "seconds": round(time.perf_counter() - t0, 1)}
            point |= {k: score_edit_left(model, s, config) for k, s in probe.items()}
            curve.append(point)
            print(json.dumps(point), flush=True)
    print(
        json.dumps(
            {
                "data": str(args.data),
                "unet_channels": list(params.unet_channels or ()) or "default",
                "layers_per_block": params.unet_layers_per_block or "default",
                "unet_parameters": sum(p.numel() for p in model.unet.parameters()),
                "noise": args.noise,
                "lr": args.lr,
                "batch_size": args.batch_size,
                "edit_bound": config.edit_bound,
                "curve": curve,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
