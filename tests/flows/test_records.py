"""What the flows record besides models and evaluations (SQLite): idempotent rows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from reasonbrain.pipeline import records, steps
from reasonbrain.registry.db import Database, open_db
from reasonbrain.registry.tables import Dataset, Run


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    d = open_db(f"sqlite:///{tmp_path / 'r.db'}")
    try:
        yield d
    finally:
        d.dispose()


def test_dataset_versions_are_recorded_once(db: Database) -> None:
    report = {"ok": False, "totals": {"rows": 3}}
    kw = {"name": "ds", "version": "abc.dir", "path": "data/ds", "split_counts": {"test": 3}}
    a = records.record_dataset(db, validation_report=None, **kw)
    b = records.record_dataset(db, validation_report=report, **kw)
    assert a == b
    with db.sessions() as s:
        row = s.get(Dataset, a)
        assert row.validation_status == "failed" and row.validation_report == report
        assert s.scalar(select(func.count()).select_from(Dataset)) == 1


def test_flow_run_rows_track_stages_and_end_state(db: Database) -> None:
    records.start_flow_run(db, "r1", "pipeline", params={"a": 1}, params_hash="h", git_commit="c")
    records.update_flow_run(db, "r1", stages={"data": "ran"})
    records.update_flow_run(db, "r1", details={"gate": {"decision": "staging"}})
    records.update_flow_run(db, "r1", status="failed", error="stage x\n  failed   badly")
    with db.sessions() as s:
        run = s.get(Run, "r1")
        assert run.details == {"stages": {"data": "ran"}, "gate": {"decision": "staging"}}
        assert run.status == "failed" and run.ended_at is not None
        assert run.error == "stage x failed badly"
    records.start_flow_run(db, "r1", "pipeline", params={}, params_hash=None, git_commit=None)
    with db.sessions() as s:
        run = s.get(Run, "r1")
        assert run.status == "running" and run.error is None and run.details == {"stages": {}}


def test_ablation_report_becomes_one_run(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "proj"
    assert steps.record_ablation(root, None) is None  # no report, nothing recorded
    report = {"rungs": [{"name": "full", "loss_end": 0.3}], "params": {"train": {"max_steps": 9}}}
    (root / "reports").mkdir(parents=True)
    (root / "reports/ablation.json").write_text(json.dumps(report))
    monkeypatch.setenv("REASONBRAIN_DB_URL", str(db.engine.url))
    monkeypatch.setenv("REASONBRAIN_STORE_URI", (tmp_path / "store").as_uri())
    first = steps.record_ablation(root, None)
    assert first is not None and steps.record_ablation(root, None) == first
    with db.sessions() as s:
        run = s.get(Run, first)
        assert run.kind == "ablation" and run.details == report
        assert run.params == {"train": {"max_steps": 9}}
        assert s.scalar(select(func.count()).select_from(Run)) == 1


def test_training_curves_keep_losses_only(tmp_path: Path) -> None:
    log = tmp_path / "train_log.jsonl"
    rows = [
        {"step": 1, "loss": 2.0, "loss_dm": 0.5, "grad_norm": 3.0, "lr/x": 1e-3, "epoch": 0.1},
        {"step": 2, "val_loss": 1.5, "flag": True, "loss": float("nan")},
    ]
    log.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert records.read_curves(log) == [
        ("loss", 1, 2.0),
        ("loss_dm", 1, 0.5),
        ("grad_norm", 1, 3.0),
        ("val_loss", 2, 1.5),
    ]
