"""Optimiser parameter groups, weight-decay exclusions and the learning-rate schedule.

Each *kind* of parameter the model reports (``new_modules``, ``lora``, ``diffusion`` …) gets its own
learning rate (``train.lr`` unless ``train.group_lr`` names the kind). Within a kind, parameters
are split into a decayed group (matrices, convolution kernels) and an undecayed one (biases,
normalisation scales, embeddings), the usual AdamW practice. Frozen parameters
(``requires_grad=False``) are in no group at all, so no update — weight decay included — can ever
touch them, and they cost no optimiser memory.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from reasonbrain.config import TrainParams
from reasonbrain.errors import ConfigError

NO_DECAY_TOKENS: tuple[str, ...] = ("bias", "norm", "embed", "null_", "pos_", "query_tokens")


def _no_decay(name: str, p: nn.Parameter) -> bool:
    """Biases, norms, embeddings and other 1-D / lookup tables are not decayed."""
    low = name.lower()
    return p.ndim <= 1 or any(tok in low for tok in NO_DECAY_TOKENS)


def model_parameter_groups(model: nn.Module) -> dict[str, list[nn.Parameter]]:
    """The model's trainable parameters by kind (``{"all": …}`` if it declares no kinds)."""
    fn = getattr(model, "parameter_groups", None)
    if callable(fn):
        groups: Mapping[str, Iterable[nn.Parameter]] = fn()
        return {k: [p for p in v if p.requires_grad] for k, v in groups.items()}
    return {"all": [p for p in model.parameters() if p.requires_grad]}


def build_param_groups(model: nn.Module, train: TrainParams) -> list[dict[str, Any]]:
    """AdamW parameter groups: one decayed and one undecayed group per kind.

    Every group carries ``name`` (``<kind>`` or ``<kind>/no_decay``), ``kind``, ``lr`` and
    ``weight_decay``. Empty groups are dropped.

    Raises:
        ConfigError: ``train.group_lr`` names a kind the model does not have, or a parameter is
            listed under two kinds.
    """
    by_kind = model_parameter_groups(model)
    unknown = sorted(set(train.group_lr) - set(by_kind))
    if unknown:
        raise ConfigError(
            f"train.group_lr names unknown parameter kinds {unknown}",
            where="params.yaml train.group_lr",
            fix=f"use kinds among {sorted(by_kind)}",
        )
    names = {id(p): n for n, p in model.named_parameters()}
    seen: set[int] = set()
    out: list[dict[str, Any]] = []
    for kind, params in by_kind.items():
        lr = train.group_lr.get(kind, train.lr)
        decay: list[nn.Parameter] = []
        no_decay: list[nn.Parameter] = []
        for p in params:
            if id(p) in seen:
                raise ConfigError(
                    f"parameter {names.get(id(p), '?')} is listed under two kinds",
                    where="model.parameter_groups()",
                    fix="make the model's parameter groups disjoint",
                )
            seen.add(id(p))
            (no_decay if _no_decay(names.get(id(p), ""), p) else decay).append(p)
        if decay:
            out.append(
                {
                    "name": kind,
                    "kind": kind,
                    "params": decay,
                    "lr": lr,
                    "weight_decay": train.weight_decay,
                }
            )
        if no_decay:
            out.append(
                {
                    "name": f"{kind}/no_decay",
                    "kind": kind,
                    "params": no_decay,
                    "lr": lr,
                    "weight_decay": 0.0,
                }
            )
    return out


def build_optimizer(model: nn.Module, train: TrainParams) -> torch.optim.AdamW:
    """AdamW over :func:`build_param_groups` (fused/foreach left to torch's defaults)."""
    groups = build_param_groups(model, train)
    if not groups:
        raise ConfigError("the model has no trainable parameters", where="model")
    return torch.optim.AdamW(groups, lr=train.lr, betas=(train.betas[0], train.betas[1]))


def lr_factor(step: int, *, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """Linear warm-up from ~0 to 1 over ``warmup_steps``, then cosine decay to ``min_ratio``.

    ``step`` counts optimiser steps already taken (0 for the first update).
    """
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer, train: TrainParams
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` applying :func:`lr_factor` to every group's own learning rate."""
    warmup = min(train.warmup_steps, max(0, train.max_steps - 1))

    def factor(step: int) -> float:
        return lr_factor(
            step, warmup_steps=warmup, total_steps=train.max_steps, min_ratio=train.min_lr_ratio
        )

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
