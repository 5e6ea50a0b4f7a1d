"""The metadata schema: SQLAlchemy 2 typed ORM (issue 6, part 2).

One table per thing the pipeline records; Alembic migrations under ``migrations/`` create them
(``0001_initial`` is the first table on), so the schema can evolve without losing data. Works on
SQLite (embedded default) and PostgreSQL (``postgresql+psycopg://``); JSON columns are JSONB on
PostgreSQL. Times are timezone-aware UTC.

- ``datasets``: a dataset version (content hash or DVC md5), split counts, validation status.
- ``runs``: one pipeline run (train, evaluate …): params and their hash, git commit, dataset,
  status, start/end, where its outputs live.
- ``metrics``: a named value of a run, per scope (``overall`` or a category), with an optional
  confidence interval and step.
- ``model_versions`` + ``model_aliases``: registered model directories (monotonic version per
  name, store URI, sha256 digest, size, file manifest, run, lineage) and movable aliases such as
  ``staging``/``production`` (one row per (name, alias); moving it is one UPDATE).
- ``evaluations`` + ``evaluation_samples``: an evaluation of a model version and its per-sample
  rows (instruction, image URIs, per-sample metrics, rationale).
- ``reviews``: a person's verdict on one evaluation sample (accept / reject / flag).
- ``promotions``: each promotion-gate decision (candidate, incumbent, paired difference + CI,
  verdict and the reason in words).
- ``landing_drops``: each landing-zone drop the ``ingest`` flow saw, processed once (merged or
  quarantined, with its validation report).
- ``notifications``: every notification the flows sent (failures, promotions, quarantines) and
  where it was delivered.

Migration ``0002`` adds the orchestration columns and the last three tables; ``0003`` adds
``model_versions.store_key`` (store-relative location of a version's files).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

#: JSON everywhere, JSONB on PostgreSQL
JSONType = JSON().with_variant(JSONB(), "postgresql")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

RUN_STATUSES = ("running", "succeeded", "failed")
VERDICTS = ("accept", "reject", "flag")
#: the automatic verdict of an evaluation sample (the ReasonSynth verifier's ``outcome``: the
#: target; else the nearest wrong outcome — "tie" when the target and a counterfactual are equally
#: near, which counts as not correct —; else the calibrated bound the output failed)
SAMPLE_VERDICTS = (
    "target",
    "no_change",
    "wrong_object",
    "wrong_change",
    "tie",
    "faint_edit",
    "collateral_edit",
    "background_changed",
    "no_output",
    "unverifiable",
)
PROMOTION_DECISIONS = ("production", "staging")
DROP_STATUSES = ("processing", "merged", "quarantined", "failed")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every backend (SQLite stores naive text: re-attach UTC on read)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    """Now, timezone-aware UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base with deterministic constraint names (Alembic-friendly)."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSONType, list[Any]: JSONType}


class Dataset(Base):
    """A dataset version."""

    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(80), doc="content hash or DVC md5")
    path: Mapped[str | None] = mapped_column(Text)
    split_counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    validation_status: Mapped[str] = mapped_column(String(20), default="unvalidated")
    validation_report: Mapped[dict[str, Any] | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Run(Base):
    """One pipeline run (data, train, evaluate …)."""

    __tablename__ = "runs"
    __table_args__ = (
        CheckConstraint(f"status IN {RUN_STATUSES!r}", name="status"),
        Index("ix_runs_kind_started", "kind", "started_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    params_hash: Mapped[str | None] = mapped_column(String(64))
    git_commit: Mapped[str | None] = mapped_column(String(64))
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(20), default="running")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    storage_path: Mapped[str | None] = mapped_column(Text)
    parent_id: Mapped[str | None] = mapped_column(
        String(64), doc="id of the flow run this run belongs to (no FK: SQLite cannot add one)"
    )
    details: Mapped[dict[str, Any] | None] = mapped_column(
        doc="what happened, e.g. per DVC stage: ran / skipped (up to date) / failed"
    )
    error: Mapped[str | None] = mapped_column(Text, doc="why it failed (one line)")

    dataset: Mapped[Dataset | None] = relationship()
    metrics: Mapped[list[Metric]] = relationship(back_populates="run", cascade="all, delete-orphan")


class Metric(Base):
    """A named value of a run, per scope, with an optional confidence interval and step."""

    __tablename__ = "metrics"
    __table_args__ = (Index("ix_metrics_run_name", "run_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    scope: Mapped[str] = mapped_column(String(100), default="overall")
    value: Mapped[float] = mapped_column(Float)
    ci_low: Mapped[float | None] = mapped_column(Float)
    ci_high: Mapped[float | None] = mapped_column(Float)
    step: Mapped[int | None] = mapped_column(Integer)

    run: Mapped[Run] = relationship(back_populates="metrics")


class ModelVersion(Base):
    """A registered model directory (immutable once written)."""

    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("name", "version"),
        UniqueConstraint("store_uri"),
        Index("ix_model_versions_store_key", "store_key", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    store_uri: Mapped[str] = mapped_column(String(1000), doc="full URI at registration (display)")
    store_key: Mapped[str | None] = mapped_column(
        String(1000),
        doc="where the files live, relative to the store root: the registry reads this, so a "
        "moved project or a renamed bucket keeps working",
    )
    sha256: Mapped[str] = mapped_column(String(64), doc="digest of the file manifest")
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    files: Mapped[list[Any]] = mapped_column(doc="[{path, size, sha256}]")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    lineage: Mapped[dict[str, Any]] = mapped_column(default=dict)
    description: Mapped[str | None] = mapped_column(Text)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    run: Mapped[Run | None] = relationship()
    aliases: Mapped[list[ModelAlias]] = relationship(back_populates="model_version")

    @property
    def ref(self) -> str:
        """``NAME@VERSION``."""
        return f"{self.name}@{self.version}"


class ModelAlias(Base):
    """A movable name (``staging``, ``production`` …) for one version of a model."""

    __tablename__ = "model_aliases"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    alias: Mapped[str] = mapped_column(String(100), primary_key=True)
    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE")
    )
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    model_version: Mapped[ModelVersion] = relationship(back_populates="aliases")


class Evaluation(Base):
    """An evaluation of a model version (or of a baseline such as identity) on a dataset split."""

    __tablename__ = "evaluations"
    __table_args__ = (Index("ix_evaluations_key", "key", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL")
    )
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"))
    split: Mapped[str] = mapped_column(String(20), default="test")
    config: Mapped[dict[str, Any]] = mapped_column(default=dict, doc="metric configuration")
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    key: Mapped[str | None] = mapped_column(
        String(64),
        doc="idempotency key: what was evaluated (model digest or baseline), dataset version, "
        "split and eval params; recording the same evaluation twice finds this row",
    )
    label: Mapped[str | None] = mapped_column(
        String(200), doc="what was evaluated, for people: 'reasonbrain@3', 'identity' …"
    )
    store_prefix: Mapped[str | None] = mapped_column(
        Text, doc="object-store URI under which the evaluation's output images live"
    )
    n_samples: Mapped[int | None] = mapped_column(Integer)

    model_version: Mapped[ModelVersion | None] = relationship()
    run: Mapped[Run | None] = relationship()
    dataset: Mapped[Dataset | None] = relationship()
    samples: Mapped[list[EvaluationSample]] = relationship(
        back_populates="evaluation", cascade="all, delete-orphan"
    )


class EvaluationSample(Base):
    """One sample's outcome in an evaluation."""

    __tablename__ = "evaluation_samples"
    __table_args__ = (
        UniqueConstraint("evaluation_id", "sample_id"),
        Index("ix_evaluation_samples_category", "evaluation_id", "category"),
        Index("ix_evaluation_samples_verdict", "evaluation_id", "verdict"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id", ondelete="CASCADE"))
    sample_id: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(50))
    instruction: Mapped[str] = mapped_column(Text)
    image_uris: Mapped[dict[str, Any]] = mapped_column(
        default=dict, doc="{'src': …, 'tgt': …, 'output': …}"
    )
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    rationale: Mapped[str | None] = mapped_column(Text)
    family: Mapped[str | None] = mapped_column(String(80), doc="ReasonSynth family")
    holdout: Mapped[str | None] = mapped_column(
        String(30), doc="seen / phrasing / combination (ReasonSynth test split)"
    )
    verdict: Mapped[str | None] = mapped_column(
        String(30), doc=f"automatic verdict, one of {SAMPLE_VERDICTS} (None: not verifiable)"
    )
    correct: Mapped[bool | None] = mapped_column(
        Boolean, doc="the primary per-sample outcome (None: excluded from accuracy)"
    )

    evaluation: Mapped[Evaluation] = relationship(back_populates="samples")
    reviews: Mapped[list[Review]] = relationship(
        back_populates="sample", cascade="all, delete-orphan"
    )


class Review(Base):
    """A person's verdict on one evaluation sample."""

    __tablename__ = "reviews"
    __table_args__ = (CheckConstraint(f"verdict IN {VERDICTS!r}", name="verdict"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sample_row_id: Mapped[int] = mapped_column(
        ForeignKey("evaluation_samples.id", ondelete="CASCADE")
    )
    verdict: Mapped[str] = mapped_column(String(10))
    note: Mapped[str | None] = mapped_column(Text)
    reviewer: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    sample: Mapped[EvaluationSample] = relationship(back_populates="reviews")


class PromotionDecision(Base):
    """One decision of the promotion gate: the candidate went to ``production`` or ``staging``.

    ``details`` holds every comparison the gate made (vs the production model, or vs each
    baseline when there is none): metric, paired difference, CI, number of paired samples.
    """

    __tablename__ = "promotions"
    __table_args__ = (
        CheckConstraint(f"decision IN {PROMOTION_DECISIONS!r}", name="decision"),
        Index("ix_promotions_name_created", "name", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), doc="model name")
    candidate_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL")
    )
    incumbent_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL"),
        doc="the production version compared against (None: compared with the baselines)",
    )
    decision: Mapped[str] = mapped_column(String(20))
    metric: Mapped[str] = mapped_column(String(100))
    margin: Mapped[float] = mapped_column(Float)
    difference: Mapped[float | None] = mapped_column(Float, doc="the deciding paired difference")
    ci_low: Mapped[float | None] = mapped_column(Float)
    ci_high: Mapped[float | None] = mapped_column(Float)
    n_pairs: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text, doc="the decision in words, with the numbers")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    run_id: Mapped[str | None] = mapped_column(
        ForeignKey("runs.id", ondelete="SET NULL"), doc="the flow run that decided"
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    candidate: Mapped[ModelVersion | None] = relationship(foreign_keys=[candidate_version_id])
    incumbent: Mapped[ModelVersion | None] = relationship(foreign_keys=[incumbent_version_id])


class LandingDrop(Base):
    """A drop seen in the landing zone by the ``ingest`` flow (processed once)."""

    __tablename__ = "landing_drops"
    __table_args__ = (
        UniqueConstraint("uri", "fingerprint"),
        CheckConstraint(f"status IN {DROP_STATUSES!r}", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    uri: Mapped[str] = mapped_column(String(1000), doc="where the drop was found")
    fingerprint: Mapped[str] = mapped_column(String(64), doc="digest of its file listing")
    format: Mapped[str | None] = mapped_column(String(40), doc="importer name")
    status: Mapped[str] = mapped_column(String(20), default="processing")
    n_records: Mapped[int | None] = mapped_column(Integer)
    dataset_version: Mapped[str | None] = mapped_column(
        String(80), doc="the dataset version it produced (merged drops)"
    )
    quarantine_uri: Mapped[str | None] = mapped_column(Text)
    report: Mapped[dict[str, Any] | None] = mapped_column(doc="validation report")
    error: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Notification(Base):
    """A notification a flow sent (always recorded here, whatever else it was delivered to)."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_created", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event: Mapped[str] = mapped_column(String(40), doc="failure / promotion / quarantine …")
    flow: Mapped[str | None] = mapped_column(String(100))
    run_id: Mapped[str | None] = mapped_column(String(64), doc="flow run id (no FK: may be gone)")
    message: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    deliveries: Mapped[list[Any]] = mapped_column(
        default=list, doc="[{channel, ok, detail}] — where it went and whether that worked"
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
