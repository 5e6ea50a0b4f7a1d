"""The ReasonSynth verifier: perfect output 100 %, source at the "no change" rate, ties, groups."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reasonbrain.config import EvalParams, Settings
from reasonbrain.data.schema import read_manifest
from reasonbrain.evaluation.aggregate import aggregate
from reasonbrain.evaluation.images import load_mask, load_rgb, to_array
from reasonbrain.evaluation.scoring import Scorer
from reasonbrain.evaluation.testing import make_synth_dataset
from reasonbrain.evaluation.verifier import TIE_EPS, VerifierConfig, verify


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synth_dataset(tmp_path_factory.mktemp("synth"), n=12)


def _case(ds: Path, i: int = 0) -> dict:
    rec = read_manifest(ds / "test.jsonl")[i]
    meta = rec.meta or {}
    return {
        "src": to_array(load_rgb(ds / rec.src_image)),
        "tgt": to_array(load_rgb(ds / rec.tgt_image)),
        "cfs": {k: to_array(load_rgb(ds / v)) for k, v in meta["counterfactuals"].items()},
        "mask": load_mask(ds / meta["mask"]),
    }


def _score_all(ds: Path, pick: str) -> dict:
    scorer = Scorer(EvalParams(judge="oracle", metrics=["l1"]), Settings(weights_dir=None))
    from reasonbrain.evaluation.judges.oracle import OracleJudge

    scorer.judge = OracleJudge()
    rows = []
    for rec in read_manifest(ds / "test.jsonl"):
        rel = rec.tgt_image if pick == "target" else rec.src_image
        if pick.startswith("cf:"):
            rel = (rec.meta or {})["counterfactuals"][pick[3:]]
        rows.append(scorer.score(rec, ds, Image.open(ds / rel)))
    return aggregate(rows, resamples=200)


def test_true_target_scores_100_percent(ds: Path) -> None:
    agg = _score_all(ds, "target")
    assert agg["overall"]["metrics"]["reasoning_acc"]["mean"] == 1.0
    assert agg["overall"]["metrics"]["instruction_alignment"]["mean"] == 1.0  # oracle judge
    assert agg["overall"]["metrics"]["edit_error"]["mean"] == 0.0
    assert agg["overall"]["outcome_rates"] == {"target": 1.0}
    for group in ("by_category", "by_family", "by_holdout"):
        assert all(g["metrics"]["reasoning_acc"]["mean"] == 1.0 for g in agg[group].values())
    assert set(agg["by_holdout"]) == {"seen", "phrasing", "combination"}
    assert agg["overall"]["metrics"]["chance"]["mean"] == pytest.approx(0.25)


def test_source_scores_at_the_no_change_rate(ds: Path) -> None:
    agg = _score_all(ds, "source")
    assert agg["overall"]["metrics"]["reasoning_acc"]["mean"] == 0.0
    assert agg["overall"]["outcome_rates"] == {"no_change": 1.0}
    assert agg["overall"]["metrics"]["preservation_psnr"]["mean"] == 100.0


@pytest.mark.parametrize("kind", ["wrong_object", "wrong_change"])
def test_each_counterfactual_is_recognised(ds: Path, kind: str) -> None:
    agg = _score_all(ds, f"cf:{kind}")
    assert agg["overall"]["metrics"]["reasoning_acc"]["mean"] == 0.0
    assert agg["overall"]["outcome_rates"] == {kind: 1.0}


def test_mask_region_cannot_tell_wrong_object_from_no_change(ds: Path) -> None:
    c = _case(ds)
    v = verify(c["cfs"]["wrong_object"], c["tgt"], c["cfs"], c["mask"], VerifierConfig("mask"))
    assert v.nearest == "tie" and v.correct is False  # ties are never correct
    v = verify(c["cfs"]["wrong_object"], c["tgt"], c["cfs"], c["mask"], VerifierConfig("union"))
    assert v.nearest == "wrong_object"


def test_partial_edit_margin_and_ties(ds: Path) -> None:
    c = _case(ds)
    blend = 0.7 * c["tgt"] + 0.3 * c["src"]  # mostly the right outcome
    v = verify(blend, c["tgt"], c["cfs"], c["mask"])
    assert v.correct is True and v.margin is not None and v.margin > 0
    half = 0.5 * c["tgt"] + 0.5 * c["src"]  # exactly between target and no_change
    v = verify(half, c["tgt"], {"no_change": c["cfs"]["no_change"]}, c["mask"])
    assert abs(v.distances["target"] - v.distances["no_change"]) <= TIE_EPS
    assert v.correct is False and v.nearest == "tie"


def test_unverifiable_when_a_counterfactual_equals_the_target(ds: Path) -> None:
    c = _case(ds)
    cfs = {**c["cfs"], "wrong_change": c["tgt"].copy()}
    v = verify(c["tgt"], c["tgt"], cfs, c["mask"])
    assert v.verifiable is False and v.correct is None and v.chance == 0.25
    with pytest.raises(ValueError, match="at least one counterfactual"):
        verify(c["tgt"], c["tgt"], {}, c["mask"])
    with pytest.raises(ValueError, match="shape"):
        verify(np.zeros((4, 4, 3), np.float32), c["tgt"], c["cfs"], c["mask"])
