"""Session fixtures of the paper world: tiny random checkpoints in the real on-disk formats.

Written once per test session with the real libraries' ``save_pretrained``
(:mod:`reasonbrain.models.tiny_weights`): ``paper_weights`` (fp32 files) and
``paper_weights_fp16`` (fp16 files, as LLaVA-1.5 ships them), each a dict of the
``model.weights`` entries; ``paper_data`` is a 256-px dataset in the Reason50K layout (the paper
preset refuses smaller images).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.mini_dataset import make_mini_dataset


@pytest.fixture(scope="session")
def paper_weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Tiny fp32 LLaVA / IP2P repo / CLIP / SAM directories (size family ``a``)."""
    from reasonbrain.models.tiny_weights import save_tiny_paper_weights

    root = tmp_path_factory.mktemp("paper-weights")
    return {k: str(v) for k, v in save_tiny_paper_weights(root, "a").items()}


@pytest.fixture(scope="session")
def paper_weights_fp16(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The same architecture with every file in fp16."""
    from reasonbrain.models.tiny_weights import save_tiny_paper_weights

    root = tmp_path_factory.mktemp("paper-weights-fp16")
    return {k: str(v) for k, v in save_tiny_paper_weights(root, "a", dtype="float16").items()}


@pytest.fixture(scope="session")
def paper_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four 256-px records per split."""
    return make_mini_dataset(tmp_path_factory.mktemp("paper-data"), n_per_split=4, size=256)


def paper_model_params(weights: dict[str, str], **overrides: Any) -> Any:
    """``ModelParams`` of the paper preset on the given weights (profile defaults otherwise)."""
    from reasonbrain.config import ModelParams

    return ModelParams(preset="paper", weights=weights, **overrides)  # type: ignore[arg-type]


def paper_batch(n: int = 2, size: int = 256, model: Any = None) -> dict[str, Any]:
    """A collated batch (the model tests' scenes, upsampled to ``size``; with ``model``, its
    processor's tensors too)."""
    import torch.nn.functional as F

    from tests.model.conftest import make_batch

    b = make_batch(n, model=model)
    for key in ("src", "tgt", "mask"):
        b[key] = F.interpolate(b[key], size=(size, size), mode="nearest")
    return b
