"""Scenes: sample a setting and three objects, render them in any state, derive the mask.

A scene has one background and three objects in the left / middle / right slots: the
*affected* object, a *twin* of the same kind with another colour (the right change applied to
it is the ``wrong_object`` counterfactual, so the referent has to be identified) and a third
object of another kind. Every image of a sample (source, target, counterfactuals) is rendered
from the same :class:`Scene`, changing only which painter draws which object, so anything not
repainted is byte-identical.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from reasonbrain.data.synth.backgrounds import Background, backgrounds_for
from reasonbrain.data.synth.canvas import COLOUR_NAMES, UNITS, Pen, Sheet
from reasonbrain.data.synth.families import FAMILIES
from reasonbrain.data.synth.family import Family
from reasonbrain.data.synth.objects import Obj, ObjectKind, Painter

SLOT_NAMES: tuple[str, ...] = ("left", "middle", "right")

SCALES: tuple[float, ...] = (0.85, 1.0)
"""Object size factors (``small``, ``large``)."""

KINDS: tuple[ObjectKind, ...] = tuple(dict.fromkeys(f.kind for f in FAMILIES))
"""Every object kind, in registry order (deduplicated, order-preserving)."""

AFFECTED, TWIN, OTHER = 0, 1, 2
"""Indices of the three objects in :attr:`Scene.objects`."""


@dataclass(frozen=True)
class Scene:
    """A rendered background plus three placed objects (affected, twin, other)."""

    background: Background
    ground: float
    base: Image.Image
    objects: tuple[Obj, Obj, Obj]
    size: int

    def render(
        self, painters: Mapping[int, Painter] | None = None
    ) -> tuple[Image.Image, list[list[int]]]:
        """Draw the scene; ``painters`` overrides how objects (by index) are drawn.

        Returns:
            The RGB image and each object's pixel bbox (in :attr:`objects` order).
        """
        painters = painters or {}
        img = self.base.copy()
        draw = ImageDraw.Draw(img)
        boxes: list[list[int]] = [[0, 0, 0, 0]] * 3
        for i in sorted(range(3), key=lambda j: self.objects[j].slot):
            obj = self.objects[i]
            pen = Pen(draw, obj.cx, self.ground, obj.scale, self.size)
            painters.get(i, obj.kind.draw)(pen, obj)
            boxes[i] = pen.pixel_bbox(self.size)
        return img, boxes


def kinds_for(background: Background) -> tuple[ObjectKind, ...]:
    """Object kinds that may stand in ``background``."""
    return tuple(k for k in KINDS if k.where == "any" or k.where in background.tags)


def sample_scene(family: Family, colour: str, size: int, rng: np.random.Generator) -> Scene:
    """Sample a scene for ``family`` whose affected object has ``colour``.

    The twin gets another colour; the third object is another kind that fits the setting.
    """
    options = backgrounds_for(family.kind.where)
    bg = options[int(rng.integers(len(options)))]
    ground = float(rng.integers(44, 51))
    base = Image.new("RGB", (size, size))
    bg.paint(Sheet(ImageDraw.Draw(base), size), ground, rng)

    twin_colours = [c for c in COLOUR_NAMES if c != colour]
    twin_colour = twin_colours[int(rng.integers(len(twin_colours)))]
    others = [k for k in kinds_for(bg) if k is not family.kind]
    other_kind = others[int(rng.integers(len(others)))]
    other_colour = COLOUR_NAMES[int(rng.integers(len(COLOUR_NAMES)))]
    slots = [int(s) for s in rng.permutation(3)]
    objs = []
    for i, (kind, col) in enumerate(
        ((family.kind, colour), (family.kind, twin_colour), (other_kind, other_colour))
    ):
        slot = slots[i]
        cx = (2 * slot + 1) * UNITS / 6 + float(rng.uniform(-1.0, 1.0))
        scale = SCALES[int(rng.integers(len(SCALES)))]
        variant = 1 if rng.random() < 0.5 else -1
        objs.append(Obj(kind, col, slot, cx, scale, variant))
    return Scene(bg, ground, base, (objs[0], objs[1], objs[2]), size)


def affected_mask(src: np.ndarray, tgt: np.ndarray, radius: int) -> np.ndarray:
    """The region a change may touch: pixels that differ, dilated by ``radius`` pixels.

    By construction the target equals the source everywhere outside this mask.
    """
    from scipy.ndimage import binary_dilation

    diff = np.any(src != tgt, axis=-1)
    if radius <= 0:
        return diff
    return binary_dilation(diff, structure=np.ones((3, 3), dtype=bool), iterations=radius)
