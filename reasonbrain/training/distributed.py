"""Data parallelism: DDP (a full replica per rank) or FSDP (sharded parameters, gradients and
optimiser states) — how a worker wraps its model.

``train.strategy: ddp`` wraps the model in ``DistributedDataParallel`` when there is more than one
rank. ``train.strategy: fsdp`` shards it with FSDP2 (``torch.distributed.fsdp.fully_shard``):

- **Auto-wrap policy.** The sharding units are the blocks the libraries themselves declare
  indivisible (``_no_split_modules``: ``LlamaDecoderLayer``, ``CLIPEncoderLayer``, diffusers'
  ``BasicTransformerBlock`` / ``ResnetBlock2D`` / up blocks, ``SamVisionLayer`` …), so a 13B
  LLaVA or another SD UNet needs no code change. Each unit's parameters are gathered just before
  it runs and freed after, so a rank holds one unit's full weights at a time, not the model's.
  Embedding modules and the Q-Former's attention are left out (see ``_NOT_UNITS``).
- **Dtype per group.** FSDP needs one dtype for the trainable parameters of a unit (they are
  reduced together); the dtype policy (:mod:`reasonbrain.models.precision`) makes every trainable
  parameter fp32, while frozen pretrained weights inside a unit (LLaVA's base weights next to its
  LoRA) keep the compute dtype: :func:`check_uniform_trainable_dtype` refuses anything else with
  one clear error instead of FSDP's assertion deep inside the first forward.
- **Frozen parts outside the units** (the CLIP towers, the VAE, SAM, LLaVA's vision tower) are
  *replicated* (``ignored_params``), not sharded: they hold no optimiser state, and they are
  invoked conditionally (SAM's region cache hits on one rank, not another), which a collective
  all-gather would turn into a hang. The root group then holds only trainable fp32 parameters.
- **Units without trainable parameters** (the VAE's blocks) are not sharded for the same reason.

Ray's ``prepare_model(parallel_strategy="fsdp")`` would wrap FSDP1 without a policy and refuses
CPUs; the CPU path (gloo) is what our tests run, so the wrapping lives here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import torch
from torch import nn

from reasonbrain.errors import ConfigError

#: ``_no_split_modules`` entries that are not made units: embeddings (their tables are read
#: outside their forward) and the Q-Former's attention, which returns a view that the layer then
#: updates in place (FSDP2 warns that its backward hook could be lost; the Q-Former is small and
#: stays in the root group).
_NOT_UNITS = ("Embeddings", "Blip2QFormerMultiHeadAttention")


def wrap_unit_classes(model: nn.Module) -> set[str]:
    """Class names of the FSDP units: every ``_no_split_modules`` a submodule declares."""
    names: set[str] = set()
    for module in model.modules():
        declared = getattr(module, "_no_split_modules", None)
        if declared:
            names.update(str(n) for n in declared)
    return {n for n in names if not any(tok in n for tok in _NOT_UNITS)}


def fsdp_units(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of the sharding units: modules of a :func:`wrap_unit_classes` class
    that hold trainable parameters (inner units before the units containing them)."""
    classes = wrap_unit_classes(model)
    units = [
        (name, m)
        for name, m in model.named_modules()
        if name and type(m).__name__ in classes and any(p.requires_grad for p in m.parameters())
    ]
    return sorted(units, key=lambda nm: -nm[0].count("."))  # deepest first


def check_uniform_trainable_dtype(groups: dict[str, list[nn.Parameter]]) -> None:
    """One dtype for the trainable parameters of each FSDP group.

    Raises:
        ConfigError: a group mixes trainable dtypes (FSDP reduces them together).
    """
    for name, params in groups.items():
        dtypes = {p.dtype for p in params if p.requires_grad}
        if len(dtypes) > 1:
            raise ConfigError(
                f"FSDP group {name or '<root>'} has trainable parameters in "
                f"{sorted(str(d) for d in dtypes)}",
                where="train.strategy=fsdp",
                fix="keep every trainable parameter fp32 "
                "(reasonbrain.models.precision.fp32_master_weights)",
            )


def _groups(model: nn.Module, units: list[tuple[str, nn.Module]]) -> dict[str, list[nn.Parameter]]:
    """The parameters each FSDP group would own (a unit owns what no deeper unit owns)."""
    owner: dict[int, str] = {}
    for name, unit in units:  # deepest first: an inner unit claims its parameters first
        for p in unit.parameters():
            owner.setdefault(id(p), name)
    out: dict[str, list[nn.Parameter]] = {}
    for p in model.parameters():
        out.setdefault(owner.get(id(p), ""), []).append(p)
    return out


def shard_model(model: nn.Module, device: torch.device) -> nn.Module:
    """Apply FSDP2 to ``model`` in place (units first, then the root); returns it.

    Frozen parameters outside every unit are replicated (``ignored_params``).
    """
    from torch.distributed.fsdp import fully_shard

    units = fsdp_units(model)
    groups = _groups(model, units)
    check_uniform_trainable_dtype(groups)
    ignored = {p for p in groups.get("", []) if not p.requires_grad}
    mesh = None
    if device.type == "cuda":
        from torch.distributed.device_mesh import init_device_mesh

        torch.cuda.set_device(device)
        mesh = init_device_mesh("cuda", (torch.distributed.get_world_size(),))
    for _, unit in units:
        fully_shard(unit, mesh=mesh)
    fully_shard(model, mesh=mesh, ignored_params=ignored or None)
    return model


def wrap_model(model: nn.Module, strategy: str, device: torch.device, world: int) -> nn.Module:
    """The module the training step calls: the model itself (1 rank, DDP), DDP (> 1 rank) or
    the FSDP-sharded model (``fsdp``, any number of ranks: the checkpoint format is the same)."""
    if strategy == "fsdp":
        return shard_model(model, device)
    if world == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    kwargs: dict[str, Any] = {"find_unused_parameters": True}
    if device.type == "cuda":
        kwargs.update(device_ids=[device], output_device=device)
    return DistributedDataParallel(model, **kwargs)


def is_sharded(module: nn.Module) -> bool:
    """Whether ``module`` was sharded by :func:`shard_model`."""
    from torch.distributed.fsdp import FSDPModule

    return isinstance(module, FSDPModule)


def no_sync(wrapped: nn.Module, last_micro_step: bool) -> AbstractContextManager[Any]:
    """Skip the gradient all-reduce on all but the last micro-step of an accumulation."""
    if last_micro_step:
        return nullcontext()
    if is_sharded(wrapped):
        return _fsdp_no_sync(wrapped)
    sync = getattr(wrapped, "no_sync", None)  # DDP
    return sync() if callable(sync) else nullcontext()


@contextmanager
def _fsdp_no_sync(wrapped: nn.Module) -> Iterator[None]:
    wrapped.set_requires_gradient_sync(False)  # type: ignore[operator]
    try:
        yield
    finally:
        wrapped.set_requires_gradient_sync(True)  # type: ignore[operator]


@contextmanager
def gathered(model: nn.Module) -> Iterator[nn.Module]:
    """Root parameters gathered for calls that bypass ``forward`` (the sampling pipeline calls
    ``model.condition``…); every rank must enter it (it is a collective under FSDP)."""
    if not is_sharded(model):
        yield model
        return
    model.unshard()  # type: ignore[operator]
    try:
        yield model
    finally:
        model.reshard()  # type: ignore[operator]


def clip_grad_norm(params: list[nn.Parameter], max_norm: float) -> torch.Tensor:
    """Global gradient norm (all ranks' shards under FSDP), clipped to ``max_norm``."""
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    full = getattr(norm, "full_tensor", None)  # a DTensor under FSDP
    return full() if callable(full) else norm
