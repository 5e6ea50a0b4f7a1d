"""The model registry: register, list, show, promote, pull, archive, gc (issue 6, part 3).

Artefacts live in the object store, metadata in the SQL database; where each version's bytes and
the registry's own records sit in the store is :mod:`~reasonbrain.registry.layout`. Registration
is all-or-nothing:

1. **announce** — an in-flight marker is written under a fresh version root that no database row
   names yet and kept fresh by a heartbeat (:mod:`~reasonbrain.registry.staging`), so ``gc``
   sees the registration however long its uploads take;
2. **stage** — every file is hashed, uploaded under ``<root>/files/`` and verified on the bytes
   sent (see the stores);
3. **re-check** — right before the commit every staged object is looked up again (present, same
   size and sha256): a version is never committed over files that vanished meanwhile;
4. **commit** — one database transaction allocates the next version number and writes the
   ``model_versions`` row (and any aliases); from here on the version is visible;
5. **finalise** — the commit marker ``<root>/_registry/manifest.json`` is written and the
   in-flight marker removed (``gc`` repairs either, should this last step fail).

A failure before step 4 leaves nothing visible (the staged bytes are removed when possible, else
``gc`` removes them); a failure after it leaves a complete, pullable version. Version numbers are
unique per name (a UNIQUE constraint) and monotonic: a writer that loses the race to another
process retries with the next number, on SQLite and PostgreSQL alike. ``promote`` and ``archive``
lock the version row, so an alias never lands on a version being archived. Archived versions keep
their bytes and their numbers. Every path read back from the database is validated before
``pull``/``resolve`` write anything.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, selectinload

from reasonbrain.errors import RegistryError, StoreError
from reasonbrain.registry.checksums import (
    FileEntry,
    check_relpath,
    list_files,
    manifest_digest,
    sha256_file,
)
from reasonbrain.registry.db import Database, open_db
from reasonbrain.registry.gc import GcReport, collect_garbage, version_layout
from reasonbrain.registry.layout import MANIFEST, VersionLayout, manifest_doc, new_layout
from reasonbrain.registry.refs import ModelRef, check_alias, check_name, parse_ref
from reasonbrain.registry.staging import HEARTBEAT_S, IN_FLIGHT_GRACE_S, StagingMarker
from reasonbrain.registry.store import ObjectStore, open_store
from reasonbrain.registry.tables import ModelAlias, ModelVersion, Run, utcnow

log = logging.getLogger("reasonbrain.registry")
__all__ = [
    "MANIFEST",
    "GcReport",
    "Registry",
    "open_registry",
    "register_model",
    "resolve_model_ref",
]
_COMMIT_ATTEMPTS = 60
_FINALISE_ATTEMPTS = 3
_VERIFIED = ".verified.json"


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
        heartbeat_s: seconds between refreshes of a registration's in-flight marker.
    """

    def __init__(
        self, db: Database, store: ObjectStore, cache_dir: Path, *, heartbeat_s: float = HEARTBEAT_S
    ) -> None:
        self.db = db
        self.store = store
        self.cache_dir = Path(cache_dir)
        self.heartbeat_s = heartbeat_s

    def close(self) -> None:
        """Release database connections."""
        self.db.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ lookup
    def _query_ref(self, s: Session, ref: ModelRef, *, lock: bool = False) -> ModelVersion:
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
        if lock:  # PostgreSQL: held until commit; a concurrent promote/archive waits here
            q = q.with_for_update(of=ModelVersion)
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
        """Register a model directory as the next version of ``name`` (all or nothing; see the
        module docstring).

        Args:
            model_dir: a directory of files (config JSON, safetensors, tokenizer, model card).
            name: the model name.
            run_id: the run that produced it (must exist in ``runs``); its git commit, params
                hash and dataset are copied into the lineage.
            lineage: extra lineage facts (parent model, dataset version …).
            description: free text.
            aliases: aliases to point at the new version in the same transaction.

        Raises:
            RegistryError: bad name/alias, unknown run; StoreError: an upload failed, a file
            changed while it was uploaded, or a staged object vanished before the commit.
        """
        check_name(name)
        for a in aliases:
            check_alias(a)
        src = Path(model_dir)
        list_files(src)  # a clear error for a missing/empty directory before any upload
        lin = dict(lineage or {})
        if run_id is not None:
            lin.update(self._run_lineage(run_id))
        layout = new_layout(name)
        # 1. announce (in-flight marker + heartbeat); the marker goes when the block ends
        with StagingMarker(
            self.store, layout.staging_key, name=name, heartbeat_s=self.heartbeat_s
        ) as marker:
            try:
                # 2. stage: each file is hashed, uploaded, then verified on the bytes sent
                entries = self.store.put_tree(src, layout.files_prefix)
                # 3. re-check right before the commit
                marker.check_alive()
                self._check_staged(layout, entries)
            except BaseException:
                self._discard(layout)  # nothing was committed: the bytes can go now
                raise
            # 4. commit the row (the version becomes visible). A failure here is left to gc:
            # the commit may have reached the database even if the answer did not reach us.
            mv = self._commit_version(name, layout, entries, run_id, lin, description, aliases)
            # 5. finalise: the store-side record of the committed version
            self._finalise(mv)
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

    def _check_staged(self, layout: VersionLayout, entries: list[FileEntry]) -> None:
        """Every staged object is still there, with its size and sha256.

        Raises:
            StoreError: one is missing or differs (e.g. ``gc`` ran with a too short grace).
        """
        for e in entries:
            info = self.store.head(layout.file_key(e.path))
            if info is None or info.size != e.size or info.sha256 not in (None, e.sha256):
                raise StoreError(
                    f"staged file {e.path!r} "
                    + ("vanished" if info is None else "changed")
                    + " before the version was committed; nothing was committed",
                    where=self.store.uri_for(layout.file_key(e.path)),
                    fix="another process removed or rewrote it (gc with a short grace?); "
                    "register again",
                )

    def _discard(self, layout: VersionLayout) -> None:
        """Best effort: delete what a failed (uncommitted) registration staged."""
        try:
            keys = [
                o.key
                for o in self.store.list_objects(layout.root + "/")
                if o.key != layout.staging_key
            ]
            if keys:
                self.store.delete(keys)
        except Exception as err:  # gc removes it later
            log.warning("could not remove the staged files under %s: %s", layout.root, err)

    def _commit_version(
        self,
        name: str,
        layout: VersionLayout,
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
                        store_uri=self.store.uri_for(layout.files_prefix),
                        store_key=layout.files_prefix,
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

    def _finalise(self, mv: ModelVersion) -> None:
        for attempt in range(1, _FINALISE_ATTEMPTS + 1):
            try:
                self._write_manifest(mv)
                return
            except Exception as err:  # the version is complete and visible; gc repairs it
                if attempt == _FINALISE_ATTEMPTS:
                    log.warning("%s registered, manifest not written (%s); run gc", mv.ref, err)
                else:
                    time.sleep(0.05 * attempt)

    def _write_manifest(self, mv: ModelVersion) -> None:
        layout = self._layout(mv)
        doc = manifest_doc(
            name=mv.name,
            version=mv.version,
            sha256=mv.sha256,
            size_bytes=mv.size_bytes,
            files=mv.files,
            created_at=mv.created_at.isoformat(),
            lineage=mv.lineage,
            store_key=layout.files_prefix,
        )
        self.store.put_bytes(doc, layout.manifest_key)

    @staticmethod
    def _layout(mv: ModelVersion) -> VersionLayout:
        return version_layout(mv)

    def _key(self, mv: ModelVersion) -> str:
        """The store-relative prefix of a version's files (validated)."""
        return self._layout(mv).files_prefix

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

        Readers see either the old or the new target, never neither. The version row is locked
        (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite serialises writers), so a concurrent
        :meth:`archive` either finishes first — and this refuses — or waits for this to commit.

        Raises:
            RegistryError: unknown version, archived version, or a bad alias.
        """
        check_alias(alias)
        r = parse_ref(ref)
        for attempt in range(1, _COMMIT_ATTEMPTS + 1):
            try:
                with self.db.sessions.begin() as s:
                    mv = self._query_ref(s, r, lock=True)
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

    def archive(self, ref: str, *, force: bool = False) -> ModelVersion:
        """Mark a version archived (hidden from ``list`` and from bare ``NAME``; bytes kept).

        The version row is locked like in :meth:`promote`; the aliases it holds are read and
        dropped under that lock.

        Raises:
            RegistryError: the version holds aliases and ``force`` is false.
        """
        r = parse_ref(ref)
        for attempt in range(1, _COMMIT_ATTEMPTS + 1):
            try:
                with self.db.sessions.begin() as s:
                    mv = self._query_ref(s, r, lock=True)
                    held = sorted(
                        s.scalars(
                            select(ModelAlias.alias).where(ModelAlias.model_version_id == mv.id)
                        )
                    )
                    if held and not force:
                        raise RegistryError(
                            f"{mv.ref} holds alias(es) {', '.join(held)}",
                            where=mv.ref,
                            fix="promote another version first, or pass --force to drop the "
                            "aliases",
                        )
                    s.execute(delete(ModelAlias).where(ModelAlias.model_version_id == mv.id))
                    if mv.archived_at is None:
                        mv.archived_at = utcnow()
                    s.flush()
                    s.refresh(mv, ["aliases"])
                    return mv
            except (IntegrityError, OperationalError) as err:
                if not _is_version_race(err) or attempt == _COMMIT_ATTEMPTS:
                    raise
                time.sleep(random.uniform(0.005, 0.05))
        raise AssertionError("unreachable")  # pragma: no cover

    # -------------------------------------------------------------------- pull
    def pull(self, ref: str | ModelRef, out: Path | str, *, force: bool = False) -> ModelVersion:
        """Download a version into ``out``, verifying every file's sha256.

        ``out`` is written atomically: on any failure (including corrupted bytes or an unsafe
        path in the database row) it is left as it was, and nothing is written outside it.

        Raises:
            RegistryError: unknown ref, or ``out`` is a non-empty directory and not ``force``.
            StoreError: an object is missing, its bytes do not verify, or a recorded path is
                unsafe.
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

    def _entries(self, mv: ModelVersion) -> list[FileEntry]:
        """The version's manifest, every path validated (before anything is written)."""
        entries = [FileEntry.from_dict(d) for d in mv.files]
        for e in entries:
            check_relpath(e.path, where=mv.ref)
        return entries

    def _download(self, mv: ModelVersion, dest: Path) -> None:
        entries = self._entries(mv)
        prefix = self._key(mv)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.pull-", dir=dest.parent))
        try:
            self.store.get_dir(prefix, tmp, entries)
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
        check_name(mv.name)  # the name comes from the database: never a path
        return self.cache_dir / mv.name / f"v{int(mv.version)}-{mv.sha256[:16]}"

    def resolve(self, ref: str | ModelRef) -> Path:
        """A verified local directory holding the version ``ref`` names.

        A copy already in the cache is reused when it holds exactly the version's files and each
        file is unchanged since it was verified (same size, inode and modification/change
        times as recorded when its sha256 was checked; a file whose stat differs is hashed
        again); otherwise the version is pulled again.
        """
        mv = self.get(ref)
        path = self.cache_path(mv)
        entries = self._entries(mv)
        if _cached_ok(path, entries):
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        with _file_lock(path.with_name(path.name + ".lock")):
            if not _cached_ok(path, entries):
                self._download(mv, path)
                _write_stamp(path, entries)
        return path

    # ---------------------------------------------------------------------- gc
    def gc(
        self,
        *,
        min_age_s: float = 3600.0,
        in_flight_grace_s: float = IN_FLIGHT_GRACE_S,
        dry_run: bool = False,
    ) -> GcReport:
        """Delete store roots that no version names (failed registrations); repair markers.

        Never deletes a committed version (this database's or, by refusing to run, another
        one's) or a registration in flight; see :mod:`~reasonbrain.registry.gc`.

        Args:
            min_age_s: leave orphan roots with an object younger than this alone.
            in_flight_grace_s: leave roots whose in-flight marker is younger than this alone
                (registrations refresh it every ``heartbeat_s``).
            dry_run: report without deleting or writing.

        Raises:
            RegistryError: the store and the database do not belong together.
        """
        return collect_garbage(
            self.store,
            self.db,
            self._write_manifest,
            min_age_s=min_age_s,
            in_flight_grace_s=in_flight_grace_s,
            dry_run=dry_run,
        )


# --------------------------------------------------------------- local cache
def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + _VERIFIED)


def _stat_sig(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns]


def _write_stamp(path: Path, entries: list[FileEntry]) -> None:
    """Record each just-verified file's stat in a file beside the directory."""
    sigs = {e.path: _stat_sig(path / e.path) for e in entries}
    stamp = _stamp_path(path)
    tmp = stamp.with_name(f".{stamp.name}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(sigs))
    os.replace(tmp, stamp)


def _cached_ok(path: Path, entries: list[FileEntry]) -> bool:
    """True when ``path`` holds exactly ``entries``, each verified and unchanged since."""
    if not path.is_dir():
        return False
    try:
        sigs = json.loads(_stamp_path(path).read_text())
    except (OSError, ValueError):
        sigs = {}
    present = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}
    if present != {e.path for e in entries}:
        return False
    changed = False
    for e in entries:
        f = path / e.path
        if sigs.get(e.path) == _stat_sig(f):
            continue
        if f.stat().st_size != e.size or sha256_file(f) != e.sha256:
            return False
        sigs[e.path] = _stat_sig(f)
        changed = True
    if changed:
        _write_stamp(path, entries)
    return True


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
