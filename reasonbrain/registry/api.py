"""The model registry: register, list, show, promote, pull, archive, gc (issue 6, part 3).

Artefacts live in the object store, metadata in the SQL database. Registration is atomic:

1. **stage** — every file goes to a fresh key ``models/NAME/<uid>/`` that no database row names
   yet, so nothing can see it;
2. **verify** — each stored object's size and sha256 are checked against the local manifest;
3. **commit** — one database transaction allocates the next version number and writes the
   ``model_versions`` row (and any aliases); from here on the version is visible;
4. **finalise** — ``manifest.json`` is written under the key, marking it committed in the store
   itself (``gc`` rewrites it from the database should this last step have failed).

A failure before step 3 leaves bytes that no row names: ``gc`` deletes such orphans once they are
older than a grace period (so it never races a registration in flight). Version numbers are unique
per name (a UNIQUE constraint) and monotonic: a writer that loses the race to another process
retries with the next number, on SQLite and PostgreSQL alike. Archived versions keep their bytes
and their numbers.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, selectinload

from reasonbrain.errors import RegistryError
from reasonbrain.registry.checksums import FileEntry, list_files, manifest_digest
from reasonbrain.registry.db import Database, open_db
from reasonbrain.registry.refs import ModelRef, check_alias, check_name, parse_ref
from reasonbrain.registry.store import ObjectStore, join_key, open_store
from reasonbrain.registry.tables import ModelAlias, ModelVersion, Run, utcnow

log = logging.getLogger("reasonbrain.registry")
MODELS = "models"
MANIFEST = "manifest.json"
_COMMIT_ATTEMPTS = 60


@dataclass
class GcReport:
    """What ``gc`` found and did.

    Attributes:
        orphans: store keys (prefixes) that no version names and that were removed (or would be).
        objects_deleted: objects deleted.
        manifests_repaired: committed versions whose ``manifest.json`` was rewritten.
        kept_recent: orphan prefixes younger than the grace period (left alone).
    """

    orphans: list[str] = field(default_factory=list)
    objects_deleted: int = 0
    manifests_repaired: list[str] = field(default_factory=list)
    kept_recent: list[str] = field(default_factory=list)


def _is_version_race(err: Exception) -> bool:
    """True for the errors a concurrent writer causes (retry), false for anything else."""
    msg = str(getattr(err, "orig", err)).lower()
    if isinstance(err, IntegrityError):
        return "name_version" in msg or "unique" in msg or "pk_model_aliases" in msg
    return isinstance(err, OperationalError) and ("locked" in msg or "busy" in msg)


class Registry:
    """A model registry over one database and one object store.

    Args:
        db: the metadata database (see :func:`~reasonbrain.registry.db.open_db`).
        store: the object store (see :func:`~reasonbrain.registry.store.open_store`).
        cache_dir: where :meth:`resolve` keeps verified local copies.
    """

    def __init__(self, db: Database, store: ObjectStore, cache_dir: Path) -> None:
        self.db = db
        self.store = store
        self.cache_dir = Path(cache_dir)

    def close(self) -> None:
        """Release database connections."""
        self.db.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ lookup
    def _query_ref(self, s: Session, ref: ModelRef) -> ModelVersion:
        q = select(ModelVersion).options(selectinload(ModelVersion.aliases))
        if ref.alias is not None:
            q = q.join(ModelAlias).where(ModelAlias.name == ref.name, ModelAlias.alias == ref.alias)
        elif ref.version is not None:
            q = q.where(ModelVersion.name == ref.name, ModelVersion.version == ref.version)
        else:
            q = (
                q.where(ModelVersion.name == ref.name, ModelVersion.archived_at.is_(None))
                .order_by(ModelVersion.version.desc())
                .limit(1)
            )
        mv = s.scalars(q).first()
        if mv is None:
            known = s.scalar(select(func.count()).where(ModelVersion.name == ref.name))
            what = "no such model" if not known else f"model {ref.name!r} has no {ref}"
            raise RegistryError(
                what,
                where=str(ref),
                fix="see `reasonbrain registry list`"
                + (f" and `show {ref.name}`" if known else ""),
            )
        return mv

    def get(self, ref: str | ModelRef) -> ModelVersion:
        """The version a reference names (``NAME`` = newest not archived).

        Raises:
            RegistryError: malformed reference, unknown name, version or alias.
        """
        r = parse_ref(ref) if isinstance(ref, str) else ref
        with self.db.sessions() as s:
            return self._query_ref(s, r)

    def list_versions(
        self, name: str | None = None, *, include_archived: bool = False
    ) -> list[ModelVersion]:
        """Versions (newest first within a name), with their aliases loaded."""
        q = select(ModelVersion).options(selectinload(ModelVersion.aliases))
        if name is not None:
            q = q.where(ModelVersion.name == name)
        if not include_archived:
            q = q.where(ModelVersion.archived_at.is_(None))
        q = q.order_by(ModelVersion.name, ModelVersion.version.desc())
        with self.db.sessions() as s:
            return list(s.scalars(q))

    # ---------------------------------------------------------------- register
    def register(
        self,
        model_dir: Path | str,
        name: str,
        *,
        run_id: str | None = None,
        lineage: dict[str, Any] | None = None,
        description: str | None = None,
        aliases: Sequence[str] = (),
    ) -> ModelVersion:
        """Register a model directory as the next version of ``name`` (atomically).

        Args:
            model_dir: a directory of files (config JSON, safetensors, tokenizer, model card).
            name: the model name.
            run_id: the run that produced it (must exist in ``runs``); its git commit, params
                hash and dataset are copied into the lineage.
            lineage: extra lineage facts (parent model, dataset version …).
            description: free text.
            aliases: aliases to point at the new version in the same transaction.

        Raises:
            RegistryError: bad name/alias, unknown run; StoreError: the upload failed.
        """
        check_name(name)
        for a in aliases:
            check_alias(a)
        src = Path(model_dir)
        list_files(src)  # a clear error for a missing/empty directory before any upload
        lin = dict(lineage or {})
        if run_id is not None:
            lin.update(self._run_lineage(run_id))
        key = join_key(MODELS, name, uuid.uuid4().hex)
        # 1-2. stage under an unreferenced key; each file is hashed, uploaded, then verified
        entries = self.store.put_tree(src, key)
        # 3. commit the row (the version becomes visible)
        mv = self._commit_version(name, key, entries, run_id, lin, description, aliases)
        # 4. finalise: the store-side record of the committed version
        try:
            self._write_manifest(mv)
        except Exception as err:  # the version is complete and visible; gc repairs the marker
            log.warning("%s registered but manifest not written (%s); run gc", mv.ref, err)
        log.info("registered %s (%d files, %d bytes)", mv.ref, len(entries), mv.size_bytes)
        return mv

    def _run_lineage(self, run_id: str) -> dict[str, Any]:
        with self.db.sessions() as s:
            run = s.get(Run, run_id)
            if run is None:
                raise RegistryError(
                    f"unknown run {run_id!r}", where="--run", fix="pass the id of a recorded run"
                )
            return {
                "run_id": run.id,
                "run_kind": run.kind,
                "git_commit": run.git_commit,
                "params_hash": run.params_hash,
                "dataset": (
                    f"{run.dataset.name}@{run.dataset.version}" if run.dataset is not None else None
                ),
            }

    def _commit_version(
        self,
        name: str,
        key: str,
        entries: list[FileEntry],
        run_id: str | None,
        lineage: dict[str, Any],
        description: str | None,
        aliases: Sequence[str],
    ) -> ModelVersion:
        for attempt in range(1, _COMMIT_ATTEMPTS + 1):
            try:
                with self.db.sessions.begin() as s:
                    latest = s.scalar(
                        select(func.max(ModelVersion.version)).where(ModelVersion.name == name)
                    )
                    mv = ModelVersion(
                        name=name,
                        version=(latest or 0) + 1,
                        store_uri=self.store.uri_for(key),
                        sha256=manifest_digest(entries),
                        size_bytes=sum(e.size for e in entries),
                        files=[e.to_dict() for e in entries],
                        created_at=utcnow(),
                        run_id=run_id,
                        lineage=lineage,
                        description=description,
                    )
                    s.add(mv)
                    s.flush()
                    for a in aliases:
                        self._set_alias(s, mv, a)
                    mv.aliases  # noqa: B018 — load before the session closes
                return mv
            except (IntegrityError, OperationalError) as err:
                if not _is_version_race(err) or attempt == _COMMIT_ATTEMPTS:
                    raise
                time.sleep(random.uniform(0.005, 0.05) * min(attempt, 10))
        raise AssertionError("unreachable")  # pragma: no cover

    def _write_manifest(self, mv: ModelVersion) -> None:
        doc = {
            "name": mv.name,
            "version": mv.version,
            "sha256": mv.sha256,
            "size_bytes": mv.size_bytes,
            "files": mv.files,
            "created_at": mv.created_at.isoformat(),
            "lineage": mv.lineage,
        }
        self.store.put_bytes(json.dumps(doc, indent=1).encode(), join_key(self._key(mv), MANIFEST))

    def _key(self, mv: ModelVersion) -> str:
        root = self.store.uri_for("")
        if not mv.store_uri.startswith(root):
            raise RegistryError(
                "version lives in another object store",
                where=f"{mv.ref} at {mv.store_uri}",
                fix=f"set REASONBRAIN_STORE_URI to the store that holds it (now {self.store.uri})",
            )
        return mv.store_uri[len(root) :].strip("/")

    # ----------------------------------------------------------------- aliases
    @staticmethod
    def _set_alias(s: Session, mv: ModelVersion, alias: str) -> None:
        row = s.scalars(
            select(ModelAlias)
            .where(ModelAlias.name == mv.name, ModelAlias.alias == alias)
            .with_for_update()
        ).first()
        if row is None:
            s.add(
                ModelAlias(name=mv.name, alias=alias, model_version_id=mv.id, updated_at=utcnow())
            )
        else:
            row.model_version_id = mv.id
            row.updated_at = utcnow()
        s.flush()

    def promote(self, ref: str, alias: str) -> ModelVersion:
        """Point ``alias`` at the version ``ref`` names, in one transaction.

        Readers see either the old or the new target, never neither.

        Raises:
            RegistryError: unknown version, archived version, or a bad alias.
        """
        check_alias(alias)
        r = parse_ref(ref)
        for attempt in range(1, _COMMIT_ATTEMPTS + 1):
            try:
                with self.db.sessions.begin() as s:
                    mv = self._query_ref(s, r)
                    if mv.archived_at is not None:
                        raise RegistryError(
                            "cannot promote an archived version",
                            where=mv.ref,
                            fix="promote a version that is not archived",
                        )
                    self._set_alias(s, mv, alias)
                    s.refresh(mv, ["aliases"])
                return mv
            except (IntegrityError, OperationalError) as err:
                if not _is_version_race(err) or attempt == _COMMIT_ATTEMPTS:
                    raise
                time.sleep(random.uniform(0.005, 0.05))
        raise AssertionError("unreachable")  # pragma: no cover

    def archive(self, ref: str, *, force: bool = False) -> ModelVersion:
        """Mark a version archived (hidden from ``list`` and from bare ``NAME``; bytes kept).

        Raises:
            RegistryError: the version holds aliases and ``force`` is false.
        """
        r = parse_ref(ref)
        with self.db.sessions.begin() as s:
            mv = self._query_ref(s, r)
            held = sorted(a.alias for a in mv.aliases)
            if held and not force:
                raise RegistryError(
                    f"{mv.ref} holds alias(es) {', '.join(held)}",
                    where=mv.ref,
                    fix="promote another version first, or pass --force to drop the aliases",
                )
            for a in list(mv.aliases):
                s.delete(a)
            if mv.archived_at is None:
                mv.archived_at = utcnow()
            s.flush()
            s.refresh(mv, ["aliases"])
            return mv

    # -------------------------------------------------------------------- pull
    def pull(self, ref: str | ModelRef, out: Path | str, *, force: bool = False) -> ModelVersion:
        """Download a version into ``out``, verifying every file's sha256.

        ``out`` is written atomically: on any failure (including corrupted bytes) it is left as
        it was.

        Raises:
            RegistryError: unknown ref, or ``out`` is a non-empty directory and not ``force``.
            StoreError: an object is missing or its bytes do not verify.
        """
        mv = self.get(ref)
        dest = Path(out)
        if dest.exists() and (not dest.is_dir() or (any(dest.iterdir()) and not force)):
            raise RegistryError(
                "output path exists and is not an empty directory",
                where=str(dest),
                fix="choose another --out or pass --force to replace it",
            )
        self._download(mv, dest)
        return mv

    def _download(self, mv: ModelVersion, dest: Path) -> None:
        entries = [FileEntry.from_dict(d) for d in mv.files]
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.pull-", dir=dest.parent))
        try:
            self.store.get_dir(self._key(mv), tmp, entries)
            if dest.exists():
                old = dest.with_name(f".{dest.name}.old-{uuid.uuid4().hex[:8]}")
                dest.rename(old)
                shutil.rmtree(old, ignore_errors=True)
            tmp.rename(dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def cache_path(self, mv: ModelVersion) -> Path:
        """Where :meth:`resolve` keeps ``mv`` (the digest in the name: a new upload never reuses
        an old copy)."""
        return self.cache_dir / mv.name / f"v{mv.version}-{mv.sha256[:16]}"

    def resolve(self, ref: str | ModelRef) -> Path:
        """A verified local directory holding the version ``ref`` names.

        A copy already in the cache is reused when every file is present with its recorded
        size (it was sha256-verified when it was downloaded); otherwise it is pulled again.
        """
        mv = self.get(ref)
        path = self.cache_path(mv)
        if self._cached_ok(mv, path):
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        with _file_lock(path.with_name(path.name + ".lock")):
            if not self._cached_ok(mv, path):
                self._download(mv, path)
        return path

    @staticmethod
    def _cached_ok(mv: ModelVersion, path: Path) -> bool:
        if not path.is_dir():
            return False
        for d in mv.files:
            f = path / d["path"]
            if not f.is_file() or f.stat().st_size != int(d["size"]):
                return False
        return True

    # ---------------------------------------------------------------------- gc
    def gc(self, *, min_age_s: float = 3600.0, dry_run: bool = False) -> GcReport:
        """Delete store keys that no version names (failed registrations); repair manifests.

        Args:
            min_age_s: leave orphans younger than this alone (a registration may be in flight).
            dry_run: report without deleting or writing.
        """
        report = GcReport()
        with self.db.sessions() as s:
            known = {uri: mv for mv in s.scalars(select(ModelVersion)) for uri in [mv.store_uri]}
        by_prefix: dict[str, list[Any]] = {}
        for obj in self.store.list_objects(MODELS + "/"):
            parts = obj.key.split("/")
            if len(parts) < 4:
                continue
            by_prefix.setdefault("/".join(parts[:3]), []).append(obj)
        cutoff = datetime.now(UTC) - timedelta(seconds=min_age_s)
        for prefix, objs in sorted(by_prefix.items()):
            mv = known.get(self.store.uri_for(prefix))
            if mv is not None:
                if not any(o.key.endswith("/" + MANIFEST) for o in objs):
                    report.manifests_repaired.append(mv.ref)
                    if not dry_run:
                        self._write_manifest(mv)
                continue
            if max(o.modified for o in objs) > cutoff:
                report.kept_recent.append(prefix)
                continue
            report.orphans.append(prefix)
            if not dry_run:
                self.store.delete([o.key for o in objs])
                report.objects_deleted += len(objs)
        return report

    # ------------------------------------------------------------------ demote
    def demote(self, name: str, alias: str) -> ModelVersion:
        """Remove ``alias`` from model ``name``; the version it named stays registered.

        Returns the version that held the alias (its aliases reloaded, without this one).

        Raises:
            RegistryError: bad name or alias, or ``name`` has no such alias.
        """
        check_name(name)
        check_alias(alias)
        for attempt in range(1, _COMMIT_ATTEMPTS + 1):
            try:
                with self.db.sessions.begin() as s:
                    row = s.scalars(
                        select(ModelAlias)
                        .where(ModelAlias.name == name, ModelAlias.alias == alias)
                        .with_for_update()
                    ).first()
                    if row is None:
                        held = sorted(
                            s.scalars(select(ModelAlias.alias).where(ModelAlias.name == name))
                        )
                        raise RegistryError(
                            f"model {name!r} has no alias {alias!r}",
                            where=f"{name}@{alias}",
                            fix=f"its aliases: {', '.join(held)}"
                            if held
                            else "see `reasonbrain registry list`",
                        )
                    mv = s.get(ModelVersion, row.model_version_id)
                    assert mv is not None  # FK, ON DELETE CASCADE
                    s.delete(row)
                    s.flush()
                    s.refresh(mv, ["aliases"])
                return mv
            except (IntegrityError, OperationalError) as err:
                if not _is_version_race(err) or attempt == _COMMIT_ATTEMPTS:
                    raise
                time.sleep(random.uniform(0.005, 0.05))
        raise AssertionError("unreachable")  # pragma: no cover


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# ----------------------------------------------------------------- module API
def open_registry(
    *, store_uri: str | None = None, db_url: str | None = None, auto_upgrade: bool = True
) -> Registry:
    """The registry configured by settings (``REASONBRAIN_STORE_URI``, ``REASONBRAIN_DB_URL``)."""
    from reasonbrain.config import get_settings

    settings = get_settings()
    store = open_store(store_uri, settings=settings)
    db = open_db(db_url or settings.resolved_db_url(), auto_upgrade=auto_upgrade)
    return Registry(db, store, settings.home.resolve() / "cache" / "models")


def register_model(
    model_dir: Path | str,
    name: str,
    run_id: str | None = None,
    *,
    lineage: dict[str, Any] | None = None,
    description: str | None = None,
    aliases: Sequence[str] = (),
) -> ModelVersion:
    """Register ``model_dir`` as the next version of ``name`` (see :meth:`Registry.register`)."""
    with open_registry() as reg:
        return reg.register(
            model_dir,
            name,
            run_id=run_id,
            lineage=lineage,
            description=description,
            aliases=aliases,
        )


def resolve_model_ref(ref: str) -> Path:
    """A local, sha256-verified directory for ``registry://NAME@VERSION|@ALIAS`` (cached under
    ``<home>/cache/models``). ``from_pretrained`` calls this for ``registry://`` references.

    Raises:
        RegistryError: malformed or unknown reference; StoreError: bytes missing or corrupted.
    """
    with open_registry() as reg:
        return reg.resolve(ref)
