"""Orchestration: flow-run details, evaluation keys and per-sample verdicts, promotion decisions,
landing-zone drops, notifications.

Every added column is nullable, so existing rows stay valid and SQLite can add them in place.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

#: JSON everywhere, JSONB on PostgreSQL (as in reasonbrain.registry.tables)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("parent_id", sa.String(length=64), nullable=True))
    op.add_column("runs", sa.Column("details", JSON, nullable=True))
    op.add_column("runs", sa.Column("error", sa.Text(), nullable=True))

    op.add_column("evaluations", sa.Column("key", sa.String(length=64), nullable=True))
    op.add_column("evaluations", sa.Column("label", sa.String(length=200), nullable=True))
    op.add_column("evaluations", sa.Column("store_prefix", sa.Text(), nullable=True))
    op.add_column("evaluations", sa.Column("n_samples", sa.Integer(), nullable=True))
    op.create_index("ix_evaluations_key", "evaluations", ["key"], unique=True)

    op.add_column("evaluation_samples", sa.Column("family", sa.String(length=80), nullable=True))
    op.add_column("evaluation_samples", sa.Column("holdout", sa.String(length=30), nullable=True))
    op.add_column("evaluation_samples", sa.Column("verdict", sa.String(length=30), nullable=True))
    op.add_column("evaluation_samples", sa.Column("correct", sa.Boolean(), nullable=True))
    op.create_index(
        "ix_evaluation_samples_verdict", "evaluation_samples", ["evaluation_id", "verdict"]
    )

    op.create_table(
        "promotions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("candidate_version_id", sa.Integer(), nullable=True),
        sa.Column("incumbent_version_id", sa.Integer(), nullable=True),
        sa.Column("decision", sa.String(length=20), nullable=False),
        sa.Column("metric", sa.String(length=100), nullable=False),
        sa.Column("margin", sa.Float(), nullable=False),
        sa.Column("difference", sa.Float(), nullable=True),
        sa.Column("ci_low", sa.Float(), nullable=True),
        sa.Column("ci_high", sa.Float(), nullable=True),
        sa.Column("n_pairs", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("details", JSON, nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "decision IN ('production', 'staging')", name=op.f("ck_promotions_decision")
        ),
        sa.ForeignKeyConstraint(
            ["candidate_version_id"],
            ["model_versions.id"],
            name=op.f("fk_promotions_candidate_version_id_model_versions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["incumbent_version_id"],
            ["model_versions.id"],
            name=op.f("fk_promotions_incumbent_version_id_model_versions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_promotions_run_id_runs"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotions")),
    )
    op.create_index("ix_promotions_name_created", "promotions", ["name", "created_at"])

    op.create_table(
        "landing_drops",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uri", sa.String(length=1000), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("format", sa.String(length=40), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("n_records", sa.Integer(), nullable=True),
        sa.Column("dataset_version", sa.String(length=80), nullable=True),
        sa.Column("quarantine_uri", sa.Text(), nullable=True),
        sa.Column("report", JSON, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('processing', 'merged', 'quarantined', 'failed')",
            name=op.f("ck_landing_drops_status"),
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_landing_drops_run_id_runs"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_landing_drops")),
        sa.UniqueConstraint("uri", "fingerprint", name=op.f("uq_landing_drops_uri_fingerprint")),
    )

    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("flow", sa.String(length=100), nullable=True),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("deliveries", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    op.create_index("ix_notifications_created", "notifications", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_notifications_created", table_name="notifications")
    op.drop_table("notifications")
    op.drop_table("landing_drops")
    op.drop_index("ix_promotions_name_created", table_name="promotions")
    op.drop_table("promotions")

    op.drop_index("ix_evaluation_samples_verdict", table_name="evaluation_samples")
    with op.batch_alter_table("evaluation_samples") as batch:
        for col in ("correct", "verdict", "holdout", "family"):
            batch.drop_column(col)
    op.drop_index("ix_evaluations_key", table_name="evaluations")
    with op.batch_alter_table("evaluations") as batch:
        for col in ("n_samples", "store_prefix", "label", "key"):
            batch.drop_column(col)
    with op.batch_alter_table("runs") as batch:
        for col in ("error", "details", "parent_id"):
            batch.drop_column(col)
