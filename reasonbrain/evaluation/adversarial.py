"""Adversarial "edits" that a reasoning metric must not reward (issue 13, the verifier's tests).

Each function of :data:`ADVERSARIES` turns one ReasonSynth record's images into an output that
involves no reasoning at all — constant colours, noise, the source, the blurred source — or the
wrong amount of it: a half-strength edit, the right edit plus the same change on the twin object.
The verifier's calibration (``benchmarks/verifier_calibration.py``) and its tests score these as
if a model had produced them: every one must stay at or below chance on every family.

:data:`BENIGN` holds near-perfect outputs (the target with imperceptible noise) that must pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from reasonbrain.evaluation.images import FloatImage, to_array


@dataclass(frozen=True)
class Case:
    """The images of one record, float RGB in [0, 1] (see ``images.to_array``)."""

    source: FloatImage
    target: FloatImage
    counterfactuals: dict[str, FloatImage]
    seed: int


Adversary = Callable[[Case], FloatImage]


def _constant(rgb: tuple[float, float, float]) -> Adversary:
    def make(case: Case) -> FloatImage:
        return np.broadcast_to(np.asarray(rgb, np.float32), case.target.shape).copy()

    return make


def _noise(case: Case) -> FloatImage:
    rng = np.random.default_rng(case.seed)
    return rng.random(case.target.shape, dtype=np.float32)


def _blurred_source(radius: float) -> Adversary:
    def make(case: Case) -> FloatImage:
        img = Image.fromarray((case.source * 255).round().astype(np.uint8))
        return to_array(img.filter(ImageFilter.GaussianBlur(radius)))

    return make


def _blend(weight: float) -> Adversary:
    def make(case: Case) -> FloatImage:
        return ((1 - weight) * case.source + weight * case.target).astype(np.float32)

    return make


def _target_and_twin(case: Case) -> FloatImage:
    """The right change on the right object *and* on the twin (``wrong_object``'s change)."""
    wrong = case.counterfactuals["wrong_object"]
    twin = np.abs(wrong - case.source).max(axis=-1, keepdims=True) > 0.02
    return np.where(twin, wrong, case.target).astype(np.float32)


def _target_with_noise(levels: float) -> Adversary:
    def make(case: Case) -> FloatImage:
        rng = np.random.default_rng(case.seed)
        noisy = case.target + rng.normal(0.0, levels / 255.0, case.target.shape)
        return np.clip(noisy, 0.0, 1.0).astype(np.float32)

    return make


ADVERSARIES: dict[str, Adversary] = {
    "constant_grey": _constant((0.5, 0.5, 0.5)),
    "constant_black": _constant((0.0, 0.0, 0.0)),
    "constant_white": _constant((1.0, 1.0, 1.0)),
    "constant_red": _constant((1.0, 0.0, 0.0)),
    "constant_sky": _constant((0.5, 0.7, 0.9)),
    "noise": _noise,
    "source": lambda case: case.source,
    "source_blurred_1px": _blurred_source(1.0),
    "source_blurred_2px": _blurred_source(2.0),
    "half_strength_edit": _blend(0.5),
    "target_and_twin_edited": _target_and_twin,
}

BENIGN: dict[str, Adversary] = {
    "target": lambda case: case.target,
    "target_noise_2_levels": _target_with_noise(2.0),
    "strong_edit_0.7": _blend(0.7),
}


def to_image(arr: FloatImage) -> Image.Image:
    """A float [0, 1] RGB array as an 8-bit PIL image (what a model would write)."""
    return Image.fromarray((np.clip(arr, 0.0, 1.0) * 255).round().astype(np.uint8), "RGB")
