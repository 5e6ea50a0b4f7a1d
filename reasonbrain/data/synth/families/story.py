"""Story families: fairy-tale and everyday-story outcomes (dragons, hatching, parties, magic)."""

from __future__ import annotations

from reasonbrain.data.synth.canvas import (
    BLACK,
    CHARCOAL,
    DARK_LEAF,
    FLAME,
    FLAME_CORE,
    GOLD,
    GREY,
    LEAF,
    SKIN,
    SMOKE,
    WHITE,
    WOOD,
    Pen,
    shade,
)
from reasonbrain.data.synth.family import Family
from reasonbrain.data.synth.objects import (
    BEAN,
    CAKE,
    CHEST,
    EGG,
    FROG,
    HOUSE,
    Obj,
    basket,
    cake,
    cushion,
    flower_head,
    frog,
    plate,
    pot,
)


def _burnt_house(p: Pen, o: Obj) -> None:
    p.rect(-7, 0, 7, 11, CHARCOAL)
    p.poly([(-9, 11), (9, 11), (6, 14), (3, 12.5), (0, 16), (-3, 13), (-6, 15)], shade(o.rgb, 0.35))
    p.rect(-1.5, 0, 1.5, 5, BLACK)
    p.poly([(-6, 11), (-1, 11), (-3.5, 19)], FLAME)
    p.poly([(0, 11), (6, 11), (3, 21)], FLAME)
    p.poly([(1.5, 11), (4.5, 11), (3, 16)], FLAME_CORE)
    p.circle(-2, 24, 3, SMOKE)
    p.circle(2.5, 27, 2.5, SMOKE)


def _frozen_house(p: Pen, o: Obj) -> None:
    p.rect(-7, 0, 7, 11, (200, 230, 246))
    p.poly([(-9, 11), (9, 11), (0, 19)], o.rgb)
    p.poly([(-5, 15), (5, 15), (0, 19)], WHITE)
    for x in (-7, -4, -1, 2, 5):
        p.poly([(x, 11), (x + 2, 11), (x + 1, 7.5)], WHITE)
    p.rect(-1.5, 0, 1.5, 5, (150, 190, 210))


DRAGON_ATTACK = Family(
    name="dragon_attack",
    category="story",
    kind=HOUSE,
    clauses=(
        "a dragon attacked {obj}",
        "a fire-breathing dragon flew over {obj}",
        "the dragon from the story breathed fire on {obj}",
        "an angry dragon swooped down on {obj}",
    ),
    sentences=(
        "Imagine a dragon attacking {obj}.",
        "Suppose the dragon in the tale sets upon {obj}.",
        "Picture {obj} after the dragon's raid.",
    ),
    caption="{obj} has been burnt and is on fire",
    after=_burnt_house,
    wrong=_frozen_house,
    wrong_caption="the house is frozen in ice",
)


def _chick(p: Pen, o: Obj) -> None:
    shell = (246, 238, 222)
    p.poly([(-8.5, 5), (-4.5, 5), (-5, 8.5), (-6, 7), (-7, 9)], shell)
    p.poly([(4.5, 5), (8.5, 5), (8, 8.5), (7, 7), (6, 9)], shell)
    p.circle(0, 7, 4.5, (250, 222, 60))
    p.circle(2.2, 12.5, 3, (250, 222, 60))
    p.poly([(4.8, 13), (4.8, 11.8), (7, 12.4)], (246, 136, 26))
    p.circle(2.8, 13.4, 0.6, BLACK)
    basket(p, o.rgb)


def _broken_egg(p: Pen, o: Obj) -> None:
    p.ellipse(-7.5, 4, 7.5, 9, WHITE)
    p.circle(0, 6.5, 2.3, (250, 180, 20))
    p.poly([(-8, 8), (-5, 8), (-6.5, 11)], (246, 238, 222))
    basket(p, o.rgb)


EGG_HATCH = Family(
    name="egg_hatch",
    category="story",
    kind=EGG,
    clauses=(
        "{obj} were kept warm until it hatched",
        "the hen sat on {obj} for three weeks",
        "the story reached the moment {obj} cracked open",
        "{obj} were ready to hatch at last",
    ),
    sentences=(
        "Imagine {obj} three weeks later.",
        "Suppose {obj} is kept warm until the end of the story.",
        "Picture {obj} on the day it hatches.",
    ),
    caption="{obj} has hatched into a yellow chick",
    after=_chick,
    wrong=_broken_egg,
    wrong_caption="the egg broke and the yolk spilled",
)


def _empty_plate(p: Pen, o: Obj) -> None:
    plate(p, (232, 232, 236))
    p.ellipse(1.5, 1.6, 6, 2.8, o.rgb)
    for x, y in ((-4.5, 2.2), (-1, 1.4), (-5.5, 0.8)):
        p.circle(x, y, 0.7, (196, 160, 110))
    p.line([(-7, 1.2), (-1.5, 2.8)], GREY, 0.6)


def _bigger_cake(p: Pen, o: Obj) -> None:
    plate(p, (232, 232, 236))
    cake(p, o.rgb, tiers=2)


PARTY_OVER = Family(
    name="party_over",
    category="story",
    kind=CAKE,
    clauses=(
        "the party guests shared {obj}",
        "the birthday party with {obj} came to an end",
        "the hungry guests arrived for {obj}",
        "the celebration with {obj} were over",
    ),
    sentences=(
        "Imagine the table after the guests have eaten {obj}.",
        "Suppose the party is over and {obj} was served.",
        "Picture {obj} when the party has ended.",
    ),
    caption="{obj} has been eaten, leaving an empty plate with crumbs",
    after=_empty_plate,
    wrong=_bigger_cake,
    wrong_caption="a second tier was added to the cake",
)


def _prince(p: Pen, o: Obj) -> None:
    cushion(p, o.rgb)
    p.rect(-2.2, 3, -0.6, 9, (50, 40, 60))
    p.rect(0.6, 3, 2.2, 9, (50, 40, 60))
    p.poly([(-4, 9), (4, 9), (3.2, 17.5), (-3.2, 17.5)], (30, 120, 120))
    p.line([(-3.2, 17), (-5.5, 11.5)], (30, 120, 120), 1.2)
    p.line([(3.2, 17), (5.5, 11.5)], (30, 120, 120), 1.2)
    p.circle(0, 20.2, 2.6, SKIN)
    p.poly(
        [(-2.6, 22.2), (2.6, 22.2), (2.6, 25), (1.3, 23.6), (0, 25.2), (-1.3, 23.6), (-2.6, 25)],
        GOLD,
    )


def _stone_frog(p: Pen, o: Obj) -> None:
    cushion(p, o.rgb)
    frog(p, (150, 150, 150))


FROG_PRINCE = Family(
    name="frog_prince",
    category="story",
    kind=FROG,
    clauses=(
        "the princess kissed {obj}",
        "the spell on {obj} were broken",
        "the fairy tale came true for {obj}",
        "a princess gave {obj} a kiss",
    ),
    sentences=(
        "Imagine the princess kissing {obj}.",
        "Suppose the curse on {obj} is lifted at last.",
        "Picture {obj} at the end of the fairy tale.",
    ),
    caption="{obj} has turned into a prince with a golden crown",
    after=_prince,
    wrong=_stone_frog,
    wrong_caption="the frog has turned to stone",
)


def _open_lid(p: Pen, c: tuple[int, int, int]) -> None:
    p.rect(-7.5, 8, 7.5, 17, shade(c, 0.8))
    p.ellipse(-7.5, 14, 7.5, 20, shade(c, 0.8))


def _treasure(p: Pen, o: Obj) -> None:
    _open_lid(p, o.rgb)
    p.ellipse(-6.8, 5, 6.8, 12.5, GOLD)
    for x, y in ((-4, 10), (0, 11), (3.5, 9.5), (-1.5, 8.5)):
        p.circle(x, y, 1.2, (255, 226, 90))
    p.rect(-7.5, 0, 7.5, 8, WOOD, outline=shade(WOOD, 0.6))
    p.rect(5, 12, 6, 13, WHITE)


def _empty_chest(p: Pen, o: Obj) -> None:
    _open_lid(p, o.rgb)
    p.rect(-7, 7, 7, 9.5, (50, 32, 20))
    p.rect(-7.5, 0, 7.5, 8, WOOD, outline=shade(WOOD, 0.6))


TREASURE_OPEN = Family(
    name="treasure_open",
    category="story",
    kind=CHEST,
    clauses=(
        "the pirate opened {obj}",
        "someone found the key to {obj} and lifted the lid",
        "the hero of the story unlocked {obj}",
        "the lid of {obj} were pried open",
    ),
    sentences=(
        "Imagine {obj} once the pirate opens it.",
        "Suppose the adventurers unlock {obj}.",
        "Picture {obj} with its lid thrown open.",
    ),
    caption="{obj} is open and full of shining gold",
    after=_treasure,
    wrong=_empty_chest,
    wrong_caption="the chest is open but empty",
)


def _beanstalk(p: Pen, o: Obj) -> None:
    pot(p, o.rgb)
    top = p.top
    pts = [(0.0, 9.0)]
    y, side = 9.0, 1.0
    while y < top:
        y = min(top, y + 6)
        pts.append((2.5 * side, y))
        side = -side
    p.line(pts, LEAF, 2.6)
    for x, yy in pts[1:]:
        p.ellipse(
            x - 0.5 if x > 0 else x - 5.5,
            yy - 1.5,
            x + 5.5 if x > 0 else x + 0.5,
            yy + 1.5,
            DARK_LEAF,
        )


def _small_flower(p: Pen, o: Obj) -> None:
    pot(p, o.rgb)
    p.line([(0, 9), (0, 15)], LEAF, 0.8)
    flower_head(p, WHITE, 0, 16.5, 3)


MAGIC_BEANSTALK = Family(
    name="magic_beanstalk",
    category="story",
    kind=BEAN,
    clauses=(
        "{obj} were planted and left overnight",
        "the magic in {obj} woke up at night",
        "Jack watered {obj} before bed",
        "{obj} grew all through one magical night",
    ),
    sentences=(
        "Imagine {obj} the morning after it is planted.",
        "Suppose {obj} is as magical as the story says.",
        "Picture {obj} after one night of magic.",
    ),
    caption="{obj} has grown into a giant beanstalk reaching the sky",
    after=_beanstalk,
    wrong=_small_flower,
    wrong_caption="an ordinary small flower grew from the pot",
)

FAMILIES: tuple[Family, ...] = (
    DRAGON_ATTACK,
    EGG_HATCH,
    PARTY_OVER,
    FROG_PRINCE,
    TREASURE_OPEN,
    MAGIC_BEANSTALK,
)
