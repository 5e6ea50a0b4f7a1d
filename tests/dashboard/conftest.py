"""Fixtures of the dashboard tests: fixture databases (empty, populated on SQLite + ``file://``
and on PostgreSQL + ``s3://``), the environment an app run reads, and Streamlit cache hygiene.

Populated fixtures are built once per session (through the ORM and the registry API, see
:mod:`benchmarks.dashboard_fixture`); tests that write get their own copy.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks.dashboard_fixture import FixtureInfo, Scene, fill, render_scenes

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
N_SAMPLES = 30
PAGES = {
    "overview": "views/overview.py",
    "metrics": "views/metrics.py",
    "edits": "views/edits.py",
    "registry": "views/registry.py",
    "review": "views/review.py",
}


@dataclass
class DashEnv:
    """Where a fixture database and store live, and what was put there."""

    db_url: str
    store_uri: str
    info: FixtureInfo | None
    extra_env: dict[str, str]

    def environ(self) -> dict[str, str]:
        """The environment variables an app run needs."""
        return {
            "REASONBRAIN_DB_URL": self.db_url,
            "REASONBRAIN_STORE_URI": self.store_uri,
            **self.extra_env,
        }


@pytest.fixture(autouse=True)
def _streamlit_isolation() -> Iterator[None]:
    """Caches and the bind address are process-wide in Streamlit: reset them around each test
    (the app then sees a loopback server unless a test says otherwise)."""
    import streamlit as st
    from streamlit import config

    st.cache_data.clear()
    st.cache_resource.clear()
    before = config.get_option("server.address")
    config.set_option("server.address", "127.0.0.1")
    yield
    config.set_option("server.address", before)
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def use_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[DashEnv], DashEnv]]:
    """``use_env(dash_env)`` points settings (and AWS credentials) at a fixture for one test."""

    def apply(env: DashEnv) -> DashEnv:
        for key in ("REASONBRAIN_DASHBOARD_PASSWORD", "REASONBRAIN_DASHBOARD_PAGE_SIZE"):
            monkeypatch.delenv(key, raising=False)
        for key, value in env.environ().items():
            monkeypatch.setenv(key, value)
        return env

    yield apply


@pytest.fixture(scope="session")
def scenes() -> list[Scene]:
    """A dozen rendered ReasonSynth test scenes, shared by every fixture database."""
    return render_scenes(12)


def _fill_sqlite(root: Path, scenes: list[Scene]) -> DashEnv:
    from reasonbrain.registry.db import open_db
    from reasonbrain.registry.store import FileStore

    url = f"sqlite:///{root / 'rb.db'}"
    db = open_db(url)
    store = FileStore(root / "store")
    try:
        info = fill(db, store, n_samples=N_SAMPLES, scenes=scenes, resamples=100)
    finally:
        db.dispose()  # closes every connection: the WAL is checkpointed into rb.db
    return DashEnv(url, store.uri, info, {})


@pytest.fixture(scope="session")
def populated_sqlite(tmp_path_factory: pytest.TempPathFactory, scenes: list[Scene]) -> DashEnv:
    """SQLite + ``file://`` store with three evaluations of 30 samples (read-only: copy it
    with ``writable_sqlite`` before writing)."""
    return _fill_sqlite(tmp_path_factory.mktemp("dash-sqlite"), scenes)


@pytest.fixture
def writable_sqlite(populated_sqlite: DashEnv, tmp_path: Path) -> DashEnv:
    """A private copy of the populated SQLite database (the image store is shared)."""
    src = Path(populated_sqlite.db_url.removeprefix("sqlite:///"))
    dst = tmp_path / "rb.db"
    shutil.copy(src, dst)
    return DashEnv(f"sqlite:///{dst}", populated_sqlite.store_uri, populated_sqlite.info, {})


@pytest.fixture
def empty_sqlite(tmp_path: Path) -> DashEnv:
    """A migrated SQLite database with no rows."""
    from reasonbrain.registry.db import open_db

    url = f"sqlite:///{tmp_path / 'empty.db'}"
    open_db(url).dispose()
    return DashEnv(url, (tmp_path / "store").as_uri(), None, {})


@pytest.fixture
def missing_sqlite(tmp_path: Path) -> DashEnv:
    """A database URL whose SQLite file does not exist (nothing has run yet)."""
    return DashEnv(
        f"sqlite:///{tmp_path / 'never' / 'rb.db'}", (tmp_path / "store").as_uri(), None, {}
    )


@pytest.fixture(scope="session")
def populated_pg_s3(pg_admin: str, moto_endpoint: str, scenes: list[Scene]) -> Iterator[DashEnv]:
    """PostgreSQL + ``s3://`` (moto over HTTP) holding the same kind of fixture."""
    import boto3
    import psycopg

    from reasonbrain.registry.db import open_db
    from reasonbrain.registry.store import open_store
    from tests.integration.registry_fixtures import DUMMY_KEY_ID, DUMMY_SECRET, PG_HOST, PG_PORT

    aws = {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": DUMMY_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    name = f"rb_dash_{uuid.uuid4().hex[:10]}"
    admin = {"host": PG_HOST, "port": PG_PORT, "user": pg_admin, "dbname": "postgres"}
    with psycopg.connect(**admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://{pg_admin}@{PG_HOST}:{PG_PORT}/{name}"
    bucket = f"rb-dash-{uuid.uuid4().hex[:10]}"
    saved = {k: os.environ.get(k) for k in aws}
    os.environ.update(aws)
    try:
        boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket=bucket)
        store_uri = f"s3://{bucket}/rb"
        db = open_db(url)
        try:
            info = fill(
                db, open_store(store_uri), n_samples=N_SAMPLES, scenes=scenes, resamples=100
            )
        finally:
            db.dispose()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    yield DashEnv(url, store_uri, info, aws)
    with psycopg.connect(**admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
