"""Store-relative keys for model versions (``model_versions.store_key``).

Until now a version was located by its absolute ``store_uri``; for the embedded ``file://`` store
that URI contains the project's path, so moving the project made every version look orphaned.
``store_key`` is the location relative to the store root. The column is nullable (added in place
on SQLite) and filled for existing rows from the trailing ``models/<name>/<uid>`` of their URI;
rows whose URI has no such tail keep NULL and are located through ``store_uri`` as before.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 06:00:00
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: the key every registration before 0003 used: models/<name>/<32 hex uid>, at the end of the URI
_LEGACY_TAIL = re.compile(r"(?:^|/)(models/[A-Za-z0-9][A-Za-z0-9._-]{0,199}/[0-9a-f]{32})/?$")


def legacy_key(store_uri: str) -> str | None:
    """The store-relative key inside a pre-0003 ``store_uri`` (``None`` when it has none)."""
    m = _LEGACY_TAIL.search(store_uri)
    return m.group(1) if m else None


def upgrade() -> None:
    op.add_column("model_versions", sa.Column("store_key", sa.String(length=1000), nullable=True))
    op.create_index("ix_model_versions_store_key", "model_versions", ["store_key"], unique=True)
    table = sa.table(
        "model_versions",
        sa.column("id", sa.Integer()),
        sa.column("store_uri", sa.String()),
        sa.column("store_key", sa.String()),
    )
    conn = op.get_bind()
    rows = conn.execute(sa.select(table.c.id, table.c.store_uri)).all()
    for row_id, uri in rows:
        key = legacy_key(str(uri))
        if key is not None:
            conn.execute(table.update().where(table.c.id == row_id).values(store_key=key))


def downgrade() -> None:
    op.drop_index("ix_model_versions_store_key", table_name="model_versions")
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("store_key")
