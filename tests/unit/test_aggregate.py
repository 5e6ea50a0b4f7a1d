"""Aggregates count the same samples everywhere (issue 14, suspected and confirmed): chance level
and outcome rates are over the verifiable samples, like reasoning accuracy; judge errors are
counted by kind."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from reasonbrain.config import EvalParams, Settings
from reasonbrain.data.schema import read_manifest, write_manifest
from reasonbrain.evaluation.aggregate import aggregate
from reasonbrain.evaluation.scoring import Scorer
from reasonbrain.evaluation.testing import make_synth_dataset


def test_chance_and_outcome_rates_count_only_verifiable_samples(tmp_path: Path) -> None:
    ds = make_synth_dataset(tmp_path / "ds", n=3)
    records = read_manifest(ds / "test.jsonl")
    # the last record cannot be verified: its only counterfactual *is* the target (chance 1/2)
    last = records[-1]
    meta = dict(last.meta or {})
    meta["counterfactuals"] = {"no_change": last.tgt_image}
    records[-1] = last.model_copy(update={"meta": meta})
    write_manifest(ds / "test.jsonl", records)
    scorer = Scorer(EvalParams(judge="none", metrics=["l1"]), Settings(weights_dir=None))
    rows = [scorer.score(r, ds, Image.open(ds / r.src_image)) for r in records]  # identity
    assert [r["verifier"]["verifiable"] for r in rows] == [True, True, False]
    overall = aggregate(rows, resamples=50)["overall"]
    acc, chance = overall["metrics"]["reasoning_acc"], overall["metrics"]["chance"]
    assert acc["n"] == chance["n"] == 2  # the same samples
    assert chance["mean"] == pytest.approx(0.25)  # not (1/4 + 1/4 + 1/2) / 3
    assert overall["outcome_rates"] == {"no_change": 1.0}  # the unverifiable "tie" is not in it
    assert overall["unverifiable"] == 1


def test_judge_errors_are_counted_by_kind() -> None:
    def row(follows: bool | None, kind: str | None) -> dict[str, object]:
        judge = {"follows": follows, "error": kind and "why", "error_kind": kind}
        return {
            "id": "x",
            "category": "c",
            "metrics": {"instruction_alignment": None if follows is None else float(follows)},
            "judge": judge,
        }

    rows = [row(True, None), row(None, "unreadable"), row(None, "unreadable")]
    rows += [row(None, "request_failed")]
    overall = aggregate(rows, resamples=50)["overall"]
    assert overall["judge_errors"] == {"request_failed": 1, "unreadable": 2}
    assert overall["metrics"]["instruction_alignment"] == {
        "mean": 1.0,
        "ci_low": None,
        "ci_high": None,
        "n": 1,
    }
