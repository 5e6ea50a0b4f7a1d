"""Fixtures for the registry/store/DB/infra tests (a pytest plugin listed in tests/conftest.py).

- ``moto_endpoint`` (session): a real S3 HTTP endpoint — moto's ThreadedMotoServer on loopback,
  port chosen by the OS.
- ``s3_env``: dummy credentials + ``AWS_ENDPOINT_URL`` for one test.
- ``s3_uri``: a fresh bucket per test, as ``s3://bucket/prefix``.
- ``pg_url``: a uniquely named temporary PostgreSQL database on 127.0.0.1:5432 (trust auth, user
  ``postgres`` or ``root``), dropped afterwards; skips with a printed reason if no server answers.
- ``db_url``: parametrised over SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_HOST, PG_PORT = "127.0.0.1", 5432
DUMMY_KEY_ID = "AKIDREASONBRAINTEST"
DUMMY_SECRET = "sEcReT-never-log-me-0123456789"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """URL of a moto S3 server on loopback for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point boto3 at the moto endpoint with dummy credentials; returns the endpoint."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", DUMMY_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", DUMMY_SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(key, raising=False)
    return moto_endpoint


@pytest.fixture
def s3_uri(s3_env: str) -> str:
    """A fresh, existing bucket: ``s3://rb-test-<uid>/registry``."""
    import boto3

    bucket = f"rb-test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_env).create_bucket(Bucket=bucket)
    return f"s3://{bucket}/registry"


def _pg_admin_user() -> tuple[str | None, str]:
    import psycopg

    reasons = []
    for user in ("postgres", "root"):
        try:
            with psycopg.connect(
                host=PG_HOST, port=PG_PORT, user=user, dbname="postgres", connect_timeout=3
            ):
                return user, ""
        except psycopg.Error as err:
            reasons.append(f"{user}: {str(err).strip().splitlines()[0]}")
    return None, "; ".join(reasons)


@pytest.fixture(scope="session")
def pg_admin() -> str:
    """The PostgreSQL user that can create databases (skips when no server is reachable)."""
    user, why = _pg_admin_user()
    if user is None:
        reason = f"PostgreSQL not reachable on {PG_HOST}:{PG_PORT} ({why})"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    return user


@pytest.fixture
def pg_url(pg_admin: str) -> Iterator[str]:
    """A temporary database ``rb_test_<uid>`` (SQLAlchemy URL), dropped after the test."""
    import psycopg

    name = f"rb_test_{uuid.uuid4().hex[:12]}"
    admin = {"host": PG_HOST, "port": PG_PORT, "user": pg_admin, "dbname": "postgres"}
    with psycopg.connect(**admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://{pg_admin}@{PG_HOST}:{PG_PORT}/{name}"
    with psycopg.connect(**admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database: SQLite file, or a temporary PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A small model directory: config JSON, weights, tokenizer files, model card."""
    d = tmp_path / "model"
    (d / "tokenizer").mkdir(parents=True)
    (d / "config.json").write_text('{"model_type": "reasonbrain", "preset": "tiny"}')
    (d / "model.safetensors").write_bytes(os.urandom(300_000))
    (d / "tokenizer" / "vocab.json").write_text('{"a": 0, "b": 1}')
    (d / "README.md").write_text("# tiny model card\n")
    return d
