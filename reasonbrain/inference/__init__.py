"""Inference: :class:`~reasonbrain.inference.pipeline.ReasonBrainPipeline` (edit images).

Re-exported lazily so importing the package does not import torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["EditPipelineOutput", "ReasonBrainPipeline"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from reasonbrain.inference import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'reasonbrain.inference' has no attribute {name!r}")
