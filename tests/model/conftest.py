"""Fixtures for model tests: ONE tiny model per session (tests must not modify it), and tiny
hand-made batches (no dataset generator needed)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from reasonbrain.config import ModelParams

INSTRUCTIONS = [
    "What would happen if the red candle on the left burned for hours?",
    "What if the blue balloon were left in the sun?",
    "Imagine the green plant a month later.",
    "Show it tomorrow.",
]
CAPTIONS = [
    "the red candle is a short stub",
    "the blue balloon is shrivelled",
    "the green plant is tall",
    "",
]
OBJECTS = [["red candle"], ["blue balloon"], ["green plant", "red candle"], []]


def scene(seed: int, n_objects: int = 2, size: int = 64) -> torch.Tensor:
    """A flat-colour scene in [-1, 1]: grey background and ``n_objects`` coloured squares."""
    g = torch.Generator().manual_seed(seed)
    img = torch.full((3, size, size), 0.2)
    for _ in range(n_objects):
        x, y = (int(v) for v in torch.randint(0, size - 16, (2,), generator=g))
        colour = torch.rand(3, generator=g) * 2 - 1
        img[:, y : y + 12, x : x + 12] = colour[:, None, None]
    return img


def make_batch(n: int = 4, seed: int = 0, blank: bool = False, model: Any = None) -> dict[str, Any]:
    """A collated batch following the ``collate_edits`` contract; with ``model``, it also holds
    that model's processor tensors (what ``collate_edits(items, processor=…)`` adds)."""
    src = torch.stack([scene(seed + i, 0 if blank else 2) for i in range(n)])
    tgt = torch.stack([scene(seed + 100 + i, 0 if blank else 2) for i in range(n)])
    idx = [i % len(INSTRUCTIONS) for i in range(n)]
    batch = {
        "id": [f"s{i}" for i in range(n)],
        "src": src,
        "tgt": tgt,
        "instruction": [INSTRUCTIONS[i] for i in idx],
        "objects": [list(OBJECTS[i]) for i in idx],
        "target_caption": [CAPTIONS[i] for i in idx],
        "category": ["physical"] * n,
        "mask": (src != tgt).any(dim=1, keepdim=True).float(),
        "has_mask": torch.ones(n, dtype=torch.bool),
    }
    if model is not None:
        batch.update(model.processor(batch["instruction"], batch["target_caption"]))
    return batch


def inputs(model: Any, instructions: list[str], *, inference: bool = False) -> dict[str, Any]:
    """The processor tensors of ``instructions`` (inference: prompt only)."""
    return dict(model.processor(instructions, inference=inference))


def corpus() -> list[str]:
    """Text the tiny tokenizer is trained on."""
    return INSTRUCTIONS + CAPTIONS


def build_tiny(**overrides: Any) -> Any:
    """A fresh tiny model (seeded) with ``ModelParams`` overrides."""
    from reasonbrain.models.presets import build_model

    overrides.setdefault("image_size", 64)  # the scenes below are 64 px
    torch.manual_seed(0)
    objects = sorted({o for objs in OBJECTS for o in objs})
    return build_model(ModelParams(**overrides), corpus=corpus(), objects=objects)


@pytest.fixture(scope="session")
def tiny_model() -> Any:
    """The shared tiny ReasonBrain model, in eval mode. Do not train or modify it."""
    return build_tiny().eval()


@pytest.fixture(scope="session")
def saved_tiny(tiny_model: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The shared tiny model saved to a directory."""
    out = tmp_path_factory.mktemp("models") / "tiny"
    tiny_model.save_pretrained(out, params_hash="test", data_version="none")
    return out


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> Any:
    """Model tests are many small ops: one intra-op thread avoids OpenMP spin contention when the
    CI machine is shared (measured: ~10× faster here under load), and results stay identical."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
