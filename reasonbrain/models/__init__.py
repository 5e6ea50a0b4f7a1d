"""ReasonBrain models: FRCE, MLLM, QFormer, CME, diffusion backbone, presets, baselines.

Import what you need from the submodules (``reasonbrain.models.presets.build_model``,
``reasonbrain.models.reasonbrain.ReasonBrainModel`` …); the names below are re-exported lazily so
that ``import reasonbrain.models`` stays free of torch until something is used.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ReasonBrainConfig": "reasonbrain.models.config",
    "EditModel": "reasonbrain.models.base",
    "ReasonBrainModel": "reasonbrain.models.reasonbrain",
    "InstructPix2PixModel": "reasonbrain.models.baseline",
    "build_model": "reasonbrain.models.presets",
    "build_paper_on_meta": "reasonbrain.models.presets",
    "parameter_counts": "reasonbrain.models.presets",
    "from_pretrained": "reasonbrain.models.checkpoint",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'reasonbrain.models' has no attribute {name!r}")
