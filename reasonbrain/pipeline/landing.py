"""The landing zone: new data arrives as *drops*; each is imported, validated, then merged into the
DVC-tracked dataset or quarantined — once.

- **Where**: ``ingest.landing`` — a directory (relative to the project), ``file://…`` or
  ``s3://bucket/prefix``; every immediate sub-directory (prefix) is one drop. Names starting with
  ``.`` or ``_`` are ignored.
- **What**: a Reason50K-layout dataset (``train/val/test.jsonl`` + images) or any importer's
  source. A ``drop.json`` in the drop may say ``{"format": "magicbrush", "options": {…}}``;
  without it ``ingest.format`` / ``ingest.options`` apply.
- **When**: a drop is taken when it holds a ``_READY`` (or ``_SUCCESS``) file, or when nothing in
  it changed for ``ingest.settle_s`` seconds (so a drop still being uploaded is left alone).
- **Once**: a drop is identified by its URI and a fingerprint of its file listing (keys, sizes,
  modification times). Claiming inserts a ``landing_drops`` row (unique on both), so two runs never
  process the same drop; a changed drop has a new fingerprint and is processed again. A drop left
  ``processing`` by a crashed run for ``ingest.stale_after_s`` is taken again.
- **Merged**: the imported copy goes to ``data.ingested_dir/<drop>-<fingerprint>/`` and is tracked
  with ``dvc add``; stage ``data`` appends it to the dataset (:mod:`reasonbrain.data.merge`), so
  the next ``pipeline`` run trains on it.
- **Quarantined**: the drop stays where it is; its validation report (or the import error) goes to
  the object store under ``quarantine/<drop>-<fingerprint>/`` and into the row, and the flow
  sends a ``quarantine`` notification.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from reasonbrain.config import Params
from reasonbrain.data.schema import SPLITS, manifest_path, read_manifest
from reasonbrain.errors import ReasonBrainError
from reasonbrain.registry.api import Registry
from reasonbrain.registry.store import ObjectInfo, ObjectStore, join_key, open_store
from reasonbrain.registry.tables import LandingDrop, utcnow

MARKERS = frozenset({"_READY", "_SUCCESS"})
SPEC_FILE = "drop.json"
MERGED, QUARANTINED, FAILED, PROCESSING = "merged", "quarantined", "failed", "processing"


@dataclass(frozen=True)
class Drop:
    """One drop seen in the landing zone.

    Attributes:
        name: its directory name.
        uri: its URI (``file://…/landing/NAME`` or ``s3://…/NAME``).
        fingerprint: sha256 of its file listing.
        files: its objects (keys relative to the landing zone).
        newest: the latest modification time among them.
        marked: it holds a ``_READY``/``_SUCCESS`` file.
    """

    name: str
    uri: str
    fingerprint: str
    files: tuple[ObjectInfo, ...]
    newest: datetime
    marked: bool

    def ready(self, settle_s: float, now: datetime | None = None) -> bool:
        """Complete: marked ready, or unchanged for ``settle_s`` seconds."""
        now = now or datetime.now(UTC)
        return self.marked or (now - self.newest) >= timedelta(seconds=settle_s)

    @property
    def slug(self) -> str:
        """``<name>-<fingerprint[:12]>``, safe as a directory name."""
        clean = re.sub(r"[^A-Za-z0-9._-]+", "_", self.name).strip("._") or "drop"
        return f"{clean[:80]}-{self.fingerprint[:12]}"


@dataclass
class DropOutcome:
    """What happened to one drop (the flow's result lists these)."""

    name: str
    uri: str
    status: str
    records: int = 0
    message: str = ""
    quarantine_uri: str | None = None
    merged_dir: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return dict(self.__dict__)


def open_landing(landing: str, project_root: Path | str) -> ObjectStore:
    """The landing zone as an object store (a local directory is relative to the project)."""
    if "://" in landing:
        return open_store(landing)
    path = Path(landing)
    if not path.is_absolute():
        path = Path(project_root) / path
    return open_store(path.resolve().as_uri())


def scan(store: ObjectStore) -> list[Drop]:
    """Every drop in the landing zone (ready or not), in name order."""
    groups: dict[str, list[ObjectInfo]] = {}
    for obj in store.list_objects(""):
        head, sep, _ = obj.key.partition("/")
        if not sep or head.startswith((".", "_")):
            continue
        groups.setdefault(head, []).append(obj)
    drops = []
    for name, objs in sorted(groups.items()):
        objs.sort(key=lambda o: o.key)
        listing = "\n".join(f"{o.key}\t{o.size}\t{o.modified.isoformat()}" for o in objs)
        drops.append(
            Drop(
                name=name,
                uri=store.uri_for(name),
                fingerprint=hashlib.sha256(listing.encode()).hexdigest(),
                files=tuple(objs),
                newest=max(o.modified for o in objs),
                marked=any(o.key.rsplit("/", 1)[-1] in MARKERS for o in objs),
            )
        )
    return drops


def claim(
    registry: Registry, drop: Drop, *, run_id: str | None, stale_after_s: float
) -> int | None:
    """Take ``drop`` for processing: the id of its new ``landing_drops`` row, or ``None`` when it
    was processed already (or another run is processing it and is not stale)."""
    try:
        with registry.db.sessions.begin() as s:
            row = LandingDrop(
                uri=drop.uri,
                fingerprint=drop.fingerprint,
                status=PROCESSING,
                run_id=run_id,
                created_at=utcnow(),
            )
            s.add(row)
            s.flush()
            return int(row.id)
    except IntegrityError:
        pass
    with registry.db.sessions.begin() as s:
        row = s.scalars(
            select(LandingDrop)
            .where(LandingDrop.uri == drop.uri, LandingDrop.fingerprint == drop.fingerprint)
            .with_for_update()
        ).one()
        stale = utcnow() - row.created_at >= timedelta(seconds=stale_after_s)
        if row.status != PROCESSING or not stale:
            return None
        row.run_id, row.created_at, row.error = run_id, utcnow(), None  # a crashed run's drop
        return int(row.id)


def finish(registry: Registry, drop_id: int, outcome: DropOutcome, **fields: Any) -> None:
    """Record the outcome of a claimed drop."""
    with registry.db.sessions.begin() as s:
        row = s.get(LandingDrop, drop_id)
        if row is None:
            return
        row.status = outcome.status
        row.n_records = outcome.records
        row.quarantine_uri = outcome.quarantine_uri
        row.finished_at = utcnow()
        if outcome.status != MERGED:
            row.error = outcome.message
        for k, v in fields.items():
            setattr(row, k, v)


def set_dataset_version(registry: Registry, run_id: str, version: str | None) -> None:
    """Name the dataset version the drops merged by ``run_id`` produced."""
    with registry.db.sessions.begin() as s:
        for row in s.scalars(
            select(LandingDrop).where(LandingDrop.run_id == run_id, LandingDrop.status == MERGED)
        ):
            row.dataset_version = version


def fetch(store: ObjectStore, drop: Drop, dest: Path) -> Path:
    """Download the drop's files into ``dest`` (keys relative to the drop); returns ``dest``."""
    for obj in drop.files:
        rel = obj.key[len(drop.name) + 1 :]
        if not rel or rel.rsplit("/", 1)[-1] in MARKERS:
            continue
        target = (dest / rel).resolve()
        if dest.resolve() not in target.parents:
            raise ReasonBrainError("a drop file escapes the drop", where=obj.key)
        target.parent.mkdir(parents=True, exist_ok=True)
        store.get_file(obj.key, target)
    return dest


def drop_spec(local: Path, params: Params) -> tuple[str, dict[str, Any]]:
    """``(format, options)`` of a drop: its ``drop.json``, else ``ingest.format``/``options``.

    Raises:
        ReasonBrainError: ``drop.json`` is not a JSON object with a string ``format``.
    """
    spec_file = local / SPEC_FILE
    if not spec_file.is_file():
        return params.ingest.format, dict(params.ingest.options)
    try:
        spec = json.loads(spec_file.read_text(encoding="utf-8"))
    except ValueError:
        raise ReasonBrainError("drop.json is not valid JSON", where=str(spec_file)) from None
    fmt = spec.get("format", params.ingest.format) if isinstance(spec, dict) else None
    options = spec.get("options", {}) if isinstance(spec, dict) else None
    if not isinstance(fmt, str) or not isinstance(options, dict):
        raise ReasonBrainError(
            "drop.json must be an object with a string 'format' and an object 'options'",
            where=str(spec_file),
        )
    return fmt, options


def existing_ids(params: Params, project_root: Path) -> dict[str, str]:
    """Sample ids already in the dataset (``data.dir``) and in merged drops → where."""
    from reasonbrain.data.merge import ingested_drops

    roots = [project_root / params.data.dir]
    ingested = project_root / params.data.ingested_dir
    roots += ingested_drops(ingested) if ingested.is_dir() else []
    seen: dict[str, str] = {}
    for root in roots:
        for split in SPLITS:
            path = manifest_path(root, split)
            if path.is_file():
                for rec in read_manifest(path):
                    seen.setdefault(rec.id, str(path))
    return seen


def quarantine(
    store: ObjectStore, drop: Drop, report: dict[str, Any], extra: dict[str, Path] | None = None
) -> str:
    """Put the drop's report (and files such as ``rejected.jsonl``) under
    ``quarantine/<slug>/`` in ``store``; returns that prefix's URI."""
    prefix = join_key("quarantine", drop.slug)
    doc = {"drop": drop.uri, "fingerprint": drop.fingerprint, **report}
    store.put_bytes(
        json.dumps(doc, indent=2, default=str).encode(), join_key(prefix, "report.json")
    )
    for name, path in (extra or {}).items():
        if path.is_file():
            store.put_file(path, join_key(prefix, name))
    return store.uri_for(prefix)


def process_drop(
    registry: Registry,
    landing: ObjectStore,
    drop: Drop,
    params: Params,
    project_root: Path,
    *,
    dvc_add: Any,
) -> DropOutcome:
    """Import, validate, then merge (``dvc add``) or quarantine one claimed drop.

    Args:
        registry: the registry (its object store keeps quarantine reports).
        landing: the landing zone.
        drop: the drop.
        params: the project's params (``validate`` rules, ``data`` paths, ``ingest`` defaults).
        project_root: the DVC project.
        dvc_add: ``dvc_add(root, relative_path) -> md5`` (the flow passes DVC's).

    Raises:
        StoreError: the drop could not be downloaded (transient: the flow retries).
    """
    from reasonbrain.data.importers import import_dataset
    from reasonbrain.data.validation import validate_dataset

    tmp_root = project_root / ".dvc" / "tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"ingest-{drop.slug}-", dir=tmp_root))
    try:
        local = fetch(landing, drop, work / "drop")
        staged = work / "dataset"
        try:
            fmt, options = drop_spec(local, params)
            summary = import_dataset(fmt, local, staged, options=options, progress=False)
        except ReasonBrainError as err:
            report = {"ok": False, "stage": "import", "error": err.one_line()}
            uri = quarantine(registry.store, drop, report)
            return DropOutcome(
                drop.name,
                drop.uri,
                QUARANTINED,
                0,
                f"import failed: {err.one_line()}",
                uri,
                details=report,
            )
        result = validate_dataset(staged, params.validate_, progress=False)
        doc = result.to_dict()
        if not result.ok:
            failed = [c.name for c in result.checks if not c.passed and c.severity == "blocking"]
            uri = quarantine(registry.store, drop, {"stage": "validate", **doc})
            msg = (
                f"validation failed: {', '.join(failed)} ({result.invalid_rows} of "
                f"{result.rows} rows invalid)"
            )
            return DropOutcome(drop.name, drop.uri, QUARANTINED, result.rows, msg, uri, details=doc)
        seen = existing_ids(params, project_root)
        clashes = sorted(
            rec.id
            for split in SPLITS
            if manifest_path(staged, split).is_file()
            for rec in read_manifest(manifest_path(staged, split))
            if rec.id in seen
        )
        if clashes:
            report = {"ok": False, "stage": "merge", "duplicate_ids": clashes[:50], **doc}
            uri = quarantine(registry.store, drop, report)
            msg = (
                f"{len(clashes)} sample id(s) already in the dataset (first: {clashes[0]!r}); "
                "give the drop unique ids"
            )
            return DropOutcome(
                drop.name, drop.uri, QUARANTINED, result.rows, msg, uri, details=report
            )
        rel = Path(params.data.ingested_dir) / drop.slug
        dest = project_root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            shutil.rmtree(dest)
        shutil.move(str(staged), str(dest))
        md5 = dvc_add(project_root, rel)
        counts = ", ".join(f"{k} {v}" for k, v in summary.counts.items() if v)
        return DropOutcome(
            drop.name,
            drop.uri,
            MERGED,
            summary.total,
            f"merged {summary.total} records ({counts}) into {rel}",
            merged_dir=str(rel),
            details={"md5": md5, "format": fmt, "validation": doc},
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
