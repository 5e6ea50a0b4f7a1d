"""Shared helpers for the model benchmarks: a tiny model and a synthetic batch (no dataset)."""

from __future__ import annotations

import os
from typing import Any

INSTRUCTIONS = [
    "What would happen if the red candle on the left burned for hours?",
    "What if the blue balloon were left in the sun for a day?",
    "Imagine the green plant a month later.",
    "What would the glass of milk look like after a week?",
]
CAPTIONS = [
    "the red candle is a short stub",
    "the blue balloon is shrivelled",
    "the green plant is tall",
    "the milk is sour and lumpy",
]
OBJECTS = [["red candle"], ["blue balloon"], ["green plant"], ["glass of milk"]]


def build(kind: str = "reasonbrain", seed: int = 0, **overrides: Any) -> Any:
    """A tiny model (``reasonbrain`` or ``ip2p``) with the default params (plus ``overrides``)."""
    import torch

    from reasonbrain.config import ModelParams
    from reasonbrain.models.presets import build_model

    torch.manual_seed(seed)
    objects = sorted({o for objs in OBJECTS for o in objs})
    params = ModelParams(kind=kind, **overrides)
    return build_model(params, corpus=INSTRUCTIONS + CAPTIONS, objects=objects)


def default_size() -> int:
    """The default image side (``params.yaml`` ``model.image_size``)."""
    from reasonbrain.config import ModelParams

    return ModelParams().image_size


def scene(g: Any, n_objects: int = 3, size: int = 64) -> Any:
    """A flat-shaded scene in ``[-1, 1]`` (background + coloured rectangles), like ReasonSynth."""
    import torch

    img = (torch.rand(3, 1, 1, generator=g) * 2 - 1).expand(3, size, size).clone()
    for _ in range(n_objects):
        x, y, w, h = (int(v) for v in torch.randint(4, size // 2, (4,), generator=g))
        img[:, y : y + h, x : x + w] = (torch.rand(3, generator=g) * 2 - 1)[:, None, None]
    return img


def batch(n: int, seed: int = 0) -> dict[str, Any]:
    """A collated batch of ``n`` synthetic edits (flat-shaded scenes) at the default size."""
    import torch

    g = torch.Generator().manual_seed(seed)
    size = default_size()
    idx = [i % len(INSTRUCTIONS) for i in range(n)]
    return {
        "id": [str(i) for i in range(n)],
        "src": torch.stack([scene(g, size=size) for _ in range(n)]),
        "tgt": torch.stack([scene(g, size=size) for _ in range(n)]),
        "instruction": [INSTRUCTIONS[i] for i in idx],
        "objects": [OBJECTS[i] for i in idx],
        "target_caption": [CAPTIONS[i] for i in idx],
        "category": ["physical"] * n,
        "mask": torch.zeros(n, 1, size, size),
        "has_mask": torch.zeros(n, dtype=torch.bool),
    }


def machine() -> dict[str, Any]:
    """Context that changes timings: threads, cores, load."""
    import torch

    return {
        "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "torch": torch.__version__,
    }
