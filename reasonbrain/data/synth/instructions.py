"""Hypothetical instructions, referring expressions and outcome captions.

The affected object is named by colour and position (``the red candle on the left``), by colour
only or by position only; all three are unambiguous because the twin differs in both. Samples
of the ``combination`` hold-out always name the colour, so the unseen family/colour pairing is
really asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reasonbrain.data.synth.family import Family, Phrasing
from reasonbrain.data.synth.objects import Obj

POSITIONS: tuple[str, ...] = ("on the left", "in the middle", "on the right")
"""Position phrases for slots 0, 1, 2."""

STYLES: tuple[str, ...] = ("full", "colour", "position")
STYLE_P: tuple[float, ...] = (0.6, 0.2, 0.2)


@dataclass(frozen=True)
class Instruction:
    """What a sample asks and describes."""

    text: str
    named: str
    """The object phrase as named in the instruction (``red candle`` / ``candle``)."""
    phrasing: Phrasing
    style: str
    caption: str


def full_name(obj: Obj) -> str:
    """Colour + kind + position, without article (``red candle on the left``)."""
    return f"{obj.kind.named(obj.colour)} {POSITIONS[obj.slot]}"


def refer(obj: Obj, style: str) -> tuple[str, str]:
    """The referring expression (with ``the``) and the object phrase it names."""
    if style == "position":
        return f"the {obj.kind.noun} {POSITIONS[obj.slot]}", obj.kind.noun
    named = obj.kind.named(obj.colour)
    if style == "colour":
        return f"the {named}", named
    return f"the {named} {POSITIONS[obj.slot]}", named


def _sentence(text: str) -> str:
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "?", "!")) else text + "."


def compose(family: Family, obj: Obj, holdout: str, rng: np.random.Generator) -> Instruction:
    """Pick a phrasing allowed for ``holdout`` and fill in the referent.

    ``phrasing`` samples draw from the family's held-out phrasings; every other sample
    (train, val, test ``seen``/``combination``) from its train phrasings.
    """
    pool = family.test_phrasings() if holdout == "phrasing" else family.train_phrasings()
    phrasing = pool[int(rng.integers(len(pool)))]
    style = STYLES[int(rng.choice(len(STYLES), p=STYLE_P))]
    if holdout == "combination" and style == "position":
        style = "full"
    ref, named = refer(obj, style)
    text = _sentence(phrasing.template.replace("{obj}", ref))
    caption = _sentence(family.caption.replace("{obj}", f"the {full_name(obj)}"))
    return Instruction(text, named, phrasing, style, caption)
