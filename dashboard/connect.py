"""Opening the metadata database and the object store for the dashboard.

The dashboard reads what the pipeline recorded; it never creates or migrates a schema. A missing
SQLite file, an empty or outdated schema and an unreachable server each become a
:class:`SourceProblem` with what to run, which the app shows instead of a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import sessionmaker

from reasonbrain.config import get_settings
from reasonbrain.errors import ReasonBrainError
from reasonbrain.registry.db import (
    Database,
    connection_errors,
    current_revision,
    head_revision,
    make_engine,
    safe_url,
)
from reasonbrain.registry.store import ObjectStore, open_store

DEMO_HINT = "run `make demo` first (or `reasonbrain pipeline run`) to record a run"


@dataclass(frozen=True)
class Sources:
    """Where the dashboard reads from (URLs with passwords masked are safe to show)."""

    db_url: str
    store_uri: str

    @property
    def db_display(self) -> str:
        """The database URL with its password masked."""
        return safe_url(self.db_url)


class SourceProblem(Exception):
    """The database or store cannot be used yet; carries what to do about it.

    Args:
        kind: ``missing`` / ``empty`` / ``outdated`` / ``unreachable`` / ``invalid``.
        what: what is wrong.
        fix: what to run or set.
    """

    def __init__(self, kind: str, what: str, fix: str) -> None:
        super().__init__(what)
        self.kind = kind
        self.what = what
        self.fix = fix


def sources() -> Sources:
    """The database URL and store URI from ``REASONBRAIN_DB_URL`` / ``REASONBRAIN_STORE_URI``
    (embedded defaults under ``REASONBRAIN_HOME``)."""
    s = get_settings()
    return Sources(s.resolved_db_url(), s.resolved_store_uri())


def _sqlite_file(url: str) -> Path | None:
    try:
        u = make_url(url)
    except ArgumentError:
        return None  # make_engine reports it
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


def open_database(url: str) -> Database:
    """Connect without creating or migrating anything.

    Raises:
        SourceProblem: no SQLite file yet, no schema, an older schema, or no server.
    """
    path = _sqlite_file(url)
    if path is not None and not path.is_file():
        raise SourceProblem("missing", f"no metadata database yet at {path}", DEMO_HINT)
    try:
        engine = make_engine(url)
    except ReasonBrainError as err:
        raise SourceProblem("invalid", err.what, err.fix or "check REASONBRAIN_DB_URL") from None
    try:
        with connection_errors(url):
            rev = current_revision(engine)
    except ReasonBrainError as err:
        engine.dispose()
        raise SourceProblem("unreachable", err.what, err.fix or "") from None
    head = head_revision()
    if rev is None:
        engine.dispose()
        raise SourceProblem("empty", f"the database {safe_url(url)} has no tables", DEMO_HINT)
    if rev != head:
        engine.dispose()
        raise SourceProblem(
            "outdated",
            f"the database schema is at revision {rev}; this dashboard reads {head}",
            "run `reasonbrain registry db upgrade` "
            "(or update ReasonBrain if the database is newer)",
        )
    return Database(engine, sessionmaker(engine, expire_on_commit=False))


def open_object_store(uri: str) -> ObjectStore:
    """The object store at ``uri``.

    Raises:
        SourceProblem: an unsupported or malformed URI.
    """
    try:
        return open_store(uri)
    except ReasonBrainError as err:
        raise SourceProblem("invalid", err.one_line(), "check REASONBRAIN_STORE_URI") from None
