"""Opening the metadata database and migrating it (issue 6, part 2).

``open_db()`` connects to ``REASONBRAIN_DB_URL`` (default: SQLite under ``.reasonbrain/``) and
brings the schema to the newest Alembic revision before returning (``auto_upgrade=True``); the
same is available explicitly as ``reasonbrain registry db upgrade``. Concurrent first opens are
serialised (a PostgreSQL advisory lock; a lock file beside a SQLite database), so two processes
never both create the tables.

URLs are printed with :func:`safe_url` only: passwords never reach logs or error messages.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from reasonbrain.errors import RegistryError

log = logging.getLogger("reasonbrain.registry")
MIGRATIONS = "reasonbrain.registry:migrations"
_PG_LOCK_KEY = 0x52425247  # "RBRG": advisory-lock id for migrations


def safe_url(url: str) -> str:
    """The URL with its password masked (``***``), for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def _scrub(message: str, url: str) -> str:
    try:
        pw = make_url(url).password
    except ArgumentError:
        pw = None
    first = message.strip().splitlines()[0] if message.strip() else ""
    return first.replace(str(pw), "***") if pw else first


def _sqlite_path(url: str) -> Path | None:
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


def make_engine(url: str) -> Engine:
    """An engine for ``url``: SQLite gets WAL, foreign keys and a 30 s busy timeout.

    Raises:
        RegistryError: the URL is malformed or names a driver that is not installed.
    """
    try:
        parsed = make_url(url)
        path = _sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": 30})

            @event.listens_for(engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA busy_timeout=30000")
                cur.close()

            return engine
        if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")  # psycopg 3, not psycopg2
        return create_engine(parsed, pool_pre_ping=True)
    except (ArgumentError, ImportError) as err:
        raise RegistryError(
            f"cannot use database URL: {type(err).__name__}",
            where=safe_url(url),
            fix="set REASONBRAIN_DB_URL to sqlite:///path.db or postgresql+psycopg://user@host/db",
        ) from None


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at the migrations shipped inside the package."""
    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS)
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@functools.cache
def head_revision() -> str | None:
    """The newest migration revision (read once per process)."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (``None`` when empty)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    path = _sqlite_path(str(engine.url))
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                conn.commit()
    elif path is not None:
        with open(path.with_name(path.name + ".migrate.lock"), "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
    else:
        yield


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the schema up to ``revision`` (idempotent; serialised across processes)."""
    with _migration_lock(engine), engine.begin() as conn:
        command.upgrade(alembic_config(conn), revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    """Migrate the schema down to ``revision`` (``base`` drops every table)."""
    with _migration_lock(engine), engine.begin() as conn:
        command.downgrade(alembic_config(conn), revision)


@dataclass
class Database:
    """An engine plus a session factory.

    Attributes:
        engine: the SQLAlchemy engine.
        sessions: ``sessions()`` opens an ORM session (use ``with``).
    """

    engine: Engine
    sessions: sessionmaker[Session]

    @property
    def url(self) -> str:
        """The URL, password masked."""
        return safe_url(self.engine.url.render_as_string(hide_password=False))

    def dispose(self) -> None:
        """Close pooled connections."""
        self.engine.dispose()


@contextlib.contextmanager
def connection_errors(url: str) -> Iterator[None]:
    """Turn "cannot connect" errors into a :class:`RegistryError` (password masked)."""
    try:
        yield
    except OperationalError as err:
        raise RegistryError(
            f"cannot open the metadata database: {_scrub(str(err.orig or err), url)}",
            where=safe_url(url),
            fix="check that the server is running and REASONBRAIN_DB_URL is right",
        ) from None


def open_db(url: str | None = None, *, auto_upgrade: bool = True) -> Database:
    """Connect to the metadata database and (by default) migrate it to the newest schema.

    Args:
        url: SQLAlchemy URL; ``None`` reads ``REASONBRAIN_DB_URL`` (default SQLite under home).
        auto_upgrade: run ``alembic upgrade head`` when the schema is behind.

    Raises:
        RegistryError: the database cannot be reached, or its schema is behind and
            ``auto_upgrade`` is false.
    """
    from reasonbrain.config import get_settings

    url = url or get_settings().resolved_db_url()
    engine = make_engine(url)
    try:
        with connection_errors(url):
            head = head_revision()
            if current_revision(engine) != head:
                if not auto_upgrade:
                    raise RegistryError(
                        "database schema is not up to date",
                        where=safe_url(url),
                        fix="run `reasonbrain registry db upgrade`",
                    )
                log.info("migrating %s to %s", safe_url(url), head)
                upgrade(engine)
    except BaseException:
        engine.dispose()
        raise
    return Database(engine, sessionmaker(engine, expire_on_commit=False))
