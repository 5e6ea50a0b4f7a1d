"""The family registry: every transformation family, grouped by category.

Adding a family: define it in its category module and add it to that module's ``FAMILIES``
tuple; nothing else changes. :func:`resolve_wrong` gives every family a wrong-change painter
(families without their own borrow the ``after`` of another family of the same object kind).
"""

from __future__ import annotations

from reasonbrain.data.synth.families import causal, physical, story, temporal
from reasonbrain.data.synth.family import Family
from reasonbrain.data.synth.objects import Painter

FAMILIES: tuple[Family, ...] = (
    *physical.FAMILIES,
    *temporal.FAMILIES,
    *causal.FAMILIES,
    *story.FAMILIES,
)
"""All families, in a fixed order (the order is part of the generator's determinism)."""


def families_in(category: str) -> tuple[Family, ...]:
    """Families of one category, in registry order."""
    return tuple(f for f in FAMILIES if f.category == category)


def family_by_name(name: str) -> Family:
    """Look a family up by name.

    Raises:
        KeyError: no such family.
    """
    for f in FAMILIES:
        if f.name == name:
            return f
    raise KeyError(name)


def resolve_wrong(family: Family) -> tuple[Painter, str]:
    """The painter (and a short name) of a plausible wrong change for ``family``'s object.

    Raises:
        ValueError: the family has no ``wrong`` and no sibling family of the same kind.
    """
    if family.wrong is not None:
        return family.wrong, family.wrong_caption or f"{family.name}:wrong"
    for other in FAMILIES:
        if other is not family and other.kind is family.kind:
            return other.after, f"as in {other.name}"
    raise ValueError(f"family {family.name!r} needs a wrong painter or a sibling of its kind")
