"""Human review of evaluation samples: record verdicts, measure progress and agreement, export.

A review is a person's verdict on one evaluation sample — ``accept`` (the edit is right),
``reject`` (it is wrong) or ``flag`` (needs a second look: ambiguous sample, broken image …) —
with an optional note and the reviewer's name, one ``reviews`` row each. A reviewer may change
their mind: every review is kept, and the newest one per (sample, reviewer) is what counts.

Agreement is measured on those current verdicts:

- **between reviewers**, per pair, on the samples both judged (flags included): the share of
  equal verdicts and Cohen's kappa (agreement corrected for chance);
- **with the automatic verdict** (the ReasonSynth verifier's ``correct``), per reviewer: accept
  ↔ correct, reject ↔ incorrect; flags and samples the verifier excludes are left out.

The JSONL export carries, per review, the sample (instruction, rationale, image URIs, automatic
verdict, metrics) and the review with ``label`` = true (accept) / false (reject) / null (flag):
the shape of binary preference data (KTO-style desirable/undesirable edits).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import combinations
from typing import Any

from sqlalchemy import and_, distinct, exists, func, select
from sqlalchemy.orm import selectinload

from dashboard.records import SampleFilter, SampleRow, sample_row
from dashboard.samples import filter_conditions
from reasonbrain.errors import ReasonBrainError
from reasonbrain.registry.db import Database
from reasonbrain.registry.tables import VERDICTS, Evaluation, EvaluationSample, Review, utcnow

MAX_REVIEWER = 200
MAX_NOTE = 4000


class ReviewInputError(ReasonBrainError):
    """A review cannot be saved as given (no reviewer name, unknown verdict or sample …)."""


@dataclass(frozen=True)
class ReviewRow:
    """One stored review."""

    id: int
    sample_row_id: int
    sample_id: str
    verdict: str
    note: str | None
    reviewer: str
    created_at: datetime


@dataclass(frozen=True)
class Progress:
    """How far the review of one evaluation is.

    Attributes:
        n_samples: samples in the evaluation.
        n_reviewed: samples with at least one review.
        by_reviewer: samples each reviewer has judged.
        by_verdict: current verdicts (newest per sample and reviewer) by kind.
    """

    n_samples: int
    n_reviewed: int
    by_reviewer: dict[str, int]
    by_verdict: dict[str, int]

    @property
    def share(self) -> float:
        """Reviewed fraction in [0, 1]."""
        return self.n_reviewed / self.n_samples if self.n_samples else 0.0


@dataclass(frozen=True)
class PairAgreement:
    """Two reviewers on the samples both judged."""

    a: str
    b: str
    n: int
    agreement: float
    kappa: float | None


@dataclass(frozen=True)
class AutoAgreement:
    """One reviewer against the automatic verdict (accept ↔ correct)."""

    reviewer: str
    n: int
    agreement: float
    kappa: float | None


def clean_reviewer(name: str | None) -> str:
    """The reviewer name, trimmed.

    Raises:
        ReviewInputError: empty or longer than 200 characters.
    """
    who = " ".join((name or "").split())
    if not who:
        raise ReviewInputError(
            "a review needs the reviewer's name", where="reviewer", fix="type your name first"
        )
    if len(who) > MAX_REVIEWER:
        raise ReviewInputError(
            f"reviewer name longer than {MAX_REVIEWER} characters", where="reviewer"
        )
    return who


def add_review(
    db: Database, sample_row_id: int, verdict: str, reviewer: str, note: str | None = None
) -> ReviewRow:
    """Store one review (a new row; earlier reviews by the same person stay as history).

    Raises:
        ReviewInputError: unknown verdict, missing reviewer, note too long, unknown sample.
    """
    who = clean_reviewer(reviewer)
    if verdict not in VERDICTS:
        raise ReviewInputError(
            f"unknown review verdict {verdict!r}", where="verdict", fix=f"use one of {VERDICTS}"
        )
    text = (note or "").strip() or None
    if text is not None and len(text) > MAX_NOTE:
        raise ReviewInputError(
            f"note longer than {MAX_NOTE} characters", where="note", fix="shorten the note"
        )
    with db.sessions.begin() as s:
        sample = s.get(EvaluationSample, sample_row_id)
        if sample is None:
            raise ReviewInputError(
                "no such evaluation sample",
                where=f"sample row {sample_row_id}",
                fix="reload the page: the evaluation may have been re-recorded",
            )
        row = Review(
            sample_row_id=sample_row_id,
            verdict=verdict,
            note=text,
            reviewer=who,
            created_at=utcnow(),
        )
        s.add(row)
        s.flush()
        return ReviewRow(
            row.id, sample_row_id, sample.sample_id, verdict, text, who, row.created_at
        )


def _review_rows(q: Any, db: Database) -> list[ReviewRow]:
    with db.sessions() as s:
        return [
            ReviewRow(r.id, r.sample_row_id, sid, r.verdict, r.note, r.reviewer, r.created_at)
            for r, sid in s.execute(q)
        ]


def reviews_of_sample(db: Database, sample_row_id: int) -> list[ReviewRow]:
    """Every review of one sample, newest first."""
    q = (
        select(Review, EvaluationSample.sample_id)
        .join(EvaluationSample, EvaluationSample.id == Review.sample_row_id)
        .where(Review.sample_row_id == sample_row_id)
        .order_by(Review.created_at.desc(), Review.id.desc())
    )
    return _review_rows(q, db)


def recent_reviews(db: Database, evaluation_id: int, limit: int = 50) -> list[ReviewRow]:
    """The newest reviews of an evaluation."""
    q = (
        select(Review, EvaluationSample.sample_id)
        .join(EvaluationSample, EvaluationSample.id == Review.sample_row_id)
        .where(EvaluationSample.evaluation_id == evaluation_id)
        .order_by(Review.created_at.desc(), Review.id.desc())
        .limit(limit)
    )
    return _review_rows(q, db)


def current_verdicts(db: Database, evaluation_id: int) -> list[tuple[int, str, str, bool | None]]:
    """``(sample row id, reviewer, verdict, automatic correct)`` — the newest review per
    sample and reviewer (reviews are human-sized: these rows are few)."""
    q = (
        select(Review.sample_row_id, Review.reviewer, Review.verdict, EvaluationSample.correct)
        .join(EvaluationSample, EvaluationSample.id == Review.sample_row_id)
        .where(EvaluationSample.evaluation_id == evaluation_id)
        .order_by(Review.created_at, Review.id)
    )
    latest: dict[tuple[int, str], tuple[str, bool | None]] = {}
    with db.sessions() as s:
        for row_id, who, verdict, correct in s.execute(q):
            latest[(row_id, who)] = (verdict, correct)
    return [(rid, who, v, c) for (rid, who), (v, c) in latest.items()]


def progress(db: Database, evaluation_id: int) -> Progress:
    """Review progress of one evaluation."""
    with db.sessions() as s:
        n_samples = int(
            s.scalar(
                select(func.count())
                .select_from(EvaluationSample)
                .where(EvaluationSample.evaluation_id == evaluation_id)
            )
            or 0
        )
        n_reviewed = int(
            s.scalar(
                select(func.count(distinct(Review.sample_row_id)))
                .join(EvaluationSample, EvaluationSample.id == Review.sample_row_id)
                .where(EvaluationSample.evaluation_id == evaluation_id)
            )
            or 0
        )
    current = current_verdicts(db, evaluation_id)
    by_reviewer = Counter(who for _, who, _, _ in current)
    by_verdict = Counter(v for _, _, v, _ in current)
    return Progress(
        n_samples,
        n_reviewed,
        dict(sorted(by_reviewer.items())),
        {v: by_verdict.get(v, 0) for v in VERDICTS},
    )


def cohen_kappa(pairs: Sequence[tuple[Any, Any]]) -> float | None:
    """Cohen's kappa of two raters' labels (``None`` when undefined: no pairs, or chance
    agreement is already 1 because both raters used one and the same label throughout).

    Written out (a dozen lines) rather than pulling scikit-learn into a torch-free app.
    """
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(1 for x, y in pairs if x == y) / n
    ca, cb = Counter(x for x, _ in pairs), Counter(y for _, y in pairs)
    expected = sum(ca[k] * cb.get(k, 0) for k in ca) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def agreement(db: Database, evaluation_id: int) -> tuple[list[PairAgreement], list[AutoAgreement]]:
    """Reviewer–reviewer agreement per pair and reviewer–verifier agreement per reviewer."""
    current = current_verdicts(db, evaluation_id)
    by_reviewer: dict[str, dict[int, str]] = {}
    auto: dict[int, bool | None] = {}
    for rid, who, verdict, correct in current:
        by_reviewer.setdefault(who, {})[rid] = verdict
        auto[rid] = correct
    pairs: list[PairAgreement] = []
    for a, b in combinations(sorted(by_reviewer), 2):
        shared = sorted(set(by_reviewer[a]) & set(by_reviewer[b]))
        if not shared:
            continue
        labels = [(by_reviewer[a][r], by_reviewer[b][r]) for r in shared]
        pairs.append(
            PairAgreement(
                a, b, len(labels), sum(x == y for x, y in labels) / len(labels), cohen_kappa(labels)
            )
        )
    autos: list[AutoAgreement] = []
    for who in sorted(by_reviewer):
        labels2 = [
            (v == "accept", bool(auto[r]))
            for r, v in by_reviewer[who].items()
            if v != "flag" and auto[r] is not None
        ]
        if labels2:
            autos.append(
                AutoAgreement(
                    who,
                    len(labels2),
                    sum(x == y for x, y in labels2) / len(labels2),
                    cohen_kappa(labels2),
                )
            )
    return pairs, autos


def next_unreviewed(
    db: Database,
    evaluation_id: int,
    reviewer: str,
    f: SampleFilter | None = None,
    *,
    after: str | None = None,
) -> SampleRow | None:
    """The first sample (by sample id, after ``after``) matching ``f`` that ``reviewer`` has not
    judged yet; wraps around to the start once."""
    who = clean_reviewer(reviewer)
    reviewed = exists().where(Review.sample_row_id == EvaluationSample.id, Review.reviewer == who)
    base = and_(*filter_conditions(evaluation_id, f or SampleFilter()), ~reviewed)
    with db.sessions() as s:
        for lower in [after, None] if after else [None]:
            q = select(EvaluationSample).where(base)
            if lower is not None:
                q = q.where(EvaluationSample.sample_id > lower)
            r = s.scalars(q.order_by(EvaluationSample.sample_id).limit(1)).first()
            if r is not None:
                return sample_row(r)
    return None


def export_lines(db: Database, evaluation_id: int | None = None) -> Iterator[str]:
    """Reviews as JSON lines (all evaluations when ``evaluation_id`` is ``None``), oldest
    first, streamed in batches (never the whole table in memory)."""
    q = (
        select(Review)
        .join(EvaluationSample, EvaluationSample.id == Review.sample_row_id)
        .options(
            selectinload(Review.sample)
            .selectinload(EvaluationSample.evaluation)
            .selectinload(Evaluation.model_version)
        )
        .order_by(Review.created_at, Review.id)
        .execution_options(yield_per=500)
    )
    if evaluation_id is not None:
        q = q.where(EvaluationSample.evaluation_id == evaluation_id)
    with db.sessions() as s:
        for r in s.scalars(q):
            smp, ev = r.sample, r.sample.evaluation
            doc: dict[str, Any] = {
                "evaluation_id": ev.id,
                "evaluation": ev.label,
                "evaluation_key": ev.key,
                "model": ev.model_version.ref if ev.model_version is not None else None,
                "split": ev.split,
                "sample_id": smp.sample_id,
                "category": smp.category,
                "family": smp.family,
                "holdout": smp.holdout,
                "instruction": smp.instruction,
                "rationale": smp.rationale,
                "images": smp.image_uris,
                "auto_verdict": smp.verdict,
                "auto_correct": smp.correct,
                "metrics": smp.metrics,
                "review": {
                    "id": r.id,
                    "verdict": r.verdict,
                    "note": r.note,
                    "reviewer": r.reviewer,
                    "created_at": r.created_at.isoformat(),
                },
                "label": {"accept": True, "reject": False}.get(r.verdict),
            }
            yield json.dumps(doc, ensure_ascii=False, sort_keys=False) + "\n"


def export_jsonl(db: Database, evaluation_id: int | None = None) -> str:
    """:func:`export_lines` joined (what the download button serves)."""
    return "".join(export_lines(db, evaluation_id))
