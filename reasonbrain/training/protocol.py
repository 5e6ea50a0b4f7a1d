"""What the training loop needs from a model, and how a worker gets one.

The loop is model-agnostic: anything satisfying :class:`TrainableModel` trains — the ReasonBrain
model, the ``ip2p`` baseline (``reasonbrain.models``), or a small module in tests. A
:class:`ModelSpec` says how to *build* a fresh model (on the driver, once, so that every rank starts
from the same weights and tokenizer) and how to *load* one saved with ``save_pretrained`` (on the
workers: the initial model and every checkpoint use that one format).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class TrainableModel(Protocol):
    """A model the training loop can train.

    ``forward(batch)`` takes the :func:`~reasonbrain.data.torch_dataset.collate_edits` batch
    (collated with the model's ``processor`` attribute when it has one) and
    returns an object with a scalar ``.loss`` and, optionally, ``log_terms()`` — the loss terms to
    log, by name (``EditModelOutput.log_terms``; only ``loss`` is logged without it).
    ``parameter_groups()`` lists trainable parameters by kind.
    """

    def __call__(self, batch: dict[str, Any]) -> Any: ...

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]: ...

    def save_pretrained(self, directory: str | Path) -> Any: ...


@dataclass(frozen=True)
class ModelSpec:
    """How to obtain a model (both callables must be picklable: they travel to Ray workers).

    Attributes:
        build: returns a fresh model; called once on the driver.
        load: rebuilds a model from a ``save_pretrained`` directory; called on workers. It may
            take a ``dtype`` keyword: the compute dtype of frozen pretrained parts
            (:func:`load_model` passes it when accepted).
        sample: optional ``(model, batch, steps, generator) -> list[PIL.Image]`` used to save a few
            sample edits at validation time.
        name: what the logs call the model.
    """

    build: Callable[[], nn.Module]
    load: Callable[[Path], nn.Module]
    sample: Callable[[nn.Module, dict[str, Any], int, torch.Generator], list[Any]] | None = None
    name: str = "model"


def save_model(model: nn.Module, directory: Path, **card: Any) -> None:
    """``model.save_pretrained(directory, **card)``, passing only the keywords it accepts."""
    fn: Callable[..., Any] = getattr(model, "save_pretrained")  # noqa: B009 - not declared on nn.Module
    try:
        accepted = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without signatures
        accepted = {}  # type: ignore[assignment]
    kwargs = {k: v for k, v in card.items() if k in accepted and v is not None}
    fn(directory, **kwargs)


def load_model(spec: ModelSpec, directory: Path, *, dtype: torch.dtype) -> nn.Module:
    """``spec.load(directory)``, with ``dtype=`` when the loader accepts it."""
    try:
        accepted = inspect.signature(spec.load).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without signatures
        accepted = {}  # type: ignore[assignment]
    if "dtype" in accepted:
        return spec.load(directory, dtype=dtype)  # type: ignore[call-arg]
    return spec.load(directory)


def reasonbrain_spec(model_params: Any, data: Any) -> ModelSpec:
    """The spec of the real model from ``params.yaml``'s ``model`` section.

    The tiny preset's tokenizer is trained on the training split's text (instructions, captions,
    object phrases). The model's processor extracts object phrases from each instruction, in
    training as at inference; the records' gold ``objects`` are never fed to the model.
    """
    return ModelSpec(
        build=_ReasonBrainBuilder(model_params, str(getattr(data, "uri", data))),
        load=_load_edit_model,
        sample=_sample_edits,
        name=f"{getattr(model_params, 'kind', 'reasonbrain')}/{model_params.preset}",
    )


@dataclass(frozen=True)
class _ReasonBrainBuilder:
    model_params: Any
    data: str  # a dataset directory or s3:// prefix

    def __call__(self) -> nn.Module:
        from reasonbrain.models.presets import build_model
        from reasonbrain.training.datasource import DataLocation

        records = DataLocation.parse(self.data).records("train")
        corpus: list[str] = []
        objects: set[str] = set()
        for r in records:
            corpus.append(r.instruction)
            if r.target_caption:
                corpus.append(r.target_caption)
            corpus.extend(r.objects)
            objects.update(r.objects)
        # the driver only saves the trained weights: frozen pretrained parts (paper preset) may
        # be bf16 here, half the memory of fp32 (the workers load them in their compute dtype)
        dtype = torch.bfloat16 if self.model_params.preset == "paper" else None
        model: nn.Module = build_model(
            self.model_params, corpus=corpus, objects=sorted(objects), dtype=dtype
        )
        return model


def _load_edit_model(directory: Path, dtype: torch.dtype | None = None) -> nn.Module:
    from reasonbrain.models.checkpoint import from_pretrained

    model: nn.Module = from_pretrained(directory, dtype=dtype)
    return model


def _sample_edits(
    model: nn.Module, batch: dict[str, Any], steps: int, generator: torch.Generator
) -> list[Any]:
    """Edit the batch's sources with the inference pipeline (the model is left in eval mode)."""
    from reasonbrain.inference.pipeline import ReasonBrainPipeline

    # frozen parts in bf16 (a bf16 run) need autocast around them, as in training
    bf16 = any(p.dtype == torch.bfloat16 for p in model.parameters())
    pipe = ReasonBrainPipeline(model, autocast=bf16)
    out = pipe(
        image=list(batch["src"]),
        prompt=list(batch["instruction"]),
        num_inference_steps=steps,
        generator=generator,
    )
    return list(out.images)
