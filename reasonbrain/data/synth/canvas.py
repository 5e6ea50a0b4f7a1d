"""Rendering primitives for ReasonSynth: colours, the palette and two thin drawing helpers.

Scenes are laid out in a fixed 64-unit square whatever the output size, so the same sample
looks the same at 64 px and at 512 px. :class:`Sheet` draws in absolute units (y grows downward;
backgrounds use it); :class:`Pen` draws one object in *local* units: ``x`` relative to the
object's centre, ``y`` upward from the ground line, scaled by the object's size. A pen records
the pixel bounding box of everything it draws, which becomes the object's ``bbox`` in the
ground truth.

PIL's ``ImageDraw`` does the rasterising; these classes only map coordinates (hand-written
because the mapping is three lines and no drawing library offers this local frame).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from PIL import ImageDraw

RGB = tuple[int, int, int]

UNITS = 64.0
"""Side of the layout square in units."""

PALETTE: dict[str, RGB] = {
    "red": (214, 36, 36),
    "blue": (36, 76, 214),
    "yellow": (246, 206, 32),
    "purple": (136, 56, 186),
    "orange": (246, 136, 26),
    "pink": (246, 116, 186),
}
"""Attribute colours (names used in instructions). Green is left out: it is the grass colour."""

COLOUR_NAMES: tuple[str, ...] = tuple(PALETTE)

BLACK: RGB = (20, 20, 20)
WHITE: RGB = (250, 250, 250)
GREY: RGB = (128, 128, 132)
DARK_GREY: RGB = (70, 70, 76)
BROWN: RGB = (120, 78, 40)
WOOD: RGB = (150, 100, 58)
LEAF: RGB = (40, 140, 50)
DARK_LEAF: RGB = (24, 100, 34)
FLAME: RGB = (250, 130, 20)
FLAME_CORE: RGB = (255, 236, 120)
GOLD: RGB = (240, 196, 40)
SAND: RGB = (206, 170, 104)
SKIN: RGB = (240, 196, 160)
ICE: RGB = (186, 232, 250)
WATER: RGB = (96, 160, 226)
SMOKE: RGB = (150, 150, 156)
CHARCOAL: RGB = (48, 42, 40)


def shade(c: RGB, f: float) -> RGB:
    """Scale a colour's channels by ``f`` (clipped to 0..255)."""
    return (
        max(0, min(255, round(c[0] * f))),
        max(0, min(255, round(c[1] * f))),
        max(0, min(255, round(c[2] * f))),
    )


def mix(a: RGB, b: RGB, t: float) -> RGB:
    """Linear blend ``(1 - t) * a + t * b``."""
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )


class Sheet:
    """Absolute drawing in layout units (0..64, y downward) on a PIL image of any size."""

    __slots__ = ("draw", "k")

    def __init__(self, draw: ImageDraw.ImageDraw, size: int) -> None:
        self.draw = draw
        self.k = size / UNITS

    def rect(self, x0: float, y0: float, x1: float, y1: float, fill: RGB) -> None:
        """Axis-aligned rectangle with corners in units."""
        k = self.k
        # the far edge is exclusive; below 64 px a thin rectangle must still cover one pixel row
        self.draw.rectangle(
            (x0 * k, y0 * k, max(x0 * k, x1 * k - 1), max(y0 * k, y1 * k - 1)), fill=fill
        )

    def ellipse(self, x0: float, y0: float, x1: float, y1: float, fill: RGB) -> None:
        """Ellipse inscribed in the given box (units)."""
        k = self.k
        self.draw.ellipse((x0 * k, y0 * k, x1 * k, y1 * k), fill=fill)

    def poly(self, pts: Sequence[tuple[float, float]], fill: RGB) -> None:
        """Filled polygon (units)."""
        k = self.k
        self.draw.polygon([(x * k, y * k) for x, y in pts], fill=fill)


class Pen:
    """Draws one object in local units: ``x`` from its centre, ``y`` up from the ground line.

    Args:
        draw: the PIL drawing context of the scene image.
        cx: the object's centre in layout units.
        gy: the ground line in layout units.
        scale: the object's size factor.
        size: the image side in pixels.
    """

    __slots__ = ("bbox", "draw", "k", "ox", "oy", "top")

    def __init__(
        self, draw: ImageDraw.ImageDraw, cx: float, gy: float, scale: float, size: int
    ) -> None:
        u = size / UNITS
        self.draw = draw
        self.k = scale * u
        self.ox = cx * u
        self.oy = gy * u
        self.top = gy / scale
        """Local ``y`` of the top edge of the image (for things that rise to the sky)."""
        self.bbox = [float("inf"), float("inf"), float("-inf"), float("-inf")]

    # ------------------------------------------------------------------ coordinate mapping
    def _xy(self, x: float, y: float) -> tuple[float, float]:
        return self.ox + x * self.k, self.oy - y * self.k

    def _box(self, x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
        ax, ay = self._xy(min(x0, x1), max(y0, y1))
        bx, by = self._xy(max(x0, x1), min(y0, y1))
        self._grow(ax, ay, bx, by)
        return ax, ay, bx, by

    def _grow(self, ax: float, ay: float, bx: float, by: float) -> None:
        b = self.bbox
        b[0] = min(b[0], ax)
        b[1] = min(b[1], ay)
        b[2] = max(b[2], bx)
        b[3] = max(b[3], by)

    def _width(self, w: float) -> int:
        return max(1, round(w * self.k))

    # ------------------------------------------------------------------------- primitives
    def rect(
        self, x0: float, y0: float, x1: float, y1: float, fill: RGB, outline: RGB | None = None
    ) -> None:
        """Axis-aligned rectangle between two corners (local units)."""
        self.draw.rectangle(self._box(x0, y0, x1, y1), fill=fill, outline=outline)

    def ellipse(
        self, x0: float, y0: float, x1: float, y1: float, fill: RGB, outline: RGB | None = None
    ) -> None:
        """Ellipse inscribed in the box between two corners (local units)."""
        self.draw.ellipse(self._box(x0, y0, x1, y1), fill=fill, outline=outline)

    def circle(self, x: float, y: float, r: float, fill: RGB) -> None:
        """Disc of radius ``r`` centred at ``(x, y)``."""
        self.ellipse(x - r, y - r, x + r, y + r, fill)

    def poly(
        self, pts: Sequence[tuple[float, float]], fill: RGB, outline: RGB | None = None
    ) -> None:
        """Filled polygon (local units)."""
        xy = [self._xy(x, y) for x, y in pts]
        xs = [p[0] for p in xy]
        ys = [p[1] for p in xy]
        self._grow(min(xs), min(ys), max(xs), max(ys))
        self.draw.polygon(xy, fill=fill, outline=outline)

    def line(self, pts: Sequence[tuple[float, float]], fill: RGB, width: float = 1.0) -> None:
        """Polyline of the given width (local units)."""
        xy = [self._xy(x, y) for x, y in pts]
        w = self._width(width) / 2
        xs = [p[0] for p in xy]
        ys = [p[1] for p in xy]
        self._grow(min(xs) - w, min(ys) - w, max(xs) + w, max(ys) + w)
        self.draw.line(xy, fill=fill, width=self._width(width))

    def rotated_rect(
        self,
        px: float,
        py: float,
        w: float,
        h: float,
        angle_deg: float,
        fill: RGB,
        outline: RGB | None = None,
    ) -> None:
        """A ``w`` × ``h`` rectangle standing on its bottom-left corner at ``(px, py)``,
        rotated by ``angle_deg`` (positive = clockwise, i.e. falling to the right)."""

        a = math.radians(angle_deg)
        ca, sa = math.cos(a), math.sin(a)
        corners = [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)]
        self.poly([(px + x * ca + y * sa, py - x * sa + y * ca) for x, y in corners], fill, outline)

    def pixel_bbox(self, size: int) -> list[int]:
        """The drawn extent as integer ``[x0, y0, x1, y1]`` pixels, clipped to the image."""
        b = self.bbox
        if b[0] > b[2]:
            return [0, 0, 0, 0]
        return [
            max(0, int(b[0])),
            max(0, int(b[1])),
            min(size - 1, int(b[2] + 0.999)),
            min(size - 1, int(b[3] + 0.999)),
        ]
