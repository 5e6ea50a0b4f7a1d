"""What a flow records in SQL besides models and evaluations: runs, datasets, training curves.

- A **flow run** is a ``runs`` row of kind ``pipeline`` or ``ingest`` whose id is the Prefect flow
  run id; ``details`` says what happened to each DVC stage (``{"stages": {"train@reasonbrain":
  "ran" | "skipped" | "failed"}}``) and ``error`` why it failed (one line).
- A **training run** is a ``runs`` row of kind ``train`` whose id is the Ray Train run name,
  ``parent_id`` the flow run that first recorded it; its training curves are ``metrics`` rows with
  a ``step`` (loss, loss_dm, loss_mllm, loss_ground, grad_norm, val_loss …) and its summary
  figures ``metrics`` rows without one.
- A **dataset version** is a ``datasets`` row: name, version (the md5 DVC recorded for stage
  ``data``'s output), split counts, validation status and report.
- An **ablation** report (``reports/ablation.json``) is a ``runs`` row of kind ``ablation``.

Every function is idempotent: recording the same thing twice finds the existing row.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from reasonbrain.lineage import TrainingOutput
from reasonbrain.registry.db import Database
from reasonbrain.registry.tables import Dataset, Metric, Run, utcnow

#: training-log keys that become curves (``loss*``, ``val_*`` and these)
CURVE_EXTRA: frozenset[str] = frozenset({"grad_norm"})


def _one_line(text: str, limit: int = 2000) -> str:
    first = " ".join(text.split())
    return first if len(first) <= limit else first[: limit - 1] + "…"


# ------------------------------------------------------------------------------ flow runs
def start_flow_run(
    db: Database,
    run_id: str,
    kind: str,
    *,
    params: dict[str, Any],
    params_hash: str | None,
    git_commit: str | None,
) -> None:
    """Insert (or reset to ``running``) the row of a flow run."""
    with db.sessions.begin() as s:
        run = s.get(Run, run_id)
        if run is None:
            run = Run(id=run_id, kind=kind, started_at=utcnow())
            s.add(run)
        run.params, run.params_hash, run.git_commit = params, params_hash, git_commit
        run.status, run.ended_at, run.error = "running", None, None
        run.details = {"stages": {}}


def update_flow_run(
    db: Database,
    run_id: str,
    *,
    stages: dict[str, str] | None = None,
    details: dict[str, Any] | None = None,
    dataset_id: int | None = None,
    status: str | None = None,
    error: str | None = None,
) -> None:
    """Update a flow run: stage outcomes so far, more details, its dataset, its final status."""
    with db.sessions.begin() as s:
        run = s.get(Run, run_id)
        if run is None:
            return
        merged = dict(run.details or {})
        if stages is not None:
            merged["stages"] = dict(stages)
        if details:
            merged.update(details)
        run.details = merged
        if dataset_id is not None:
            run.dataset_id = dataset_id
        if status is not None:
            run.status = status
            if status != "running":
                run.ended_at = utcnow()
        if error is not None:
            run.error = _one_line(error)


# -------------------------------------------------------------------------------- datasets
def record_dataset(
    db: Database,
    *,
    name: str,
    version: str,
    path: str,
    split_counts: dict[str, int],
    validation_report: dict[str, Any] | None,
) -> int:
    """The id of the ``datasets`` row of (name, version), created or refreshed."""
    status = "unvalidated"
    if validation_report is not None:
        status = "passed" if validation_report.get("ok") else "failed"
    for _ in range(2):
        try:
            with db.sessions.begin() as s:
                row = s.scalars(
                    select(Dataset).where(Dataset.name == name, Dataset.version == version)
                ).first()
                if row is None:
                    row = Dataset(name=name, version=version, created_at=utcnow())
                    s.add(row)
                row.path, row.split_counts = path, dict(split_counts)
                if validation_report is not None:
                    row.validation_status, row.validation_report = status, validation_report
                s.flush()
                return int(row.id)
        except IntegrityError:  # a concurrent writer created it first: update that row
            continue
    raise AssertionError("unreachable")  # pragma: no cover


# --------------------------------------------------------------------------- training runs
def read_curves(log_file: Path) -> list[tuple[str, int, float]]:
    """``(metric, step, value)`` of every curve point in a training log (``train_log.jsonl``)."""
    points: list[tuple[str, int, float]] = []
    if not log_file.is_file():
        return points
    for line in log_file.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        step = row.get("step")
        if not isinstance(step, int):
            continue
        for k, v in row.items():
            curve = k.startswith(("loss", "val_")) or k in CURVE_EXTRA
            if curve and isinstance(v, int | float) and not isinstance(v, bool) and v == v:
                points.append((k, step, float(v)))
    return points


def record_training_run(
    db: Database,
    out: TrainingOutput,
    lineage: dict[str, Any],
    *,
    parent_id: str | None,
    dataset_id: int | None = None,
) -> str | None:
    """Record a training run (row + curves + summary metrics) once; returns its id (the Ray Train
    run name), or ``None`` when ``run.json`` names no run."""
    run_id = out.run.get("run_name")
    if not run_id:
        return None
    run_file = out.out_dir / "run.json"
    ended = datetime.fromtimestamp(run_file.stat().st_mtime).astimezone()
    seconds = float(out.run.get("seconds") or 0.0)
    with db.sessions.begin() as s:
        run = s.get(Run, run_id)
        if run is None:
            run = Run(
                id=run_id,
                kind="train",
                started_at=ended - timedelta(seconds=seconds),
                ended_at=ended,
                status="succeeded",
                parent_id=parent_id,
            )
            s.add(run)
        elif run.parent_id is None:
            run.parent_id = parent_id
        run.params = lineage.get("params") or {}
        run.params_hash = lineage.get("params_hash")
        run.git_commit = lineage.get("git_commit")
        run.storage_path = lineage.get("run_uri")
        if dataset_id is not None:
            run.dataset_id = dataset_id
        run.details = {
            "checkpoint_uri": out.run.get("checkpoint_uri"),
            "dataset_version": lineage.get("dataset_version"),
            "model_dir": str(out.model_dir),
        }
        s.flush()
        have = s.scalar(select(func.count()).select_from(Metric).where(Metric.run_id == run_id))
        if not have:
            rows = [
                Metric(run_id=run_id, name=name, scope="overall", value=value, step=step)
                for name, step, value in read_curves(out.out_dir / "train_log.jsonl")
            ]
            rows += [
                Metric(run_id=run_id, name=k, scope="overall", value=float(v))
                for k, v in sorted(out.metrics.items())
                if isinstance(v, int | float) and not isinstance(v, bool)
            ]
            s.add_all(rows)
    return str(run_id)


# ---------------------------------------------------------------------------------- ablation
def record_ablation(db: Database, report: dict[str, Any], *, parent_id: str | None) -> str:
    """A ``runs`` row of kind ``ablation`` whose details are the report (id: its digest)."""
    blob = json.dumps(report, sort_keys=True, separators=(",", ":")).encode()
    run_id = "ablation-" + hashlib.sha256(blob).hexdigest()[:16]
    with db.sessions.begin() as s:
        run = s.get(Run, run_id)
        if run is None:
            s.add(
                Run(
                    id=run_id,
                    kind="ablation",
                    status="succeeded",
                    started_at=utcnow(),
                    ended_at=utcnow(),
                    parent_id=parent_id,
                    details=report,
                    params=dict(report.get("params") or {})
                    if isinstance(report.get("params"), dict)
                    else {},
                )
            )
    return run_id
