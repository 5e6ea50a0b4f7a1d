"""The object vocabulary: every kind of thing that can stand in a ReasonSynth scene.

An :class:`ObjectKind` knows how it is named (``"{colour} candle"``, ``"snowman with the
{colour} scarf"``), where it may appear (a background tag) and how to draw itself in its
normal state. The same kind always looks the same way; the colour attribute always shows on a
large part of it, so "the red candle" is identifiable at 64 px. Transformation families (see
:mod:`reasonbrain.data.synth.families`) draw the changed states.

Local units: ``x`` in about [-9, 9] from the object's centre, ``y`` upward from the ground.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from reasonbrain.data.synth.canvas import (
    BLACK,
    BROWN,
    DARK_GREY,
    FLAME,
    FLAME_CORE,
    GOLD,
    GREY,
    ICE,
    LEAF,
    PALETTE,
    RGB,
    SAND,
    WHITE,
    WOOD,
    Pen,
    mix,
    shade,
)


@dataclass(frozen=True)
class Obj:
    """One placed object: its kind, colour attribute, slot (0 left, 1 middle, 2 right),
    centre ``cx`` (layout units), size factor and a per-object variant (e.g. which side of a
    seesaw is heavy)."""

    kind: ObjectKind
    colour: str
    slot: int
    cx: float
    scale: float
    variant: int

    @property
    def rgb(self) -> RGB:
        """The attribute colour as RGB."""
        return PALETTE[self.colour]

    @property
    def size_word(self) -> str:
        """``small`` or ``large``."""
        return "small" if self.scale < 0.95 else "large"


Painter = Callable[[Pen, Obj], None]
"""Draws one object (in some state) with a pen positioned at its base."""


@dataclass(frozen=True)
class ObjectKind:
    """A kind of object.

    Attributes:
        name: identifier (``"candle"``).
        noun: how the kind is named without its colour (``"candle"``).
        phrase: how it is named with its colour; ``{colour}`` is replaced (``"{colour} candle"``).
        where: background tag it needs (``indoor``, ``outdoor``, ``beach``, ``any``).
        draw: painter for its normal (source) state.
    """

    name: str
    noun: str
    phrase: str
    where: str
    draw: Painter

    def named(self, colour: str) -> str:
        """The kind named with a colour (``"red candle"``)."""
        return self.phrase.format(colour=colour)


# ---------------------------------------------------------------------------- shared parts
def flame(p: Pen, x: float, y: float, r: float = 2.2) -> None:
    """A candle-like flame whose base is at ``(x, y)``."""
    p.ellipse(x - r, y, x + r, y + 3 * r, FLAME)
    p.ellipse(x - r / 2, y + 0.5, x + r / 2, y + 1.8 * r, FLAME_CORE)


def plate(p: Pen, c: RGB) -> None:
    """A flat coloured plate/saucer on the ground."""
    p.ellipse(-8.5, -0.5, 8.5, 3, c, outline=shade(c, 0.7))


def pot(p: Pen, c: RGB) -> None:
    """A flower pot with soil."""
    p.poly([(-4, 0), (4, 0), (5.5, 8), (-5.5, 8)], c)
    p.rect(-5.5, 7, 5.5, 8.5, shade(c, 0.75))
    p.rect(-4.5, 8.5, 4.5, 9, BROWN)


def glass_shape(p: Pen, c: RGB) -> None:
    """A standing tinted tumbler."""
    p.poly([(-4, 0), (4, 0), (5.5, 15), (-5.5, 15)], mix(c, WHITE, 0.3), outline=shade(c, 0.7))
    p.rect(-3.5, 1, 3.5, 8, c)


def window_frame(p: Pen, c: RGB) -> None:
    """A window frame hanging on the wall (pane drawn separately)."""
    p.rect(-8.5, 12, 8.5, 33, c)


def window_mullions(p: Pen, c: RGB) -> None:
    """The cross bars in front of the pane."""
    p.rect(-0.6, 14, 0.6, 31, c)
    p.rect(-6.5, 21.9, 6.5, 23.1, c)


def house_walls(p: Pen, wall: RGB) -> None:
    """The body of a small house."""
    p.rect(-7, 0, 7, 11, wall)


def dominos_standing(p: Pen, c: RGB, n: int = 4) -> None:
    """A row of upright dominoes."""
    for i in range(n):
        x = -8 + i * 4.6
        p.rect(x, 0, x + 2.4, 11, c, outline=shade(c, 0.6))


def bottle(p: Pen, x: float, c: RGB) -> None:
    """One upright bottle with its base centred at ``x``."""
    p.rect(x - 1.6, 0, x + 1.6, 7, c)
    p.rect(x - 0.7, 7, x + 0.7, 10, shade(c, 0.8))


# -------------------------------------------------------------------------- normal states
def _ice(p: Pen, o: Obj) -> None:
    plate(p, o.rgb)
    p.rect(-5, 2, 5, 12, ICE, outline=(120, 186, 226))
    p.rect(-3.5, 8, -1, 10.5, WHITE)


def _glass(p: Pen, o: Obj) -> None:
    glass_shape(p, o.rgb)


def balloon_body(p: Pen, c: RGB, y: float) -> None:
    """A balloon whose knot is at height ``y``."""
    p.ellipse(-5.5, y + 1, 5.5, y + 14, c)
    p.ellipse(-3.5, y + 9, -1.5, y + 12, mix(c, WHITE, 0.5))
    p.poly([(-1, y), (1, y), (0, y + 1.5)], shade(c, 0.7))


def _balloon(p: Pen, o: Obj) -> None:
    p.rect(-2, 0, 2, 2, DARK_GREY)
    p.line([(0, 2), (0, 16)], DARK_GREY, 0.6)
    balloon_body(p, o.rgb, 16)


def _candle(p: Pen, o: Obj) -> None:
    c = o.rgb
    p.ellipse(-6, -0.5, 6, 2.5, GREY)
    p.rect(-3, 1.5, 3, 22, c, outline=shade(c, 0.7))
    p.line([(0, 22), (0, 23.5)], BLACK, 0.7)
    flame(p, 0, 23.5)


def seesaw_parts(p: Pen, c: RGB, heavy: int, tilt: float) -> None:
    """A seesaw whose heavy side (``-1`` left, ``1`` right) goes down by ``tilt`` units."""
    p.poly([(-3, 0), (3, 0), (0, 6)], GREY)
    p.line([(-9, 6 + tilt * heavy), (9, 6 - tilt * heavy)], c, 2)
    # the plank's height under each animal (x = ±6) plus half the plank's thickness
    hx, lx = 6 * heavy, -6 * heavy
    hy = 7 - tilt * 2 / 3
    ly = 7 + tilt * 2 / 3
    # the heavy animal: a big grey elephant-like body; the light one: a small mouse
    p.ellipse(hx - 3.5, hy, hx + 3.5, hy + 6, (150, 150, 160))
    p.circle(hx + 3 * heavy, hy + 5, 2, (150, 150, 160))
    p.ellipse(lx - 1.5, ly, lx + 1.5, ly + 2, (110, 96, 86))


def _seesaw(p: Pen, o: Obj) -> None:
    seesaw_parts(p, o.rgb, o.variant, 0.0)


def tower_blocks(p: Pen, c: RGB, n: int = 3) -> None:
    """A tower of ``n`` stacked blocks."""
    for i in range(n):
        f = 1.0 if i % 2 == 0 else 0.8
        p.rect(-4, i * 7.5, 4, i * 7.5 + 7, shade(c, f), outline=shade(c, 0.55))


def _tower(p: Pen, o: Obj) -> None:
    tower_blocks(p, o.rgb)


def _sapling(p: Pen, o: Obj) -> None:
    pot(p, o.rgb)
    p.line([(0, 9), (0, 15)], BROWN, 0.8)
    p.ellipse(-3.5, 12, 0, 14, LEAF)
    p.ellipse(0, 14, 3.5, 16, LEAF)


def banana_shape(p: Pen, fill: RGB, tip: RGB) -> None:
    """A curved banana lying on a plate."""
    p.poly(
        [(-8, 9), (-4.5, 3.5), (0, 2.2), (4.5, 3.5), (8, 9), (4.5, 6.5), (0, 5.8), (-4.5, 6.5)],
        fill,
    )
    p.rect(7.2, 8.2, 8.6, 10, tip)
    p.rect(-8.6, 8.2, -7.2, 9.6, tip)


def _banana(p: Pen, o: Obj) -> None:
    plate(p, o.rgb)
    banana_shape(p, (250, 222, 60), (90, 70, 30))


def window_day(p: Pen, c: RGB) -> None:
    """A window showing a daytime sky."""
    window_frame(p, c)
    p.rect(-6.5, 14, 6.5, 31, (140, 200, 246))
    p.circle(-3, 27.5, 2, (252, 226, 90))
    p.ellipse(0, 17, 6, 20, WHITE)
    window_mullions(p, c)


def _window(p: Pen, o: Obj) -> None:
    window_day(p, o.rgb)


def _snowman(p: Pen, o: Obj) -> None:
    p.circle(0, 6, 6, WHITE)
    p.circle(0, 15.5, 4.2, WHITE)
    p.rect(-4, 11.2, 4, 12.8, o.rgb)
    p.rect(2, 7.5, 3.8, 12.8, o.rgb)
    p.circle(-1.5, 16.5, 0.6, BLACK)
    p.circle(1.5, 16.5, 0.6, BLACK)
    p.poly([(0, 15.5), (0, 14.5), (3.5, 15)], (246, 136, 26))


def flower_head(p: Pen, c: RGB, x: float, y: float, r: float) -> None:
    """Petals around a yellow centre."""
    p.circle(x, y, r, c)
    p.circle(x, y, r * 0.4, (250, 220, 60))


def _flower(p: Pen, o: Obj) -> None:
    p.poly([(-3.5, 0), (3.5, 0), (4.5, 5), (-4.5, 5)], (176, 96, 60))
    p.line([(0, 5), (0, 17)], LEAF, 1)
    p.ellipse(0, 9, 4, 11, LEAF)
    flower_head(p, o.rgb, 0, 19.5, 4.5)


def caterpillar_body(p: Pen, c: RGB, n: int = 4) -> None:
    """A caterpillar crawling along the ground."""
    for i in range(n):
        p.circle(-6 + i * 3.4, 2.2, 2.2, shade(c, 1.0 if i % 2 else 0.85))
    hx = -6 + n * 3.4
    p.circle(hx, 3, 2.6, shade(c, 0.7))
    p.circle(hx + 0.8, 3.8, 0.6, BLACK)


def _caterpillar(p: Pen, o: Obj) -> None:
    p.ellipse(-9, -0.5, 9, 2, (60, 150, 60))
    caterpillar_body(p, o.rgb)


def hourglass(p: Pen, c: RGB, top: float, bottom: float) -> None:
    """An hourglass whose top/bottom bulbs are filled to the given fractions (0..1)."""
    glass = (224, 236, 242)
    p.poly([(-5, 2), (5, 2), (0.6, 11), (-0.6, 11)], glass)
    p.poly([(-5, 20), (5, 20), (0.6, 11), (-0.6, 11)], glass)
    if bottom > 0:
        h = 9 * bottom
        w = 5 * bottom
        p.poly([(-5, 2), (5, 2), (w * 0.4, 2 + h), (-w * 0.4, 2 + h)], SAND)
    if top > 0:
        h = 9 * top
        w = 0.6 + 4.4 * top
        p.poly([(-w, 11 + h), (w, 11 + h), (0.6, 11), (-0.6, 11)], SAND)
    p.rect(-6.5, 0, 6.5, 2, c)
    p.rect(-6.5, 20, 6.5, 22, c)
    p.rect(-6, 2, -5, 20, shade(c, 0.75))
    p.rect(5, 2, 6, 20, shade(c, 0.75))


def _hourglass(p: Pen, o: Obj) -> None:
    hourglass(p, o.rgb, 1.0, 0.0)


def _dominos(p: Pen, o: Obj) -> None:
    dominos_standing(p, o.rgb)


def _bottles(p: Pen, o: Obj) -> None:
    for x in (-3.5, 0.5, 4.5):
        bottle(p, x, o.rgb)
    p.circle(-7.2, 1.6, 1.6, WHITE)


def lamp(p: Pen, c: RGB, glow: float) -> None:
    """A table lamp; ``glow`` is the radius of its light halo (0 = switched off)."""
    if glow > 0:
        p.circle(0, 15, glow, (255, 240, 150))
        p.circle(0, 15, glow * 0.6, (255, 250, 200))
    p.rect(-3.5, 0, 3.5, 1.5, DARK_GREY)
    p.line([(0, 1.5), (0, 13)], DARK_GREY, 0.8)
    shade_c = c if glow > 0 else shade(c, 0.45)
    p.poly([(-6, 12.5), (6, 12.5), (3.5, 20), (-3.5, 20)], shade_c)
    if glow > 0:
        p.circle(0, 11.5, 1.5, (255, 230, 90))


def _lamp(p: Pen, o: Obj) -> None:
    lamp(p, o.rgb, 9.5)


def _sandcastle(p: Pen, o: Obj) -> None:
    dark = shade(SAND, 0.85)
    p.rect(-8, 0, 8, 8, SAND, outline=dark)
    p.rect(-8, 8, -4, 14, SAND, outline=dark)
    p.rect(4, 8, 8, 14, SAND, outline=dark)
    p.rect(-2, 8, 2, 17, SAND, outline=dark)
    p.line([(0, 17), (0, 24)], BROWN, 0.6)
    p.poly([(0, 24), (0, 19.5), (5.5, 21.8)], o.rgb)


def rocket(p: Pen, c: RGB) -> None:
    """A firework rocket standing on the ground."""
    p.rect(-1.8, 1, 1.8, 11, c)
    p.poly([(-1.8, 11), (1.8, 11), (0, 14)], shade(c, 0.7))
    p.poly([(-1.8, 1), (-3.5, 0), (-1.8, 4)], DARK_GREY)
    p.poly([(1.8, 1), (3.5, 0), (1.8, 4)], DARK_GREY)


def _firework(p: Pen, o: Obj) -> None:
    rocket(p, o.rgb)


def house(p: Pen, c: RGB) -> None:
    """A small house with a coloured roof."""
    house_walls(p, (236, 222, 196))
    p.poly([(-9, 11), (9, 11), (0, 19)], c)
    p.rect(-1.5, 0, 1.5, 5, WOOD)
    p.rect(3, 5, 5.5, 8, (140, 200, 246))


def _house(p: Pen, o: Obj) -> None:
    house(p, o.rgb)


def basket(p: Pen, c: RGB) -> None:
    """A coloured basket (the front of the nest)."""
    p.poly([(-7, 0), (7, 0), (8, 5), (-8, 5)], c)
    p.line([(-7.5, 2.5), (7.5, 2.5)], shade(c, 0.7), 0.6)


def _egg(p: Pen, o: Obj) -> None:
    p.ellipse(-4, 2.5, 4, 14, (246, 238, 222), outline=(200, 190, 170))
    basket(p, o.rgb)


def cake(p: Pen, c: RGB, tiers: int = 1) -> None:
    """A layer cake with coloured icing standing on the plate."""
    for t in range(tiers):
        w = 6 - 1.5 * t
        y = 2.5 + 8 * t
        p.rect(-w, y, w, y + 8, (240, 224, 196))
        p.rect(-w, y + 5, w, y + 8, c)
        p.rect(-w, y + 2, w, y + 3, c)
    top = 2.5 + 8 * tiers
    p.rect(-0.5, top, 0.5, top + 2.5, WHITE)


def _cake(p: Pen, o: Obj) -> None:
    plate(p, (232, 232, 236))
    cake(p, o.rgb)


def cushion(p: Pen, c: RGB) -> None:
    """A flat coloured cushion."""
    p.ellipse(-8.5, 0, 8.5, 4, c, outline=shade(c, 0.7))


def frog(p: Pen, body: RGB) -> None:
    """A frog sitting on its cushion."""
    p.ellipse(-5.5, 3, 5.5, 11, body)
    p.circle(-3, 11, 1.8, body)
    p.circle(3, 11, 1.8, body)
    p.circle(-3, 11.3, 0.8, BLACK)
    p.circle(3, 11.3, 0.8, BLACK)


def _frog(p: Pen, o: Obj) -> None:
    cushion(p, o.rgb)
    frog(p, (60, 170, 60))


def chest(p: Pen, c: RGB) -> None:
    """A closed treasure chest with a coloured lid."""
    p.rect(-7.5, 0, 7.5, 8, WOOD, outline=BROWN)
    p.ellipse(-7.5, 6, 7.5, 14, c)
    p.rect(-7.5, 7, 7.5, 10, c)
    p.rect(-1, 6.5, 1, 9, GOLD)


def _chest(p: Pen, o: Obj) -> None:
    chest(p, o.rgb)


def _bean(p: Pen, o: Obj) -> None:
    pot(p, o.rgb)
    p.ellipse(-1.5, 8.5, 1.5, 10.5, (120, 200, 90))


# ------------------------------------------------------------------------------ the kinds
ICE_CUBE = ObjectKind("ice_cube", "ice cube", "ice cube on the {colour} saucer", "any", _ice)
GLASS = ObjectKind("glass", "glass", "{colour} glass", "indoor", _glass)
BALLOON = ObjectKind("balloon", "balloon", "{colour} balloon", "any", _balloon)
CANDLE = ObjectKind("candle", "candle", "{colour} candle", "indoor", _candle)
SEESAW = ObjectKind("seesaw", "seesaw", "{colour} seesaw", "outdoor", _seesaw)
TOWER = ObjectKind("tower", "block tower", "tower of {colour} blocks", "indoor", _tower)
SAPLING = ObjectKind("sapling", "sapling", "sapling in the {colour} pot", "outdoor", _sapling)
BANANA = ObjectKind("banana", "banana", "banana on the {colour} plate", "indoor", _banana)
WINDOW = ObjectKind("window", "window", "window with the {colour} frame", "indoor", _window)
SNOWMAN = ObjectKind("snowman", "snowman", "snowman with the {colour} scarf", "outdoor", _snowman)
FLOWER = ObjectKind("flower", "flower", "{colour} flower", "any", _flower)
CATERPILLAR = ObjectKind(
    "caterpillar", "caterpillar", "{colour} caterpillar", "outdoor", _caterpillar
)
HOURGLASS = ObjectKind(
    "hourglass", "hourglass", "hourglass with the {colour} frame", "indoor", _hourglass
)
DOMINOS = ObjectKind("dominos", "row of dominoes", "row of {colour} dominoes", "indoor", _dominos)
BOTTLES = ObjectKind("bottles", "bottles", "{colour} bottles", "any", _bottles)
LAMP = ObjectKind("lamp", "lamp", "{colour} lamp", "indoor", _lamp)
SANDCASTLE = ObjectKind(
    "sandcastle", "sandcastle", "sandcastle with the {colour} flag", "beach", _sandcastle
)
FIREWORK = ObjectKind("firework", "rocket", "{colour} firework rocket", "outdoor", _firework)
HOUSE = ObjectKind("house", "house", "house with the {colour} roof", "outdoor", _house)
EGG = ObjectKind("egg", "egg", "egg in the {colour} basket", "any", _egg)
CAKE = ObjectKind("cake", "cake", "{colour} cake", "indoor", _cake)
FROG = ObjectKind("frog", "frog", "frog on the {colour} cushion", "outdoor", _frog)
CHEST = ObjectKind("chest", "chest", "treasure chest with the {colour} lid", "any", _chest)
BEAN = ObjectKind("bean", "magic bean", "magic bean in the {colour} pot", "outdoor", _bean)


def shards(p: Pen, c: RGB) -> None:
    """Broken pieces scattered on the ground in front of where something stood."""
    edge = shade(c, 0.7)
    for x, y, s in ((-8, -1, 3.0), (-4, 0.5, 3.5), (-0.5, -2, 3.0), (3, 0, 4.0), (6.5, -1.5, 3.0)):
        p.poly([(x, y), (x + s, y + 0.5), (x + s * 0.4, y + s * 0.9)], c, outline=edge)
    for x, y in ((-6, -3), (1.5, -3.5), (7, 1)):
        p.rect(x, y, x + 1.2, y + 1.2, c)
