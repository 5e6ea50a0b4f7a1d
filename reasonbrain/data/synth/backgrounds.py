"""Backgrounds: simple, varied settings drawn behind the objects.

Each background has a name, the tags it satisfies (``indoor``, ``outdoor``, ``beach``) and a
painter that fills the whole image given a ground line. Object kinds name the tag they need,
so a snowman is never put on a kitchen table. Colours are jittered a little per sample.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from reasonbrain.data.synth.canvas import RGB, UNITS, Sheet, mix, shade

BackgroundPainter = Callable[[Sheet, float, np.random.Generator], None]


@dataclass(frozen=True)
class Background:
    """A setting: ``tags`` say which object kinds may appear in it."""

    name: str
    tags: frozenset[str]
    paint: BackgroundPainter


def _pick(rng: np.random.Generator, colours: tuple[RGB, ...]) -> RGB:
    c = colours[int(rng.integers(len(colours)))]
    return shade(c, float(rng.uniform(0.94, 1.04)))


def _sky(s: Sheet, gy: float, rng: np.random.Generator, top: RGB, bottom: RGB) -> None:
    bands = 4
    for i in range(bands):
        s.rect(0, gy * i / bands, UNITS, gy * (i + 1) / bands + 0.01, mix(top, bottom, i / bands))


def _clouds(s: Sheet, rng: np.random.Generator, n: int) -> None:
    for _ in range(n):
        x = float(rng.uniform(4, 54))
        y = float(rng.uniform(3, 9))
        s.ellipse(x, y, x + 9, y + 3.5, (245, 247, 250))
        s.ellipse(x + 2.5, y - 1.5, x + 6.5, y + 2, (245, 247, 250))


def _sun(s: Sheet, rng: np.random.Generator) -> None:
    x = 3.0 if rng.random() < 0.5 else 55.0
    s.ellipse(x, 2, x + 6, 8, (252, 226, 90))


def _table(s: Sheet, gy: float, rng: np.random.Generator) -> None:
    wall = _pick(rng, ((236, 226, 200), (204, 222, 236), (230, 210, 218), (214, 230, 204)))
    wood = _pick(rng, ((150, 100, 58), (172, 124, 76), (118, 84, 56)))
    s.rect(0, 0, UNITS, gy, wall)
    s.rect(0, gy - 2, UNITS, gy, shade(wall, 0.88))
    s.rect(0, gy, UNITS, UNITS, wood)
    s.rect(0, gy, UNITS, gy + 1, shade(wood, 1.15))


def _floor(s: Sheet, gy: float, rng: np.random.Generator) -> None:
    wall = _pick(rng, ((222, 214, 190), (196, 206, 226), (224, 200, 180)))
    floor = _pick(rng, ((110, 110, 118), (96, 80, 70), (140, 128, 110)))
    s.rect(0, 0, UNITS, gy, wall)
    for x in range(0, int(UNITS), 8):
        s.rect(x, 0, x + 1, gy, shade(wall, 0.95))
    s.rect(0, gy, UNITS, UNITS, floor)


def _garden(s: Sheet, gy: float, rng: np.random.Generator) -> None:
    _sky(s, gy, rng, (110, 180, 236), (180, 220, 246))
    _sun(s, rng)
    _clouds(s, rng, int(rng.integers(1, 3)))
    grass = _pick(rng, ((86, 166, 66), (104, 178, 78), (76, 150, 60)))
    s.rect(0, gy, UNITS, UNITS, grass)


def _dusk(s: Sheet, gy: float, rng: np.random.Generator) -> None:
    _sky(s, gy, rng, (120, 110, 190), (250, 170, 120))
    s.rect(0, gy, UNITS, UNITS, _pick(rng, ((70, 120, 60), (84, 110, 56))))


def _beach(s: Sheet, gy: float, rng: np.random.Generator) -> None:
    _sky(s, gy, rng, (120, 190, 240), (190, 226, 248))
    _clouds(s, rng, 1)
    s.rect(0, gy - 5, UNITS, gy, _pick(rng, ((40, 110, 196), (30, 130, 180))))
    s.rect(0, gy, UNITS, UNITS, _pick(rng, ((238, 214, 160), (230, 204, 150))))


def _lake(s: Sheet, gy: float, rng: np.random.Generator) -> None:
    _sky(s, gy, rng, (120, 184, 232), (196, 226, 246))
    _sun(s, rng)
    s.rect(0, gy - 7, UNITS, gy, _pick(rng, ((56, 120, 200), (40, 100, 170))))
    s.rect(0, gy, UNITS, UNITS, _pick(rng, ((96, 170, 70), (120, 160, 80))))


BACKGROUNDS: tuple[Background, ...] = (
    Background("table", frozenset({"indoor"}), _table),
    Background("room", frozenset({"indoor"}), _floor),
    Background("garden", frozenset({"outdoor"}), _garden),
    Background("field at dusk", frozenset({"outdoor"}), _dusk),
    Background("beach", frozenset({"outdoor", "beach"}), _beach),
    Background("lakeside", frozenset({"outdoor", "water"}), _lake),
)
"""Every setting; a kind's ``where`` tag selects among them."""


def backgrounds_for(tag: str) -> tuple[Background, ...]:
    """Backgrounds that satisfy ``tag`` (``any`` matches all)."""
    return tuple(b for b in BACKGROUNDS if tag == "any" or tag in b.tags)
