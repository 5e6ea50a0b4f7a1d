"""The promotion gate on recorded evaluations (SQLite + file store; real bootstrap)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from reasonbrain.config import PromoteParams
from reasonbrain.errors import RegistryError
from reasonbrain.pipeline.gate import PRODUCTION, STAGING, compare, decide
from reasonbrain.registry.api import Registry, open_registry
from reasonbrain.registry.tables import (
    Evaluation,
    EvaluationSample,
    ModelVersion,
    PromotionDecision,
)


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[Registry]:
    r = open_registry(
        store_uri=(tmp_path / "store").as_uri(), db_url=f"sqlite:///{tmp_path / 'r.db'}"
    )
    try:
        yield r
    finally:
        r.close()


def _model(reg: Registry, tmp: Path, name: str, payload: bytes) -> ModelVersion:
    d = tmp / f"m-{payload.hex()[:8]}"
    d.mkdir()
    (d / "model.safetensors").write_bytes(payload)
    return reg.register(d, name)


def _evaluation(reg: Registry, label: str, values: dict[str, float | None], metric: str) -> int:
    with reg.db.sessions.begin() as s:
        ev = Evaluation(
            key=f"k-{label}-{os.urandom(4).hex()}",
            label=label,
            split="test",
            n_samples=len(values),
            samples=[
                EvaluationSample(
                    sample_id=sid,
                    category="physical",
                    instruction="…",
                    metrics={metric: v},
                )
                for sid, v in values.items()
            ],
        )
        s.add(ev)
        s.flush()
        return int(ev.id)


def _acc(p: float, n: int = 200, seed: int = 0) -> dict[str, float | None]:
    rng = np.random.default_rng(seed)
    return {f"s{i}": float(rng.random() < p) for i in range(n)}


def _fail(mv: ModelVersion) -> int:
    raise AssertionError("the incumbent must not be evaluated here")


def test_first_model_beating_every_baseline_goes_to_production(
    reg: Registry, tmp_path: Path
) -> None:
    cand = _model(reg, tmp_path, "rb", b"candidate")
    p = PromoteParams()
    ev = _evaluation(reg, "rb@1", _acc(0.6), "reasoning_acc")
    base = {
        "identity": _evaluation(reg, "identity", _acc(0.0), "reasoning_acc"),
        "ip2p": _evaluation(reg, "ip2p", _acc(0.2, seed=1), "reasoning_acc"),
    }
    d = decide(reg, cand, ev, base, p, incumbent_eval=_fail)
    assert d.decision == PRODUCTION and d.promoted and not d.same_model
    assert {c.against for c in d.comparisons} == {"identity", "ip2p"}
    assert all(c.passed and c.n_pairs == 200 and c.ci_low > 0 for c in d.comparisons)
    assert reg.get("rb@production").id == cand.id
    with reg.db.sessions() as s:
        row = s.scalars(select(PromotionDecision)).one()
    # the deciding comparison is the weakest win (ip2p), with its numbers
    ip2p = next(c for c in d.comparisons if c.against == "ip2p")
    assert row.decision == PRODUCTION and row.difference == pytest.approx(ip2p.improvement)
    assert row.ci_low == pytest.approx(ip2p.ci_low) and row.n_pairs == 200
    assert "promoted rb@1 to production" in row.reason and "ip2p" in row.reason


def test_a_first_model_that_ties_a_baseline_stays_in_staging(reg: Registry, tmp_path: Path) -> None:
    cand = _model(reg, tmp_path, "rb", b"candidate")
    values = _acc(0.3)
    ev = _evaluation(reg, "rb@1", values, "reasoning_acc")
    same = _evaluation(reg, "ip2p", dict(values), "reasoning_acc")
    ident = _evaluation(reg, "identity", _acc(0.0), "reasoning_acc")
    d = decide(
        reg, cand, ev, {"ip2p": same, "identity": ident}, PromoteParams(), incumbent_eval=_fail
    )
    assert d.decision == STAGING and not d.promoted
    assert reg.get("rb@staging").id == cand.id
    with pytest.raises(RegistryError):
        reg.get("rb@production")
    # identity is beaten, ip2p (the same outputs) is not: the reason names only ip2p
    assert "not measurably better than ip2p (" in d.reason


def test_worse_candidate_is_not_promoted_over_production(reg: Registry, tmp_path: Path) -> None:
    old = _model(reg, tmp_path, "rb", b"old")
    reg.promote(old.ref, "production")
    new = _model(reg, tmp_path, "rb", b"new")
    old_eval = _evaluation(reg, "rb@1", _acc(0.5), "reasoning_acc")
    new_eval = _evaluation(reg, "rb@2", _acc(0.3, seed=3), "reasoning_acc")
    seen: list[int] = []

    def incumbent(mv: ModelVersion) -> int:
        seen.append(mv.id)
        return old_eval

    d = decide(reg, new, new_eval, {}, PromoteParams(), incumbent_eval=incumbent, run_id=None)
    assert seen == [old.id]
    assert d.decision == STAGING and d.incumbent == "rb@1"
    (c,) = d.comparisons
    assert c.against == "production rb@1" and c.improvement < 0 and c.ci_high < 0
    assert reg.get("rb@production").id == old.id and reg.get("rb@staging").id == new.id
    assert "kept rb@2 in staging" in d.reason and "production rb@1" in d.reason


def test_margin_and_lower_is_better_metric(reg: Registry, tmp_path: Path) -> None:
    _model(reg, tmp_path, "rb", b"c")
    rng = np.random.default_rng(0)
    base_l1 = {f"s{i}": float(v) for i, v in enumerate(rng.uniform(0.2, 0.3, 100))}
    better = {k: v - 0.05 for k, v in base_l1.items()}  # lower l1 is better: 0.05 better
    ev = _evaluation(reg, "rb@1", better, "l1")
    b = _evaluation(reg, "identity", base_l1, "l1")
    p = PromoteParams(metric="l1", higher_is_better=False, baselines=["identity"])
    c = compare(reg, ev, b, "identity", p)
    assert c.improvement == pytest.approx(0.05) and c.passed
    assert c.candidate_mean == pytest.approx(np.mean(list(better.values())))
    strict = PromoteParams(metric="l1", higher_is_better=False, baselines=["identity"], margin=0.1)
    assert not compare(reg, ev, b, "identity", strict).passed


def test_only_shared_verifiable_samples_are_paired(reg: Registry, tmp_path: Path) -> None:
    p = PromoteParams()
    a = _evaluation(reg, "a", {"x": 1.0, "y": None, "z": 1.0}, "reasoning_acc")
    b = _evaluation(reg, "b", {"x": 0.0, "y": 1.0, "w": 0.0}, "reasoning_acc")
    assert compare(reg, a, b, "b", p).n_pairs == 1  # y unverifiable in a, z/w not shared
    c = _evaluation(reg, "c", {"q": 1.0}, "reasoning_acc")
    nothing = compare(reg, a, c, "c", p)
    assert nothing.n_pairs == 0 and not nothing.passed


def test_same_model_keeps_production_and_says_so(reg: Registry, tmp_path: Path) -> None:
    mv = _model(reg, tmp_path, "rb", b"weights")
    reg.promote(mv.ref, "production")
    d = decide(reg, mv, 1, {}, PromoteParams(), incumbent_eval=_fail)
    assert d.decision == PRODUCTION and d.same_model and not d.promoted
    assert "the gate saw the same model" in d.reason and d.comparisons == []


def test_missing_baseline_evaluation_is_an_error(reg: Registry, tmp_path: Path) -> None:
    mv = _model(reg, tmp_path, "rb", b"weights")
    ev = _evaluation(reg, "rb@1", _acc(0.5), "reasoning_acc")
    with pytest.raises(RegistryError, match="baseline"):
        decide(reg, mv, ev, {"identity": ev}, PromoteParams(), incumbent_eval=_fail)
