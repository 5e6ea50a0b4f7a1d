"""Read-side queries of the dashboard: models, runs, evaluations, datasets, promotions.

Every function takes a :class:`~reasonbrain.registry.db.Database` and returns the records of
:mod:`dashboard.records`. The edit browser's paged sample queries live in
:mod:`dashboard.samples`, reviews in :mod:`dashboard.reviews`. Torch-free: only
:mod:`reasonbrain.registry` tables and pure-Python helpers are imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, defer, selectinload

from dashboard.records import (
    PRIMARY_METRICS,
    Counts,
    CurvePoint,
    DatasetRow,
    EvaluationInfo,
    ModelSummary,
    PromotionRow,
    RunRow,
    VersionRow,
    evaluation_info,
    run_row,
    version_row,
)
from reasonbrain.registry.db import Database
from reasonbrain.registry.tables import (
    Dataset,
    Evaluation,
    Metric,
    ModelAlias,
    ModelVersion,
    PromotionDecision,
    Run,
)

#: flow-run kinds (Prefect flows) as recorded by the orchestration layer
FLOW_KINDS: tuple[str, ...] = ("pipeline", "ingest")


# ------------------------------------------------------------------------------ overview
def counts(db: Database) -> Counts:
    """Row counts of the main tables (empty database detection)."""
    with db.sessions() as s:

        def n(table: Any) -> int:
            return int(s.scalar(select(func.count()).select_from(table)) or 0)

        return Counts(n(ModelVersion), n(Evaluation), n(Run), n(Dataset))


def model_summaries(db: Database) -> list[ModelSummary]:
    """Every model name with its version count, newest version and aliases."""
    with db.sessions() as s:
        rows = s.execute(
            select(ModelVersion.name, func.count(), func.max(ModelVersion.version))
            .group_by(ModelVersion.name)
            .order_by(ModelVersion.name)
        ).all()
        aliases: dict[str, dict[str, int]] = {}
        for name, alias, version in s.execute(
            select(ModelAlias.name, ModelAlias.alias, ModelVersion.version).join(
                ModelVersion, ModelVersion.id == ModelAlias.model_version_id
            )
        ):
            aliases.setdefault(name, {})[alias] = version
    return [
        ModelSummary(name, int(n), int(latest), dict(sorted(aliases.get(name, {}).items())))
        for name, n, latest in rows
    ]


def flow_runs(db: Database, limit: int = 10) -> list[RunRow]:
    """The latest flow runs (``pipeline`` / ``ingest``), newest first."""
    with db.sessions() as s:
        q = (
            select(Run)
            .where(Run.kind.in_(FLOW_KINDS))
            .order_by(Run.started_at.desc(), Run.id)
            .limit(limit)
        )
        return [run_row(r) for r in s.scalars(q)]


def latest_promotion(db: Database, name: str | None = None) -> PromotionRow | None:
    """The newest promotion decision (of one model, or of any)."""
    rows = promotions(db, name=name, limit=1)
    return rows[0] if rows else None


def promotions(db: Database, *, name: str | None = None, limit: int = 20) -> list[PromotionRow]:
    """Promotion decisions, newest first."""
    with db.sessions() as s:
        q = (
            select(PromotionDecision)
            .options(
                selectinload(PromotionDecision.candidate),
                selectinload(PromotionDecision.incumbent),
            )
            .order_by(PromotionDecision.created_at.desc(), PromotionDecision.id.desc())
            .limit(limit)
        )
        if name is not None:
            q = q.where(PromotionDecision.name == name)
        return [
            PromotionRow(
                id=p.id,
                name=p.name,
                candidate=p.candidate.ref if p.candidate is not None else None,
                incumbent=p.incumbent.ref if p.incumbent is not None else None,
                decision=p.decision,
                metric=p.metric,
                margin=p.margin,
                difference=p.difference,
                ci_low=p.ci_low,
                ci_high=p.ci_high,
                n_pairs=p.n_pairs,
                reason=p.reason,
                created_at=p.created_at,
                run_id=p.run_id,
            )
            for p in s.scalars(q)
        ]


def datasets_in_use(db: Database, *, recent_evaluations: int = 20) -> list[DatasetRow]:
    """Dataset versions that aliased models were trained on or recent evaluations used.

    Falls back to the five newest dataset versions when nothing references one.
    """
    with db.sessions() as s:
        used: dict[int, set[str]] = {}
        by_version = {d.version: d.id for d in s.scalars(select(Dataset))}
        aliased_versions = s.scalars(
            select(ModelVersion)
            .join(ModelAlias, ModelAlias.model_version_id == ModelVersion.id)
            .options(selectinload(ModelVersion.aliases))
        ).unique()
        for mv in aliased_versions:
            ver = (mv.lineage or {}).get("dataset_version")
            if isinstance(ver, str) and ver in by_version:
                tags = ",".join(sorted(a.alias for a in mv.aliases))
                used.setdefault(by_version[ver], set()).add(f"{mv.ref} ({tags})")
        for e in s.scalars(
            select(Evaluation)
            .where(Evaluation.dataset_id.is_not(None))
            .options(selectinload(Evaluation.model_version))
            .order_by(Evaluation.created_at.desc())
            .limit(recent_evaluations)
        ):
            assert e.dataset_id is not None
            used.setdefault(e.dataset_id, set()).add(f"evaluation {e.label or e.id}")
        q = select(Dataset)
        q = (
            q.where(Dataset.id.in_(used))
            if used
            else q.order_by(Dataset.created_at.desc()).limit(5)
        )
        rows = [
            DatasetRow(
                id=d.id,
                name=d.name,
                version=d.version,
                validation_status=d.validation_status,
                split_counts=dict(d.split_counts or {}),
                created_at=d.created_at,
                used_by=tuple(sorted(used.get(d.id, ()))),
            )
            for d in s.scalars(q)
        ]
    return sorted(rows, key=lambda r: r.created_at, reverse=True)


# --------------------------------------------------------------------------- evaluations
def evaluation_infos(s: Session, q: Select[Any]) -> list[EvaluationInfo]:
    """Run ``q`` (a ``select(Evaluation)`` with its filters and order) without loading the
    summaries: only the primary metrics' overall estimates travel, by JSON path."""
    paths = [Evaluation.summary[("overall", "metrics", m)] for m in PRIMARY_METRICS]
    q = q.add_columns(*paths).options(
        defer(Evaluation.summary),
        defer(Evaluation.config),
        selectinload(Evaluation.model_version),
        selectinload(Evaluation.dataset),
    )
    return [
        evaluation_info(row[0], dict(zip(PRIMARY_METRICS, row[1:], strict=True)))
        for row in s.execute(q)
    ]


def evaluations(db: Database, *, limit: int | None = None) -> list[EvaluationInfo]:
    """Evaluations, newest first (their summaries stay in the database: only the headline)."""
    q = select(Evaluation).order_by(Evaluation.created_at.desc(), Evaluation.id.desc())
    if limit is not None:
        q = q.limit(limit)
    with db.sessions() as s:
        return evaluation_infos(s, q)


def evaluation_summary(db: Database, evaluation_id: int) -> dict[str, Any]:
    """The evaluation's ``metrics.json`` content (``{}`` when unknown)."""
    with db.sessions() as s:
        e = s.get(Evaluation, evaluation_id)
        return dict(e.summary or {}) if e is not None else {}


# --------------------------------------------------------------------------------- runs
def train_runs(db: Database, limit: int = 50) -> list[RunRow]:
    """Training runs (kind ``train``), newest first."""
    with db.sessions() as s:
        q = select(Run).where(Run.kind == "train").order_by(Run.started_at.desc()).limit(limit)
        return [run_row(r) for r in s.scalars(q)]


def curves(db: Database, run_ids: Sequence[str]) -> list[CurvePoint]:
    """Every stepped metric of the given runs (the training log), in step order."""
    if not run_ids:
        return []
    with db.sessions() as s:
        q = (
            select(Metric.run_id, Metric.name, Metric.step, Metric.value)
            .where(Metric.run_id.in_(list(run_ids)), Metric.step.is_not(None))
            .order_by(Metric.run_id, Metric.name, Metric.step)
        )
        return [CurvePoint(r, n, int(st or 0), float(v)) for r, n, st, v in s.execute(q)]


def latest_ablation(db: Database) -> RunRow | None:
    """The newest ``ablation`` run (its ``details`` is the ``reports/ablation.json`` content)."""
    with db.sessions() as s:
        r = s.scalars(
            select(Run).where(Run.kind == "ablation").order_by(Run.started_at.desc()).limit(1)
        ).first()
        return run_row(r) if r is not None else None


def ablation_table(details: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per rung of an ablation report: switches, training figures and eval metrics."""
    rows: list[dict[str, Any]] = []
    for name, r in (details.get("rungs") or {}).items():
        if not isinstance(r, dict):
            continue
        m = r.get("metrics") or {}
        row: dict[str, Any] = {
            "rung": name,
            "what": r.get("description", ""),
            "steps": m.get("steps"),
            "loss start": m.get("loss_start"),
            "loss end": m.get("loss_end"),
            "val loss": m.get("val_loss"),
            "seconds": r.get("seconds"),
        }
        for k, v in sorted((r.get("eval") or {}).items()):
            row[k] = v.get("mean") if isinstance(v, dict) else v
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------- registry
def model_versions(db: Database, *, include_archived: bool = False) -> list[VersionRow]:
    """Registered versions (newest first within a name) with their aliases."""
    with db.sessions() as s:
        q = select(ModelVersion).options(selectinload(ModelVersion.aliases))
        if not include_archived:
            q = q.where(ModelVersion.archived_at.is_(None))
        q = q.order_by(ModelVersion.name, ModelVersion.version.desc())
        return [version_row(mv) for mv in s.scalars(q)]


def evaluations_of(db: Database, model_version_id: int) -> list[EvaluationInfo]:
    """Evaluations of one model version, newest first."""
    q = (
        select(Evaluation)
        .where(Evaluation.model_version_id == model_version_id)
        .order_by(Evaluation.created_at.desc(), Evaluation.id.desc())
    )
    with db.sessions() as s:
        return evaluation_infos(s, q)
