"""ReasonSynth families: registry shape, phrasings, and exact masks for every family."""

from __future__ import annotations

import numpy as np
import pytest

from reasonbrain.config import CATEGORIES
from reasonbrain.data.synth.canvas import COLOUR_NAMES
from reasonbrain.data.synth.families import FAMILIES, families_in, resolve_wrong
from reasonbrain.data.synth.family import TEST_FRAMES, TRAIN_FRAMES
from reasonbrain.data.synth.generate import category_counts
from reasonbrain.data.synth.scene import AFFECTED, TWIN, affected_mask, sample_scene

HYPOTHETICAL = ("would", "Imagine", "Suppose", "Picture", "If ")


def test_registry_has_six_families_per_category() -> None:
    names = [f.name for f in FAMILIES]
    assert len(names) == len(set(names)) >= 24
    for cat in CATEGORIES:
        assert len(families_in(cat)) >= 6, cat


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_phrasings_are_hypothetical_and_split(family) -> None:  # type: ignore[no-untyped-def]
    train = family.train_phrasings()
    test = family.test_phrasings()
    assert len(train) >= 12 and len(test) >= 6
    assert not {p.id for p in train} & {p.id for p in test}
    assert not {p.template for p in train} & {p.template for p in test}
    for p in (*train, *test):
        assert "{obj}" in p.template, p.id
        assert any(word in p.template for word in HYPOTHETICAL), p.template
    assert family.held_out_colour() in COLOUR_NAMES
    assert family.held_out_colour() not in family.train_colours()
    assert len(family.train_colours()) == len(COLOUR_NAMES) - 1


def test_frames_are_disjoint() -> None:
    assert not set(TRAIN_FRAMES) & set(TEST_FRAMES)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_family_changes_only_inside_its_mask(family) -> None:  # type: ignore[no-untyped-def]
    wrong, _ = resolve_wrong(family)
    for seed in range(6):
        rng = np.random.default_rng(seed)
        scene = sample_scene(family, family.train_colours()[seed % 5], 64, rng)
        src = np.asarray(scene.render()[0])
        tgt = np.asarray(scene.render({AFFECTED: family.after})[0])
        mask = affected_mask(src, tgt, radius=2)
        changed = np.any(src != tgt, axis=-1)
        # identical outside the mask, byte for byte
        assert np.array_equal(src[~mask], tgt[~mask])
        # a large, visible change inside it (>= 40 px at 64 px, >= 20 % of the mask)
        assert changed.sum() >= 40, (family.name, seed, int(changed.sum()))
        assert changed[mask].mean() >= 0.2
        # the other objects are untouched: the change stays in the affected object's column
        for obj in scene.objects[1:]:
            lo = int((obj.cx - 9.5) * 1) + 1
            hi = int((obj.cx + 9.5) * 1) - 1
            assert not changed[:, lo:hi].any(), (family.name, obj.kind.name)
        # counterfactuals are distinguishable from the target inside the mask
        for painters in ({TWIN: family.after}, {AFFECTED: wrong}):
            cf = np.asarray(scene.render(painters)[0])
            assert np.any(cf != tgt, axis=-1)[mask].mean() >= 0.1, (family.name, painters)


def test_masks_scale_with_image_size() -> None:
    family = FAMILIES[0]
    scene = sample_scene(family, "red", 128, np.random.default_rng(0))
    src = np.asarray(scene.render()[0])
    tgt = np.asarray(scene.render({AFFECTED: family.after})[0])
    assert src.shape == (128, 128, 3)
    mask = affected_mask(src, tgt, radius=4)
    assert np.array_equal(src[~mask], tgt[~mask]) and mask.any()


@pytest.mark.parametrize(
    ("n", "props", "expected"),
    [
        (
            10,
            dict.fromkeys(CATEGORIES, 0.25),
            {"physical": 3, "temporal": 3, "causal": 2, "story": 2},
        ),
        (7, {"physical": 1.0}, {"physical": 7, "temporal": 0, "causal": 0, "story": 0}),
        (9, {"physical": 2, "story": 1}, {"physical": 6, "temporal": 0, "causal": 0, "story": 3}),
        (0, dict.fromkeys(CATEGORIES, 1), dict.fromkeys(CATEGORIES, 0)),
    ],
)
def test_category_counts_largest_remainder(
    n: int, props: dict[str, float], expected: dict[str, int]
) -> None:
    assert category_counts(n, props) == expected
