"""One optimiser step (:func:`train_step`) and one validation pass (:func:`eval_step`).

A step, given the rank's micro-batches of step ``s`` (a pure function of ``(seed, s)``,
:mod:`~reasonbrain.training.data`):

1. before each micro-step every RNG is re-seeded from ``(seed, s, micro, rank)``, so noise,
   timesteps and conditioning dropout are a pure function of the step too — a restarted run
   repeats the uninterrupted run exactly;
2. forward (bf16 autocast when configured), backward; the gradient all-reduce (DDP) or
   reduce-scatter (FSDP) runs on the last micro-step only;
3. gradient clipping (the global norm over every rank's shards), AdamW, the LR schedule, EMA;
4. the loss terms, by name (``out.log_terms()``), averaged over micro-steps and ranks.
"""

from __future__ import annotations

import random
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from reasonbrain.config import TrainParams
from reasonbrain.training.data import BatchSource, mix_seed
from reasonbrain.training.distributed import clip_grad_norm, gathered, no_sync
from reasonbrain.training.protocol import ModelSpec
from reasonbrain.training.state import TrainState

VAL_SEED_SALT = 0xEA1


@dataclass(frozen=True)
class StepContext:
    """Where a step runs: the params, this rank, the number of ranks, the device."""

    tp: TrainParams
    rank: int
    world: int
    device: torch.device


def seed_everything(seed: int) -> None:
    """Seed torch (CPU + CUDA), numpy and ``random``."""
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))
    random.seed(seed)


def autocast(device: torch.device, precision: str) -> AbstractContextManager[Any]:
    """bf16 autocast on the model's device type when the dtype policy says so."""
    from reasonbrain.models.precision import frozen_dtype

    if frozen_dtype(precision, device.type) == torch.bfloat16:  # the same rule as frozen parts
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def _scalar(x: Any) -> float:
    return float(x.detach().float()) if isinstance(x, torch.Tensor) else float(x or 0.0)


def loss_terms(out: Any) -> dict[str, float]:
    """The logged loss terms of a forward output: ``out.log_terms()`` (by name), or ``loss``."""
    fn = getattr(out, "log_terms", None)
    terms: dict[str, Any] = fn() if callable(fn) else {"loss": out.loss}
    return {k: _scalar(v) for k, v in terms.items()}


def mean_over_ranks(values: dict[str, float], world: int) -> dict[str, float]:
    """Average named scalars over the ranks (every rank must hold the same names)."""
    if world == 1:
        return values
    import torch.distributed as dist

    names = sorted(values)
    t = torch.tensor([values[n] for n in names], dtype=torch.float64)
    dist.all_reduce(t)
    return {n: float(v) / world for n, v in zip(names, t.tolist(), strict=True)}


def train_step(
    state: TrainState, batches: list[dict[str, Any]], ctx: StepContext
) -> dict[str, Any]:
    """One optimiser step over this rank's micro-batches; returns the step's log fields (loss
    terms averaged over ranks, ``grad_norm``, ``lr/<group>``)."""
    tp, n = ctx.tp, len(batches)
    terms: dict[str, float] = {}
    for m, batch in enumerate(batches):
        seed_everything(mix_seed(tp.seed, state.step, m, ctx.rank))
        with no_sync(state.wrapped, m == n - 1):
            with autocast(ctx.device, tp.precision):
                out = state.wrapped(batch)
                loss = out.loss / n
            loss.backward()
        for name, value in loss_terms(out).items():
            terms[name] = terms.get(name, 0.0) + value / n
    grad_norm = (
        clip_grad_norm(state.trainable, tp.grad_clip) if tp.grad_clip > 0 else torch.zeros(())
    )
    lrs = {f"lr/{g['name']}": float(g["lr"]) for g in state.optimizer.param_groups}
    state.optimizer.step()
    state.scheduler.step()
    state.optimizer.zero_grad(set_to_none=True)
    if state.ema is not None:
        state.ema.step(state.trainable)
    state.step += 1
    return {**mean_over_ranks(terms, ctx.world), "grad_norm": _scalar(grad_norm), **lrs}


def eval_step(
    state: TrainState,
    val: BatchSource,
    ctx: StepContext,
    *,
    spec: ModelSpec,
    micro: int,
) -> tuple[dict[str, float], tuple[dict[str, Any], list[Any]] | None]:
    """Validation loss over the fixed val subset (batches shared out over the ranks), and sample
    edits of its first ``train.sample_images`` records.

    Every rank takes part (under FSDP a forward is a collective: each rank runs the same number
    of forwards, padding with a repeat it does not count). Batch ``i`` is seeded from
    ``(seed, i)``, so the loss does not depend on the number of ranks.

    Returns:
        ``{"val_loss": …}`` and, on the rank that saves them, ``(batch, images)``.
    """
    tp, model = ctx.tp, state.model
    starts = list(range(0, len(val), max(micro, 1)))
    rounds = -(-len(starts) // ctx.world)
    model.eval()
    total = 0.0
    with torch.no_grad():
        for r in range(rounds):
            i = r * ctx.world + ctx.rank
            if i >= len(starts) and not state.sharded:
                break
            j = i if i < len(starts) else 0
            idx = list(range(starts[j], min(starts[j] + max(micro, 1), len(val))))
            seed_everything(mix_seed(tp.seed, VAL_SEED_SALT, j))
            with autocast(ctx.device, tp.precision):
                out = model(val.batch(idx))
            if i < len(starts):
                total += _scalar(out.loss) * len(idx)
        sample = None
        n = min(tp.sample_images, len(val))
        if n and spec.sample is not None and (state.sharded or ctx.rank == 0):
            batch = val.batch(list(range(n)))
            gen = torch.Generator().manual_seed(tp.seed)
            with gathered(model):
                images = spec.sample(model, batch, tp.sample_steps, gen)
            if ctx.rank == 0 and images:
                sample = (batch, images)
    model.train()
    sums = {"val_loss": total}
    if ctx.world > 1:
        sums = {k: v * ctx.world for k, v in mean_over_ranks(sums, ctx.world).items()}
    return {"val_loss": sums["val_loss"] / max(1, len(val))}, sample
