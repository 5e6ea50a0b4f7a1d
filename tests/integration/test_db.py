"""Metadata DB: Alembic migrations, schema/model agreement, constraints (SQLite + PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError

from reasonbrain.errors import RegistryError
from reasonbrain.registry.db import (
    current_revision,
    downgrade,
    head_revision,
    make_engine,
    open_db,
    safe_url,
    upgrade,
)
from reasonbrain.registry.tables import (
    Base,
    Dataset,
    Evaluation,
    EvaluationSample,
    Metric,
    ModelVersion,
    Review,
    Run,
)

TABLES = {
    "datasets",
    "runs",
    "metrics",
    "model_versions",
    "model_aliases",
    "evaluations",
    "evaluation_samples",
    "reviews",
    "promotions",
    "landing_drops",
    "notifications",
}


def test_upgrade_from_empty_and_downgrade_round_trip(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) is None
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        assert set(inspect(engine).get_table_names()) >= TABLES
        upgrade(engine)  # idempotent
        downgrade(engine, "base")
        assert current_revision(engine) is None
        assert not TABLES & set(inspect(engine).get_table_names())
        upgrade(engine)
        assert set(inspect(engine).get_table_names()) >= TABLES
    finally:
        engine.dispose()


def test_migrations_match_the_orm_models(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []  # a model change without a migration fails here
    finally:
        engine.dispose()


def test_open_db_migrates_automatically_unless_told_not_to(db_url: str) -> None:
    with pytest.raises(RegistryError, match="not up to date"):
        open_db(db_url, auto_upgrade=False)
    db = open_db(db_url)
    try:
        assert current_revision(db.engine) == head_revision()
    finally:
        db.dispose()


def test_schema_records_the_pipeline_and_enforces_constraints(db_url: str) -> None:
    db = open_db(db_url)
    try:
        with db.sessions.begin() as s:
            ds = Dataset(name="reasonsynth", version="md5:abc", split_counts={"train": 10})
            run = Run(id="r1", kind="train", params={"lr": 0.1}, params_hash="h", dataset=ds)
            run.metrics.append(Metric(name="loss", value=0.5, step=10))
            run.metrics.append(
                Metric(name="accuracy", scope="causal", value=0.8, ci_low=0.7, ci_high=0.9)
            )
            mv = ModelVersion(
                name="m", version=1, store_uri="s3://b/m/1", sha256="0" * 64, size_bytes=1, files=[]
            )
            ev = Evaluation(model_version=mv, run_id="r1", dataset=ds, config={"clip": "B/32"})
            sample = EvaluationSample(
                sample_id="s1",
                category="physical",
                instruction="What if the ice melted?",
                image_uris={"src": "s3://b/src.png", "output": "s3://b/out.png"},
                metrics={"clip_i": 0.9},
                rationale="the cube becomes a puddle",
            )
            ev.samples.append(sample)
            sample.reviews.append(Review(verdict="accept", reviewer="ana", note="ok"))
            s.add_all([run, ev])
        with db.sessions() as s:
            r = s.get(Run, "r1")
            assert r is not None and r.dataset is not None and r.dataset.version == "md5:abc"
            assert {(m.name, m.scope) for m in r.metrics} == {
                ("loss", "overall"),
                ("accuracy", "causal"),
            }
            review = s.scalars(select(Review)).one()
            assert review.sample.evaluation.model_version.version == 1  # type: ignore[union-attr]
            assert review.created_at.tzinfo is not None
        with pytest.raises(IntegrityError), db.sessions.begin() as s:  # verdict is checked
            s.add(Review(sample_row_id=review.sample_row_id, verdict="maybe", reviewer="bob"))
        with pytest.raises(IntegrityError), db.sessions.begin() as s:  # versions are unique
            s.add(
                ModelVersion(
                    name="m", version=1, store_uri="x", sha256="0" * 64, size_bytes=1, files=[]
                )
            )
    finally:
        db.dispose()


def test_urls_are_shown_without_passwords(tmp_path: Path) -> None:
    assert safe_url("postgresql+psycopg://u:hunter2@h/db") == "postgresql+psycopg://u:***@h/db"
    with pytest.raises(RegistryError, match="cannot use database URL") as exc:
        open_db("nosuchdialect://u:hunter2@h/db")
    assert "hunter2" not in str(exc.value)


def test_orchestration_migration_downgrades_to_0001_keeping_constraints(db_url: str) -> None:
    """0002 adds columns and tables; going back to 0001 and up again keeps old rows and checks."""
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0001")
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO runs (id, kind, params, status, started_at) "
                "VALUES ('r0', 'train', '{}', 'succeeded', '2026-01-01 00:00:00')"
            )
        upgrade(engine)
        cols = {c["name"] for c in inspect(engine).get_columns("evaluation_samples")}
        assert {"family", "holdout", "verdict", "correct"} <= cols
        downgrade(engine, "0001")
        assert current_revision(engine) == "0001"
        assert "parent_id" not in {c["name"] for c in inspect(engine).get_columns("runs")}
        assert not {"promotions", "landing_drops"} & set(inspect(engine).get_table_names())
        with pytest.raises(IntegrityError), engine.begin() as conn:  # CHECK survived
            conn.exec_driver_sql(
                "INSERT INTO runs (id, kind, params, status, started_at) "
                "VALUES ('r1', 'train', '{}', 'bogus', '2026-01-01 00:00:00')"
            )
        upgrade(engine)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM runs").scalar() == 1
    finally:
        engine.dispose()


def test_store_key_migration_fills_keys_and_downgrades_to_0002(db_url: str) -> None:
    """0003 adds ``model_versions.store_key`` and derives it from old absolute URIs; rows whose
    URI has no ``models/NAME/<uid>`` tail keep NULL; back to 0002 and up again keeps the rows."""
    uid = "0123456789abcdef0123456789abcdef"
    rows = [
        (1, f"file:///old/project/.reasonbrain/store/models/tiny/{uid}", f"models/tiny/{uid}"),
        (2, f"s3://bucket/registry-old/models/tiny/{uid[::-1]}", f"models/tiny/{uid[::-1]}"),
        (3, "s3://b/m/1", None),
    ]
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0002")
        with engine.begin() as conn:
            for version, uri, _ in rows:
                conn.execute(
                    text(
                        "INSERT INTO model_versions (name, version, store_uri, sha256, "
                        "size_bytes, files, created_at, lineage) VALUES ('tiny', :v, :uri, "
                        ":sha, 1, '[]', '2026-01-01 00:00:00', '{}')"
                    ),
                    {"v": version, "uri": uri, "sha": "0" * 64},
                )
        upgrade(engine)
        with engine.connect() as conn:
            got = dict(conn.exec_driver_sql("SELECT version, store_key FROM model_versions").all())
        assert got == {v: key for v, _, key in rows}
        with pytest.raises(IntegrityError), engine.begin() as conn:  # keys are unique
            conn.execute(
                text("UPDATE model_versions SET store_key = :k WHERE version = 3"),
                {"k": f"models/tiny/{uid}"},
            )
        downgrade(engine, "0002")
        assert "store_key" not in {c["name"] for c in inspect(engine).get_columns("model_versions")}
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM model_versions").scalar() == 3
        upgrade(engine)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
