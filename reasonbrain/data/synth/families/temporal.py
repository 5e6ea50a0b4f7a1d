"""Temporal families: what time does (growing, ripening, nightfall, thawing, wilting)."""

from __future__ import annotations

from reasonbrain.data.synth.canvas import (
    BLACK,
    BROWN,
    DARK_LEAF,
    LEAF,
    WATER,
    WHITE,
    Pen,
    mix,
    shade,
)
from reasonbrain.data.synth.family import Family
from reasonbrain.data.synth.objects import (
    BANANA,
    CATERPILLAR,
    FLOWER,
    HOURGLASS,
    SAPLING,
    SNOWMAN,
    WINDOW,
    Obj,
    banana_shape,
    flower_head,
    hourglass,
    plate,
    pot,
    window_frame,
    window_mullions,
)


def _tree(p: Pen, o: Obj) -> None:
    pot(p, o.rgb)
    p.rect(-1.6, 9, 1.6, 26, BROWN)
    p.circle(-4.5, 27, 4.5, DARK_LEAF)
    p.circle(4.5, 27, 4.5, DARK_LEAF)
    p.circle(0, 32, 8, LEAF)


def _dead_sapling(p: Pen, o: Obj) -> None:
    pot(p, o.rgb)
    p.line([(0, 9), (0.5, 12), (2.5, 13.5)], BROWN, 0.8)
    p.ellipse(-8, -0.5, -5, 1.2, (150, 110, 50))
    p.ellipse(5, -0.5, 8, 1.2, (150, 110, 50))


SAPLING_GROW = Family(
    name="sapling_grow",
    category="temporal",
    kind=SAPLING,
    clauses=(
        "{obj} were left to grow for fifty years",
        "{obj} were watered and cared for over many decades",
        "{obj} grew undisturbed for half a century",
        "many decades went by for {obj}",
    ),
    sentences=(
        "Imagine {obj} fifty years from now.",
        "Suppose {obj} keeps growing for decades.",
        "Picture {obj} after a whole lifetime of growing.",
    ),
    caption="{obj} has grown into a tall tree",
    after=_tree,
    wrong=_dead_sapling,
    wrong_caption="the sapling has dried up and died",
)


def _brown_banana(p: Pen, o: Obj) -> None:
    plate(p, o.rgb)
    banana_shape(p, (140, 92, 36), (60, 40, 20))
    for x, y in ((-5.5, 5.8), (-2, 4.2), (1.5, 4.0), (5, 5.5)):
        p.circle(x, y, 1.1, (50, 32, 16))


def _green_banana(p: Pen, o: Obj) -> None:
    plate(p, o.rgb)
    banana_shape(p, (110, 186, 60), (60, 90, 30))


BANANA_RIPEN = Family(
    name="banana_ripen",
    category="temporal",
    kind=BANANA,
    clauses=(
        "{obj} were left on the counter for two weeks",
        "nobody ate {obj} for a fortnight",
        "{obj} sat in a warm kitchen for many days",
        "{obj} were forgotten for two weeks",
    ),
    sentences=(
        "Imagine {obj} two weeks from now.",
        "Suppose {obj} is forgotten for a couple of weeks.",
        "Picture {obj} after fourteen days in a warm room.",
    ),
    caption="{obj} has turned brown with dark spots",
    after=_brown_banana,
    wrong=_green_banana,
    wrong_caption="the banana has turned green",
)


def _night_window(p: Pen, o: Obj) -> None:
    c = o.rgb
    window_frame(p, c)
    navy = (18, 24, 70)
    p.rect(-6.5, 14, 6.5, 31, navy)
    p.circle(3, 27, 2.6, (244, 238, 180))
    p.circle(4.4, 28, 2.2, navy)
    for x, y in ((-4.5, 18), (-2.5, 26), (4, 18.5), (-5, 29), (2, 16)):
        p.rect(x, y, x + 0.8, y + 0.8, WHITE)
    window_mullions(p, c)


WINDOW_NIGHT = Family(
    name="window_night",
    category="temporal",
    kind=WINDOW,
    clauses=(
        "we looked through {obj} at midnight",
        "the sun went down behind {obj} and night fell",
        "it were the middle of the night outside {obj}",
        "many hours passed until it was dark outside {obj}",
    ),
    sentences=(
        "Imagine the view through {obj} at midnight.",
        "Suppose night falls outside {obj}.",
        "Picture {obj} late at night.",
    ),
    caption="{obj} shows a dark night sky with the moon",
    after=_night_window,
)


def _slush(p: Pen, o: Obj) -> None:
    p.ellipse(-9.5, -1.5, 9.5, 1.5, mix(WATER, WHITE, 0.4))
    p.ellipse(-8.5, -0.5, 8.5, 4, (226, 232, 238))
    p.rect(-6, 2.2, 2, 3.6, o.rgb)
    p.poly([(3, 2), (3, 3.2), (6.5, 2.6)], (246, 136, 26))
    p.circle(-2, 1, 0.6, BLACK)
    p.circle(5, 1.2, 0.6, BLACK)


def _bigger_snowman(p: Pen, o: Obj) -> None:
    p.circle(0, 6.5, 6.5, WHITE)
    p.circle(0, 16.5, 5, WHITE)
    p.circle(0, 24.5, 3.8, WHITE)
    p.rect(-3.6, 20.5, 3.6, 22, o.rgb)
    p.circle(-1.3, 25.5, 0.6, BLACK)
    p.circle(1.3, 25.5, 0.6, BLACK)


SNOWMAN_MELT = Family(
    name="snowman_melt",
    category="temporal",
    kind=SNOWMAN,
    clauses=(
        "spring arrived and the days grew warm around {obj}",
        "{obj} stood in the warm spring sun for a week",
        "the weather turned warm and sunny for {obj}",
        "winter ended for {obj}",
    ),
    sentences=(
        "Imagine {obj} in the middle of spring.",
        "Suppose {obj} is still outside when spring comes.",
        "Picture {obj} after a week of warm weather.",
    ),
    caption="{obj} has melted into slush with the scarf lying in it",
    after=_slush,
    wrong=_bigger_snowman,
    wrong_caption="the snowman has grown a third snowball",
)


def _wilted(p: Pen, o: Obj) -> None:
    c = o.rgb
    p.poly([(-3.5, 0), (3.5, 0), (4.5, 5), (-4.5, 5)], (176, 96, 60))
    p.line([(0, 5), (1, 11), (4, 13.5), (6, 10.5)], (130, 130, 50), 1)
    p.circle(6, 9, 2.4, mix(c, (110, 70, 30), 0.6))
    p.circle(-7.5, 0.8, 1.3, c)
    p.circle(7.5, 0.6, 1.3, c)
    p.circle(-5.5, -0.2, 1.1, c)


def _bloomed(p: Pen, o: Obj) -> None:
    p.poly([(-3.5, 0), (3.5, 0), (4.5, 5), (-4.5, 5)], (176, 96, 60))
    p.line([(0, 5), (0, 19)], LEAF, 1)
    p.ellipse(0, 9, 5, 11.5, LEAF)
    p.ellipse(-5, 12, 0, 14.5, LEAF)
    flower_head(p, o.rgb, 0, 23, 7)


FLOWER_WILT = Family(
    name="flower_wilt",
    category="temporal",
    kind=FLOWER,
    clauses=(
        "nobody watered {obj} for two weeks",
        "{obj} went without water for a long time",
        "{obj} were left in a dry room for weeks",
        "{obj} got no water at all for a month",
    ),
    sentences=(
        "Imagine {obj} after weeks without water.",
        "Suppose everyone forgets to water {obj}.",
        "Picture {obj} after a long dry spell.",
    ),
    caption="{obj} has wilted and dropped its petals",
    after=_wilted,
    wrong=_bloomed,
    wrong_caption="the flower has bloomed bigger",
)


def _butterfly(p: Pen, o: Obj) -> None:
    c = o.rgb
    p.ellipse(-9, -0.5, 9, 2, (60, 150, 60))
    p.ellipse(-8.5, 14, -0.3, 22, c)
    p.ellipse(0.3, 14, 8.5, 22, c)
    p.ellipse(-6.5, 8, -0.3, 14.5, shade(c, 0.8))
    p.ellipse(0.3, 8, 6.5, 14.5, shade(c, 0.8))
    p.circle(-4.5, 18.5, 1.2, WHITE)
    p.circle(4.5, 18.5, 1.2, WHITE)
    p.line([(0, 8), (0, 20)], BLACK, 1.2)


def _fat_caterpillar(p: Pen, o: Obj) -> None:
    c = o.rgb
    p.ellipse(-9, -0.5, 9, 2, (60, 150, 60))
    for i in range(5):
        p.circle(-7.5 + i * 3.3, 3, 3, shade(c, 1.0 if i % 2 else 0.85))
    p.circle(7.5, 4, 2.5, shade(c, 0.7))


CATERPILLAR_CHANGE = Family(
    name="caterpillar_change",
    category="temporal",
    kind=CATERPILLAR,
    clauses=(
        "a few weeks passed for {obj}",
        "{obj} spun a cocoon and waited for a month",
        "{obj} were left alone in the garden for weeks",
        "{obj} completed its whole life cycle",
    ),
    sentences=(
        "Imagine {obj} a month from now.",
        "Suppose {obj} finishes changing inside its cocoon.",
        "Picture {obj} after it has grown up.",
    ),
    caption="{obj} has turned into a butterfly",
    after=_butterfly,
    wrong=_fat_caterpillar,
    wrong_caption="the caterpillar has only grown fatter",
)


def _run_out(p: Pen, o: Obj) -> None:
    hourglass(p, o.rgb, 0.0, 1.0)


def _half_way(p: Pen, o: Obj) -> None:
    hourglass(p, o.rgb, 0.5, 0.5)


HOURGLASS_EMPTY = Family(
    name="hourglass_empty",
    category="temporal",
    kind=HOURGLASS,
    clauses=(
        "an hour went by next to {obj}",
        "{obj} were left running for a whole hour",
        "nobody touched {obj} until all the time ran out",
        "{obj} ran for its full time",
    ),
    sentences=(
        "Imagine {obj} one hour later.",
        "Suppose {obj} is left alone until it finishes.",
        "Picture {obj} when its time is up.",
    ),
    caption="all the sand in {obj} has run into the bottom",
    after=_run_out,
    wrong=_half_way,
    wrong_caption="the hourglass is only half run",
)

FAMILIES: tuple[Family, ...] = (
    SAPLING_GROW,
    BANANA_RIPEN,
    WINDOW_NIGHT,
    SNOWMAN_MELT,
    FLOWER_WILT,
    CATERPILLAR_CHANGE,
    HOURGLASS_EMPTY,
)
