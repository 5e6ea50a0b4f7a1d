"""Physical families: what matter does (melting, breaking, floating, burning, balance)."""

from __future__ import annotations

from reasonbrain.data.synth.canvas import BLACK, DARK_GREY, GREY, ICE, SMOKE, WHITE, Pen, mix, shade
from reasonbrain.data.synth.family import Family
from reasonbrain.data.synth.objects import (
    BALLOON,
    CANDLE,
    GLASS,
    ICE_CUBE,
    SEESAW,
    TOWER,
    Obj,
    balloon_body,
    flame,
    plate,
    seesaw_parts,
    shards,
    tower_blocks,
)


def _puddle(p: Pen, o: Obj) -> None:
    plate(p, o.rgb)
    p.ellipse(-8, 0.3, 8, 4.2, (150, 204, 240), outline=(96, 160, 226))
    p.ellipse(-4, 2, 1, 3.2, (206, 236, 250))


def _cracked_ice(p: Pen, o: Obj) -> None:
    plate(p, o.rgb)
    for x0, h in ((-8, 5.5), (-2.5, 7.5), (3, 5.0)):
        p.rect(x0, 2, x0 + 5, 2 + h, ICE, outline=(120, 186, 226))


ICE_MELT = Family(
    name="ice_melt",
    category="physical",
    kind=ICE_CUBE,
    clauses=(
        "{obj} were left in the hot sun for an hour",
        "{obj} sat next to a heater all afternoon",
        "{obj} were placed in direct summer sunlight",
        "{obj} stayed out on a hot day until noon",
    ),
    sentences=(
        "Imagine {obj} after an hour in the blazing sun.",
        "Suppose {obj} is left out on a hot summer day.",
        "Picture {obj} after a long time under a heat lamp.",
    ),
    caption="{obj} has melted into a puddle of water",
    after=_puddle,
    wrong=_cracked_ice,
    wrong_caption="the ice cube has cracked into three pieces",
)


def _smashed_glass(p: Pen, o: Obj) -> None:
    shards(p, mix(o.rgb, WHITE, 0.15))


def _glass_on_side(p: Pen, o: Obj) -> None:
    c = o.rgb
    p.poly([(-7, 0), (8, 0), (8, 11), (-7, 8)], mix(c, WHITE, 0.3), outline=shade(c, 0.75))
    p.ellipse(6, -1.5, 9.5, 1.5, (150, 204, 240))


GLASS_SMASH = Family(
    name="glass_smash",
    category="physical",
    kind=GLASS,
    clauses=(
        "{obj} were pushed off the edge of the table",
        "{obj} slipped out of someone's hand",
        "a cat knocked {obj} onto the hard floor",
        "{obj} were dropped onto stone tiles",
    ),
    sentences=(
        "Imagine {obj} falling off the table.",
        "Suppose someone knocks over {obj} and it hits the floor.",
        "Picture {obj} right after it drops onto the ground.",
    ),
    caption="{obj} has shattered into shards on the floor",
    after=_smashed_glass,
    wrong=_glass_on_side,
    wrong_caption="the glass lies on its side, unbroken",
)


def _floated(p: Pen, o: Obj) -> None:
    p.rect(-2, 0, 2, 2, DARK_GREY)
    knot = p.top - 15.5
    balloon_body(p, o.rgb, knot)
    p.line([(0, knot), (1.5, knot - 4), (0, knot - 8)], DARK_GREY, 0.6)


BALLOON_RELEASE = Family(
    name="balloon_release",
    category="physical",
    kind=BALLOON,
    clauses=(
        "someone untied {obj} from its peg",
        "{obj} were let go",
        "the string holding {obj} were cut",
        "nobody held on to {obj} any more",
    ),
    sentences=(
        "Imagine letting go of {obj}.",
        "Suppose {obj} slips free of its string.",
        "Picture {obj} a moment after it is released.",
    ),
    caption="{obj} has floated up to the very top",
    after=_floated,
)


def _stub(p: Pen, o: Obj) -> None:
    c = o.rgb
    p.ellipse(-6, -0.5, 6, 2.5, GREY)
    p.ellipse(-7, -0.5, 7, 3.5, shade(c, 0.9))
    p.rect(-3, 1.5, 3, 6, c, outline=shade(c, 0.7))
    p.line([(0, 6), (0, 7.5)], BLACK, 0.7)
    flame(p, 0, 7.5)


def _snuffed(p: Pen, o: Obj) -> None:
    c = o.rgb
    p.ellipse(-6, -0.5, 6, 2.5, GREY)
    p.rect(-3, 1.5, 3, 22, c, outline=shade(c, 0.7))
    p.line([(0, 22), (0, 23.5)], BLACK, 0.7)
    p.line([(0, 24), (1.5, 27), (-1, 30), (1, 33)], SMOKE, 1.2)


CANDLE_BURN = Family(
    name="candle_burn",
    category="physical",
    kind=CANDLE,
    clauses=(
        "{obj} burned for five hours",
        "{obj} were left burning all night",
        "nobody blew out {obj} until morning",
        "{obj} kept burning through the whole evening",
    ),
    sentences=(
        "Imagine {obj} after it has burned for hours.",
        "Suppose {obj} is left lit overnight.",
        "Picture {obj} at the end of a very long dinner.",
    ),
    caption="{obj} has burned down to a short stub",
    after=_stub,
    wrong=_snuffed,
    wrong_caption="the candle went out at full height",
)


def _tilted(p: Pen, o: Obj) -> None:
    seesaw_parts(p, o.rgb, o.variant, 4.5)


def _tilted_wrong_way(p: Pen, o: Obj) -> None:
    seesaw_parts(p, o.rgb, o.variant, -4.5)


SEESAW_TILT = Family(
    name="seesaw_tilt",
    category="physical",
    kind=SEESAW,
    clauses=(
        "{obj} were released with the elephant and the mouse on it",
        "the person holding {obj} level let go",
        "nobody held {obj} in place",
        "{obj} were free to move",
    ),
    sentences=(
        "Imagine {obj}, with an elephant on one end and a mouse on the other, once it is let go.",
        "Suppose the elephant and the mouse on {obj} are left alone.",
        "Picture {obj} a second after it is released.",
    ),
    caption="{obj} has tipped down on the elephant's side",
    after=_tilted,
    wrong=_tilted_wrong_way,
    wrong_caption="the seesaw tipped down on the mouse's side",
)


def _collapsed(p: Pen, o: Obj) -> None:
    c = o.rgb
    edge = shade(c, 0.55)
    p.rect(-9.5, 0, -3, 6.5, c, outline=edge)
    p.rect(3, 0, 9.5, 6.5, shade(c, 0.8), outline=edge)
    p.poly([(-2.5, 0), (3.5, 0), (4, 5.5), (-2, 6.5)], c, outline=edge)


def _taller(p: Pen, o: Obj) -> None:
    tower_blocks(p, o.rgb, 5)


TOWER_COLLAPSE = Family(
    name="tower_collapse",
    category="physical",
    kind=TOWER,
    clauses=(
        "someone pulled the bottom block out of {obj}",
        "a toy car crashed into {obj}",
        "the table under {obj} were shaken hard",
        "a child bumped into {obj}",
    ),
    sentences=(
        "Imagine a strong bump hits {obj}.",
        "Suppose the base of {obj} is knocked away.",
        "Picture {obj} after an earthquake shakes the room.",
    ),
    caption="{obj} has collapsed and the blocks lie scattered",
    after=_collapsed,
    wrong=_taller,
    wrong_caption="the tower grew two blocks taller",
)

FAMILIES: tuple[Family, ...] = (
    ICE_MELT,
    GLASS_SMASH,
    BALLOON_RELEASE,
    CANDLE_BURN,
    SEESAW_TILT,
    TOWER_COLLAPSE,
)
