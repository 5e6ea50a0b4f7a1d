"""Causal families: one event causes another (chain reactions, switches, impacts)."""

from __future__ import annotations

from reasonbrain.data.synth.canvas import (
    BROWN,
    DARK_GREY,
    FLAME_CORE,
    SAND,
    SMOKE,
    WATER,
    WHITE,
    Pen,
    mix,
    shade,
)
from reasonbrain.data.synth.family import Family
from reasonbrain.data.synth.objects import (
    BALLOON,
    BOTTLES,
    DOMINOS,
    FIREWORK,
    LAMP,
    SANDCASTLE,
    WINDOW,
    Obj,
    lamp,
    shards,
    window_frame,
    window_mullions,
)


def _all_fallen(p: Pen, o: Obj) -> None:
    c = o.rgb
    for i in range(4):
        p.rotated_rect(-9 + i * 2.5, 0, 2.4, 11, 75, c, outline=shade(c, 0.6))


def _first_fallen(p: Pen, o: Obj) -> None:
    c = o.rgb
    p.rotated_rect(-8, 0, 2.4, 11, 24, c, outline=shade(c, 0.6))
    for i in range(1, 4):
        x = -8 + i * 4.6
        p.rect(x, 0, x + 2.4, 11, c, outline=shade(c, 0.6))


DOMINO_CHAIN = Family(
    name="domino_chain",
    category="causal",
    kind=DOMINOS,
    clauses=(
        "someone pushed the first domino in {obj}",
        "the leftmost piece of {obj} were tapped",
        "a finger flicked the end of {obj}",
        "the first domino of {obj} tipped over",
    ),
    sentences=(
        "Imagine someone nudges the first piece of {obj}.",
        "Suppose the first domino in {obj} falls.",
        "Picture {obj} after the first domino is pushed.",
    ),
    caption="{obj} has fallen over, domino after domino",
    after=_all_fallen,
    wrong=_first_fallen,
    wrong_caption="only the first domino fell",
)


def _lamp_off(p: Pen, o: Obj) -> None:
    lamp(p, o.rgb, 0.0)


def _lamp_fallen(p: Pen, o: Obj) -> None:
    p.circle(4, 4, 5.5, (255, 240, 150))
    p.rect(-8.5, 0, -7, 3.5, DARK_GREY)
    p.line([(-7, 1.2), (3, 1.2)], DARK_GREY, 0.8)
    p.poly([(2.5, -0.5), (2.5, 7.5), (8.5, 5.5), (8.5, 1.5)], o.rgb)


LAMP_OFF = Family(
    name="lamp_off",
    category="causal",
    kind=LAMP,
    clauses=(
        "someone switched off {obj}",
        "the power to {obj} were cut",
        "{obj} were unplugged",
        "the switch on {obj} were flipped off",
    ),
    sentences=(
        "Imagine {obj} switched off.",
        "Suppose the electricity to {obj} goes out.",
        "Picture the corner with {obj} after its light is turned off.",
    ),
    caption="{obj} is switched off and no longer glows",
    after=_lamp_off,
    wrong=_lamp_fallen,
    wrong_caption="the lamp has fallen over but is still lit",
)


def _knocked_over(p: Pen, o: Obj) -> None:
    c = o.rgb
    p.rect(-9, 0, -2, 3.2, c)
    p.rect(-2, 1, 1, 2.2, shade(c, 0.8))
    p.rotated_rect(0, 0, 3.2, 7, 62, c)
    p.rect(-7, 3.2, 0, 6.4, shade(c, 0.9))
    p.rect(0, 4.2, 3, 5.4, shade(c, 0.75))
    p.circle(7.6, 1.6, 1.6, WHITE)


def _smashed_bottles(p: Pen, o: Obj) -> None:
    shards(p, o.rgb)
    p.circle(-7.2, 1.6, 1.6, WHITE)


BOTTLES_KNOCKED = Family(
    name="bottles_knocked",
    category="causal",
    kind=BOTTLES,
    clauses=(
        "the white ball rolled hard into {obj}",
        "someone threw the ball at {obj}",
        "the ball beside {obj} were kicked toward them",
        "a fast ball struck {obj}",
    ),
    sentences=(
        "Imagine the ball crashing into {obj}.",
        "Suppose the ball is rolled straight at {obj}.",
        "Picture {obj} just after the ball hits them.",
    ),
    caption="{obj} have been knocked over by the ball",
    after=_knocked_over,
    wrong=_smashed_bottles,
    wrong_caption="the bottles have shattered into shards",
)


def _popped(p: Pen, o: Obj) -> None:
    c = o.rgb
    p.rect(-2, 0, 2, 2, DARK_GREY)
    p.line([(0, 2), (4, 0.8), (8, 1.2)], DARK_GREY, 0.6)
    for x, y in ((-8, 1), (-4.5, 4), (-1, 2.5), (3.5, 5), (6, 2.5)):
        p.poly([(x, y), (x + 2.8, y + 0.6), (x + 0.8, y + 2.4)], c)


def _shrivelled(p: Pen, o: Obj) -> None:
    c = shade(o.rgb, 0.75)
    p.rect(-2, 0, 2, 2, DARK_GREY)
    p.line([(0, 2), (0, 18)], DARK_GREY, 0.6)
    p.poly([(-3.5, 19), (3, 18.5), (4, 24), (1, 28), (-2.5, 27), (-4, 23)], c)


BALLOON_POP = Family(
    name="balloon_pop",
    category="causal",
    kind=BALLOON,
    clauses=(
        "someone poked {obj} with a pin",
        "{obj} touched a sharp thorn",
        "a dart hit {obj}",
        "{obj} were pricked with a needle",
    ),
    sentences=(
        "Imagine a pin pressed into {obj}.",
        "Suppose {obj} meets a sharp cactus.",
        "Picture {obj} right after a dart hits it.",
    ),
    caption="{obj} has popped into shreds",
    after=_popped,
    wrong=_shrivelled,
    wrong_caption="the balloon slowly shrivelled but stayed on its string",
)


def _shattered_window(p: Pen, o: Obj) -> None:
    c = o.rgb
    window_frame(p, c)
    p.rect(-6.5, 14, 6.5, 31, (150, 170, 186))
    dark = (26, 26, 30)
    p.poly([(-6.5, 31), (-0.5, 31), (-3.5, 23.5), (-6.5, 26)], dark)
    p.poly([(0.5, 14), (6.5, 14), (6.5, 21), (3, 18.5)], dark)
    for end in ((-6.5, 16), (6.5, 28), (-2, 14), (3, 31)):
        p.line([(0, 22.5), end], WHITE, 0.6)
    window_mullions(p, c)


WINDOW_SHATTER = Family(
    name="window_shatter",
    category="causal",
    kind=WINDOW,
    clauses=(
        "a baseball flew straight into {obj}",
        "someone threw a rock at {obj}",
        "a football smashed against {obj}",
        "a stone from a slingshot hit {obj}",
    ),
    sentences=(
        "Imagine a ball crashing through {obj}.",
        "Suppose {obj} is hit hard by a rock.",
        "Picture {obj} after a ball flies into it.",
    ),
    caption="the glass of {obj} is shattered and full of holes",
    after=_shattered_window,
)


def _washed_flat(p: Pen, o: Obj) -> None:
    p.ellipse(-9.5, -1.5, 9.5, 1.5, mix(WATER, WHITE, 0.3))
    p.ellipse(-9, -0.5, 9, 5, shade(SAND, 0.8))
    p.line([(-5, 3.5), (2, 4.5)], BROWN, 0.6)
    p.poly([(2, 3.8), (6.5, 4.2), (3.5, 6.8)], o.rgb)


def _flag_gone(p: Pen, o: Obj) -> None:
    dark = shade(SAND, 0.85)
    p.ellipse(-9.5, -1.5, 9.5, 1.5, mix(WATER, WHITE, 0.3))
    p.rect(-8, 0, 8, 8, SAND, outline=dark)
    p.rect(-8, 8, -4, 14, SAND, outline=dark)
    p.rect(4, 8, 8, 14, SAND, outline=dark)
    p.rect(-2, 8, 2, 17, SAND, outline=dark)
    p.poly([(-3, 27), (2.5, 25), (-1, 31)], o.rgb)


SANDCASTLE_WAVE = Family(
    name="sandcastle_wave",
    category="causal",
    kind=SANDCASTLE,
    clauses=(
        "a big wave rolled over {obj}",
        "the tide came in over {obj}",
        "the sea washed up across {obj}",
        "a huge wave crashed onto {obj}",
    ),
    sentences=(
        "Imagine the tide reaching {obj}.",
        "Suppose a large wave sweeps over {obj}.",
        "Picture {obj} after the sea washes over it.",
    ),
    caption="{obj} has been washed flat by the wave",
    after=_washed_flat,
    wrong=_flag_gone,
    wrong_caption="only the flag blew away; the castle still stands",
)


def _burst(p: Pen, o: Obj) -> None:
    c = o.rgb
    cy = p.top - 11
    p.ellipse(-2.5, -0.5, 2.5, 1, (60, 56, 52))
    p.line([(0, 1), (0.8, cy * 0.4), (0, cy - 9)], SMOKE, 0.6)
    tip = mix(c, WHITE, 0.45)
    for dx, dy in (
        (8, 0),
        (5.7, 5.7),
        (0, 8),
        (-5.7, 5.7),
        (-8, 0),
        (-5.7, -5.7),
        (0, -8),
        (5.7, -5.7),
    ):
        p.line([(dx * 0.25, cy + dy * 0.25), (dx, cy + dy)], c, 1.3)
        p.circle(dx, cy + dy, 1.0, tip)
    p.circle(0, cy, 1.8, FLAME_CORE)


def _fizzled(p: Pen, o: Obj) -> None:
    c = o.rgb
    p.rect(-5, 0, 5, 3.6, c)
    p.poly([(5, 0), (5, 3.6), (8, 1.8)], shade(c, 0.7))
    p.circle(-6, 6, 2.5, SMOKE)
    p.circle(-4, 10, 2, SMOKE)


FIREWORK_LAUNCH = Family(
    name="firework_launch",
    category="causal",
    kind=FIREWORK,
    clauses=(
        "someone lit the fuse of {obj}",
        "a spark touched the fuse of {obj}",
        "{obj} were set off at the festival",
        "the fuse of {obj} caught fire",
    ),
    sentences=(
        "Imagine {obj} a few seconds after its fuse is lit.",
        "Suppose someone sets off {obj}.",
        "Picture {obj} once it has been launched.",
    ),
    caption="{obj} has shot up and burst into sparks in the sky",
    after=_burst,
    wrong=_fizzled,
    wrong_caption="the rocket toppled over and fizzled on the ground",
)

FAMILIES: tuple[Family, ...] = (
    DOMINO_CHAIN,
    LAMP_OFF,
    BOTTLES_KNOCKED,
    BALLOON_POP,
    WINDOW_SHATTER,
    SANDCASTLE_WAVE,
    FIREWORK_LAUNCH,
)
