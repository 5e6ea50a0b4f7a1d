"""``registry gc``: delete what failed registrations left behind — and nothing else.

The store is listed and grouped by version root (``models/<name>/<uid>``, see
:mod:`~reasonbrain.registry.layout`); each root is then one of:

- **committed** — the database has a version with this store key: kept. A missing commit marker
  is rewritten from the row, a stale in-flight marker removed, missing files reported.
- **committed elsewhere** — no row, but a commit marker: the store holds a version this database
  does not know. ``gc`` refuses to run at all (the store and the database do not belong together:
  another project's database, an empty one, a wrong ``REASONBRAIN_DB_URL``).
- **in flight** — no row, and an in-flight marker younger than ``in_flight_grace_s``: a
  registration is still uploading (its heartbeat keeps the marker fresh). Kept, whatever
  ``min_age_s`` says.
- **recent** — no row, and some object younger than ``min_age_s``: kept.
- **orphan** — none of the above: deleted, after a last look (a fresh database query for the
  key, a fresh listing of the root) right before the delete.

It also refuses when the database names versions but none of them is in this store while the
store holds roots it would delete (a store that belongs to another database, or the wrong
``REASONBRAIN_STORE_URI``). Roots are matched by store-relative keys, never by absolute URIs, so
moving the project directory or renaming the bucket's prefix changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select

from reasonbrain.errors import RegistryError, StoreError
from reasonbrain.registry.db import Database
from reasonbrain.registry.layout import (
    FILES,
    MODELS,
    VersionLayout,
    layout_of,
    legacy_key,
    parse_manifest,
    root_of,
)
from reasonbrain.registry.store import ObjectInfo, ObjectStore, join_key
from reasonbrain.registry.tables import ModelVersion

log = logging.getLogger("reasonbrain.registry")


@dataclass
class GcReport:
    """What ``gc`` found and did.

    Attributes:
        orphans: version roots that no version names and that were removed (or would be).
        objects_deleted: objects deleted.
        manifests_repaired: committed versions whose commit marker was rewritten.
        kept_recent: orphan roots younger than ``min_age_s`` (left alone).
        kept_in_flight: roots of registrations still running (fresh in-flight marker).
        markers_cleared: committed versions whose stale in-flight marker was removed.
        missing: committed versions with files missing from the store (reported, never fixed).
        failed: roots whose deletion failed, with the reason.
    """

    orphans: list[str] = field(default_factory=list)
    objects_deleted: int = 0
    manifests_repaired: list[str] = field(default_factory=list)
    kept_recent: list[str] = field(default_factory=list)
    kept_in_flight: list[str] = field(default_factory=list)
    markers_cleared: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def version_layout(mv: ModelVersion) -> VersionLayout:
    """The layout of a committed version (its ``store_key``; pre-0003 rows: from the URI).

    Raises:
        RegistryError: the row names no valid key.
    """
    key = mv.store_key or legacy_key(mv.store_uri)
    if key is None:
        raise RegistryError(
            "version has no store key",
            where=f"{mv.ref} at {mv.store_uri}",
            fix="the row predates store keys and its URI has no models/NAME/<uid> tail; "
            "register the model again",
        )
    return layout_of(key, where=mv.ref)


def _committed_by_root(db: Database) -> dict[str, tuple[ModelVersion, VersionLayout]]:
    out: dict[str, tuple[ModelVersion, VersionLayout]] = {}
    with db.sessions() as s:
        for mv in s.scalars(select(ModelVersion)):
            try:
                layout = version_layout(mv)
            except RegistryError as err:
                log.warning("gc: skipping %s: %s", mv.ref, err)
                continue
            out[layout.root] = (mv, layout)
    return out


def _is_committed_elsewhere(store: ObjectStore, root: str, keys: set[str]) -> str | None:
    """``NAME@VERSION`` of a commit marker under ``root`` (``None`` when there is none)."""
    for layout in (VersionLayout(root), VersionLayout(root, legacy=True)):
        if layout.manifest_key in keys:
            try:
                doc = parse_manifest(store.get_bytes(layout.manifest_key))
            except StoreError:
                doc = None
            if doc is not None:
                return f"{doc['name']}@{doc['version']}"
            if not layout.legacy:  # the current layout's marker cannot be a model's file
                return "unreadable manifest"
    return None


def _row_exists(db: Database, root: str) -> bool:
    keys = [root, join_key(root, FILES)]
    with db.sessions() as s:
        q = select(ModelVersion.id).where(
            or_(ModelVersion.store_key.in_(keys), ModelVersion.store_uri.endswith("/" + root))
        )
        return s.scalars(q.limit(1)).first() is not None


def collect_garbage(
    store: ObjectStore,
    db: Database,
    write_manifest: Callable[[ModelVersion], None],
    *,
    min_age_s: float,
    in_flight_grace_s: float,
    dry_run: bool,
) -> GcReport:
    """Run ``gc`` (see the module docstring).

    Args:
        store: the object store.
        db: the metadata database.
        write_manifest: ``callable(ModelVersion)`` that rewrites a version's commit marker.
        min_age_s: leave orphan roots with an object younger than this alone.
        in_flight_grace_s: leave roots whose in-flight marker is younger than this alone.
        dry_run: report without deleting or writing.

    Raises:
        RegistryError: the store and the database do not belong together (nothing is deleted).
    """
    report = GcReport()
    by_root: dict[str, list[ObjectInfo]] = {}
    for obj in store.list_objects(MODELS + "/"):
        root = root_of(obj.key)
        if root is not None:
            by_root.setdefault(root, []).append(obj)
    committed = _committed_by_root(db)
    now = datetime.now(UTC)
    elsewhere: list[str] = []
    candidates: list[str] = []
    for root, objs in sorted(by_root.items()):
        keys = {o.key for o in objs}
        staging = VersionLayout(root).staging_key
        if root in committed:
            mv, layout = committed[root]
            _repair(mv, layout, keys, report, write_manifest, dry_run)
            if staging in keys and _age(objs, staging, now) > in_flight_grace_s:
                report.markers_cleared.append(mv.ref)
                if not dry_run:
                    store.delete([staging])
            missing = [e["path"] for e in mv.files if layout.file_key(str(e["path"])) not in keys]
            if missing:
                report.missing.append(f"{mv.ref} ({len(missing)} file(s), e.g. {missing[0]})")
            continue
        owner = _is_committed_elsewhere(store, root, keys)
        if owner is not None:
            elsewhere.append(f"{owner} at {root}")
        elif staging in keys and _age(objs, staging, now) < in_flight_grace_s:
            report.kept_in_flight.append(root)
        elif max(o.modified for o in objs) > now - timedelta(seconds=min_age_s):
            report.kept_recent.append(root)
        else:
            candidates.append(root)
    absent = sorted(mv.ref for root, (mv, _) in committed.items() if root not in by_root)
    report.missing += [f"{ref} (no files in this store)" for ref in absent]
    _refuse_mismatch(store, elsewhere, committed, absent, candidates)
    for root in candidates:
        report.orphans.append(root)
        if not dry_run:
            _delete_orphan(store, db, root, report, min_age_s, in_flight_grace_s)
    return report


def _age(objs: Sequence[ObjectInfo], key: str, now: datetime) -> float:
    return min((now - o.modified).total_seconds() for o in objs if o.key == key)


def _repair(
    mv: ModelVersion,
    layout: VersionLayout,
    keys: set[str],
    report: GcReport,
    write_manifest: Callable[[ModelVersion], None],
    dry_run: bool,
) -> None:
    if layout.manifest_key in keys:
        return
    if layout.legacy and any(str(e["path"]) == "manifest.json" for e in mv.files):
        return  # an old-layout model's own manifest.json sits where the marker would go
    report.manifests_repaired.append(mv.ref)
    if not dry_run:
        write_manifest(mv)


def _refuse_mismatch(
    store: ObjectStore,
    elsewhere: list[str],
    committed: dict[str, tuple[ModelVersion, VersionLayout]],
    absent: list[str],
    candidates: list[str],
) -> None:
    if elsewhere:
        raise RegistryError(
            f"the object store holds {len(elsewhere)} committed version(s) this database does not "
            f"know (e.g. {elsewhere[0]}): the store and the database do not belong together; "
            "nothing was deleted",
            where=f"{store.uri} with this REASONBRAIN_DB_URL",
            fix="point REASONBRAIN_DB_URL at the database of this store (or "
            "REASONBRAIN_STORE_URI at the store of this database)",
        )
    if committed and len(absent) == len(committed) and candidates:
        raise RegistryError(
            f"none of the {len(committed)} version(s) this database names is in this object "
            f"store, which holds {len(candidates)} other root(s): the store and the database do "
            "not belong together; nothing was deleted",
            where=f"{store.uri} with this REASONBRAIN_DB_URL",
            fix="point REASONBRAIN_STORE_URI at the store of this database",
        )


def _delete_orphan(
    store: ObjectStore,
    db: Database,
    root: str,
    report: GcReport,
    min_age_s: float,
    grace: float,
) -> None:
    """Delete one orphan root after a last look at the database and the store."""
    if _row_exists(db, root):  # committed since the listing
        report.orphans.remove(root)
        return
    objs = list(store.list_objects(root + "/"))
    keys = {o.key for o in objs}
    now = datetime.now(UTC)
    staging = VersionLayout(root).staging_key
    fresh_marker = staging in keys and _age(objs, staging, now) < grace
    fresh = any(o.modified > now - timedelta(seconds=min_age_s) for o in objs)
    if fresh_marker or fresh or _is_committed_elsewhere(store, root, keys) is not None:
        report.orphans.remove(root)
        return
    try:
        store.delete(sorted(keys))
    except StoreError as err:
        report.failed.append(f"{root}: {err.what}")
        return
    report.objects_deleted += len(keys)
