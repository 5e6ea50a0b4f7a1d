"""The edit browser's queries: filter, count, sort and page evaluation samples in SQL.

An evaluation's rows are never loaded wholesale: filters, counts, sorting and paging run in the
database (per-sample metric ranges through JSON extraction, which SQLAlchemy compiles to
``JSON_EXTRACT`` on SQLite and ``->>`` on PostgreSQL), so a 10,000-sample evaluation costs one
``COUNT`` and one ``LIMIT`` query per page. Paired comparisons of two evaluations join the two
sample sets in SQL and fetch only the metric values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import aliased

from dashboard.queries import evaluation_infos
from dashboard.records import (
    NO_VERDICT,
    SORT_BY_ID,
    Comparison,
    EvaluationInfo,
    Facets,
    SampleFilter,
    SampleRow,
    lower_is_better,
    order_metrics,
    sample_row,
    summary_metric_names,
)
from reasonbrain.evaluation.bootstrap import PairedDifference, paired_difference
from reasonbrain.registry.db import Database
from reasonbrain.registry.tables import Evaluation, EvaluationSample


def _metric(name: str, row: Any = EvaluationSample) -> ColumnElement[float]:
    """The per-sample metric ``name`` as a float SQL expression (NULL when absent)."""
    expr: ColumnElement[float] = row.metrics[name].as_float()
    return expr


# ------------------------------------------------------------------------- edit browser
def facets(db: Database, evaluation_id: int) -> Facets:
    """Distinct categories, families, hold-outs and verdicts of an evaluation's samples, and the
    metric names (from the summary; from the first samples when it has none)."""
    with db.sessions() as s:

        def distinct_of(col: Any) -> tuple[str, ...]:
            q = (
                select(col)
                .distinct()
                .where(EvaluationSample.evaluation_id == evaluation_id, col.is_not(None))
                .order_by(col)
            )
            return tuple(str(v) for v in s.scalars(q))

        verdicts = distinct_of(EvaluationSample.verdict)
        has_null = s.scalar(
            select(EvaluationSample.id)
            .where(
                EvaluationSample.evaluation_id == evaluation_id,
                EvaluationSample.verdict.is_(None),
            )
            .limit(1)
        )
        e = s.get(Evaluation, evaluation_id)
        names = summary_metric_names(e.summary or {}) if e is not None else []
        if not names:  # no summary: the numeric metrics of the first samples
            seen: set[str] = set()
            for m in s.scalars(
                select(EvaluationSample.metrics)
                .where(EvaluationSample.evaluation_id == evaluation_id)
                .order_by(EvaluationSample.id)
                .limit(50)
            ):
                seen.update(k for k, v in (m or {}).items() if isinstance(v, int | float))
            names = order_metrics(seen)
        return Facets(
            categories=distinct_of(EvaluationSample.category),
            families=distinct_of(EvaluationSample.family),
            holdouts=distinct_of(EvaluationSample.holdout),
            verdicts=verdicts + ((NO_VERDICT,) if has_null is not None else ()),
            metrics=tuple(names),
        )


def metric_range(db: Database, evaluation_id: int, metric: str) -> tuple[float, float] | None:
    """Min and max of a per-sample metric over an evaluation (``None`` when no sample has it)."""
    col = _metric(metric)
    with db.sessions() as s:
        lo, hi = s.execute(
            select(func.min(col), func.max(col)).where(
                EvaluationSample.evaluation_id == evaluation_id
            )
        ).one()
    return None if lo is None or hi is None else (float(lo), float(hi))


def filter_conditions(evaluation_id: int, f: SampleFilter) -> list[ColumnElement[bool]]:
    es = EvaluationSample
    cond: list[ColumnElement[bool]] = [es.evaluation_id == evaluation_id]
    if f.categories:
        cond.append(es.category.in_(f.categories))
    if f.families:
        cond.append(es.family.in_(f.families))
    if f.holdouts:
        cond.append(es.holdout.in_(f.holdouts))
    if f.verdicts:
        named = [v for v in f.verdicts if v != NO_VERDICT]
        parts: list[ColumnElement[bool]] = [es.verdict.in_(named)] if named else []
        if NO_VERDICT in f.verdicts:
            parts.append(es.verdict.is_(None))
        cond.append(or_(*parts))
    if f.outcome == "correct":
        cond.append(es.correct.is_(True))
    elif f.outcome == "incorrect":
        cond.append(es.correct.is_(False))
    elif f.outcome == "excluded":
        cond.append(es.correct.is_(None))
    if f.metric and (f.metric_min is not None or f.metric_max is not None):
        col = _metric(f.metric)
        cond.append(col.is_not(None))
        if f.metric_min is not None:
            cond.append(col >= f.metric_min)
        if f.metric_max is not None:
            cond.append(col <= f.metric_max)
    text = f.search.strip().lower()
    if text:
        cond.append(
            or_(
                func.lower(es.instruction).contains(text, autoescape=True),
                func.lower(es.sample_id).contains(text, autoescape=True),
            )
        )
    return cond


def count_samples(db: Database, evaluation_id: int, f: SampleFilter) -> int:
    """How many samples match the filter."""
    with db.sessions() as s:
        q = select(func.count()).select_from(EvaluationSample)
        return int(s.scalar(q.where(and_(*filter_conditions(evaluation_id, f)))) or 0)


def verdict_counts(db: Database, evaluation_id: int, f: SampleFilter) -> dict[str, int]:
    """Matching samples per automatic verdict (:data:`NO_VERDICT` for NULL)."""
    with db.sessions() as s:
        rows = s.execute(
            select(EvaluationSample.verdict, func.count())
            .where(and_(*filter_conditions(evaluation_id, f)))
            .group_by(EvaluationSample.verdict)
        ).all()
    return {(v if v is not None else NO_VERDICT): int(n) for v, n in rows}


def page_samples(
    db: Database, evaluation_id: int, f: SampleFilter, *, page: int, page_size: int
) -> list[SampleRow]:
    """One page (1-based) of matching samples in the filter's order."""
    if page < 1 or page_size < 1:
        raise ValueError("page and page_size start at 1")
    es = EvaluationSample
    q = select(es).where(and_(*filter_conditions(evaluation_id, f)))
    if f.sort != SORT_BY_ID:
        col = _metric(f.sort)
        q = q.order_by((col.desc() if f.descending else col.asc()).nulls_last())
        q = q.order_by(es.sample_id)
    else:
        q = q.order_by(es.sample_id.desc() if f.descending else es.sample_id)
    q = q.offset((page - 1) * page_size).limit(page_size)
    with db.sessions() as s:
        return [sample_row(r) for r in s.scalars(q)]


def samples_by_id(
    db: Database, evaluation_id: int, sample_ids: Sequence[str]
) -> dict[str, SampleRow]:
    """The rows of ``sample_ids`` in another evaluation (same sample across two models)."""
    if not sample_ids:
        return {}
    with db.sessions() as s:
        q = select(EvaluationSample).where(
            EvaluationSample.evaluation_id == evaluation_id,
            EvaluationSample.sample_id.in_(list(sample_ids)),
        )
        return {r.sample_id: sample_row(r) for r in s.scalars(q)}


def sample(db: Database, row_id: int) -> SampleRow | None:
    """One sample by its row id."""
    with db.sessions() as s:
        r = s.get(EvaluationSample, row_id)
        return sample_row(r) if r is not None else None


def sample_across(
    db: Database, sample_id: str, *, limit: int = 12
) -> list[tuple[EvaluationInfo, SampleRow]]:
    """The same sample in every evaluation that has it (newest evaluation first)."""
    with db.sessions() as s:
        q = (
            select(EvaluationSample)
            .join(Evaluation, Evaluation.id == EvaluationSample.evaluation_id)
            .where(EvaluationSample.sample_id == sample_id)
            .order_by(Evaluation.created_at.desc(), Evaluation.id.desc())
            .limit(limit)
        )
        rows = list(s.scalars(q))
        infos = {
            e.id: e
            for e in evaluation_infos(
                s, select(Evaluation).where(Evaluation.id.in_([r.evaluation_id for r in rows]))
            )
        }
        return [(infos[r.evaluation_id], sample_row(r)) for r in rows]


# -------------------------------------------------------------------------- comparisons
def paired_values(
    db: Database, eval_a: int, eval_b: int, metric: str
) -> list[tuple[str, str, float, float]]:
    """``(sample_id, category, a, b)`` for samples both evaluations scored on ``metric``.

    Only the two metric columns travel (a join in SQL), not the rows.
    """
    a, b = aliased(EvaluationSample), aliased(EvaluationSample)
    va, vb = _metric(metric, a), _metric(metric, b)
    q = (
        select(a.sample_id, a.category, va, vb)
        .join(b, and_(b.sample_id == a.sample_id, b.evaluation_id == eval_b))
        .where(a.evaluation_id == eval_a, va.is_not(None), vb.is_not(None))
        .order_by(a.sample_id)
    )
    with db.sessions() as s:
        return [(sid, cat, float(x), float(y)) for sid, cat, x, y in s.execute(q)]


def compare(
    db: Database, eval_a: int, eval_b: int, metric: str, *, resamples: int = 1000
) -> Comparison:
    """Paired difference B − A with a bootstrap CI, overall and per category."""
    rows = paired_values(db, eval_a, eval_b, metric)
    if not rows:
        return Comparison(metric=metric, n_shared=0, overall=None)
    low = lower_is_better(metric)

    def diff(pairs: Sequence[tuple[str, str, float, float]]) -> PairedDifference:
        return paired_difference(
            [p[2] for p in pairs],
            [p[3] for p in pairs],
            metric=metric,
            lower_is_better=low,
            resamples=resamples,
        )

    by_cat: dict[str, list[tuple[str, str, float, float]]] = {}
    for r in rows:
        by_cat.setdefault(r[1], []).append(r)
    binary = all(r[2] in (0.0, 1.0) and r[3] in (0.0, 1.0) for r in rows)
    table: dict[str, int | None] = {"both": None, "only_a": None, "only_b": None, "neither": None}
    if binary:
        table = {
            "both": sum(1 for r in rows if r[2] and r[3]),
            "only_a": sum(1 for r in rows if r[2] and not r[3]),
            "only_b": sum(1 for r in rows if r[3] and not r[2]),
            "neither": sum(1 for r in rows if not r[2] and not r[3]),
        }
    return Comparison(
        metric=metric,
        n_shared=len(rows),
        overall=diff(rows),
        by_category={c: diff(p) for c, p in sorted(by_cat.items())},
        **table,
    )
