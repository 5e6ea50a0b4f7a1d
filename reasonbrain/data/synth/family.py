"""A transformation family: one self-describing unit of hypothetical reasoning.

A family names the object kind it acts on, its category, how it is asked (conditional
*clauses* slotted into shared hypothetical *frames*, plus a few complete *sentences*), a short
caption of the outcome, and painters for the outcome (``after``) and for a plausible but wrong
outcome on the same object (``wrong``; families sharing a kind may leave it out and borrow each
other's ``after``). Adding a family means writing one :class:`Family` in its category module
and listing it there (see :mod:`reasonbrain.data.synth.families`).

Hold-outs (the test split's ``phrasing`` and ``combination`` samples) follow fixed rules:
the last clause and the last sentence of every family, and the frames in :data:`TEST_FRAMES`,
are never used in train; one colour per family (:meth:`Family.held_out_colour`, from a CRC of
the family's name) is never the affected object's colour in train.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from reasonbrain.data.synth.canvas import COLOUR_NAMES
from reasonbrain.data.synth.objects import ObjectKind, Painter

TRAIN_FRAMES: tuple[str, ...] = (
    "What would happen if {c}?",
    "What would the scene look like if {c}?",
    "Suppose {c}. Show the result.",
    "Imagine that {c}. What would you see?",
    "Show how the picture would change if {c}.",
    "If {c}, what would the scene look like?",
    "Picture what happens if {c}.",
)
"""Hypothetical frames used in every split; ``{c}`` is a family's conditional clause."""

TEST_FRAMES: tuple[str, ...] = (
    "Suppose that {c}; what would change in the picture?",
    "How would this image look if {c}?",
    "Think about what would follow if {c}, and draw the outcome.",
)
"""Frames held out for the test split's ``phrasing`` samples."""


@dataclass(frozen=True)
class Phrasing:
    """One way of asking: a template with ``{obj}`` and its stable id."""

    id: str
    template: str
    held_out: bool


@dataclass(frozen=True)
class Family:
    """A transformation family.

    Attributes:
        name: identifier (``"candle_burn"``).
        category: ``physical``, ``temporal``, ``causal`` or ``story``.
        kind: the object kind it transforms.
        clauses: conditional clauses with ``{obj}`` (``"{obj} burned for five hours"``); the
            last one is held out of train.
        sentences: complete instructions with ``{obj}`` (``"Imagine {obj} after ..."``); the
            last one is held out of train.
        caption: outcome description with ``{obj}`` (``"{obj} has burned down to a stub"``).
        after: painter of the correct outcome.
        wrong: painter of a plausible wrong outcome for the same object; ``None`` borrows the
            ``after`` of another family of the same kind (resolved by the registry).
        wrong_caption: what the wrong outcome shows (kept in ``meta`` for reports).
    """

    name: str
    category: str
    kind: ObjectKind
    clauses: tuple[str, ...]
    sentences: tuple[str, ...]
    caption: str
    after: Painter
    wrong: Painter | None = None
    wrong_caption: str = ""

    def phrasings(self) -> tuple[Phrasing, ...]:
        """Every phrasing of this family, train ones first, with hold-out flags."""
        out: list[Phrasing] = []
        frames = [(f, False) for f in TRAIN_FRAMES] + [(f, True) for f in TEST_FRAMES]
        last = len(self.clauses) - 1
        for fi, (frame, held_frame) in enumerate(frames):
            for ci, clause in enumerate(self.clauses):
                out.append(
                    Phrasing(
                        f"{self.name}/f{fi}c{ci}",
                        frame.replace("{c}", clause),
                        held_frame or ci == last,
                    )
                )
        last_s = len(self.sentences) - 1
        for si, sentence in enumerate(self.sentences):
            out.append(Phrasing(f"{self.name}/s{si}", sentence, si == last_s))
        return tuple(out)

    def train_phrasings(self) -> tuple[Phrasing, ...]:
        """Phrasings allowed in train/val and in test ``seen``/``combination`` samples."""
        return tuple(p for p in self.phrasings() if not p.held_out)

    def test_phrasings(self) -> tuple[Phrasing, ...]:
        """Phrasings reserved for the test split's ``phrasing`` samples."""
        return tuple(p for p in self.phrasings() if p.held_out)

    def held_out_colour(self) -> str:
        """The colour never transformed by this family in train (a stable CRC rule)."""
        return COLOUR_NAMES[zlib.crc32(self.name.encode()) % len(COLOUR_NAMES)]

    def train_colours(self) -> tuple[str, ...]:
        """Colours the affected object may have in train."""
        held = self.held_out_colour()
        return tuple(c for c in COLOUR_NAMES if c != held)
