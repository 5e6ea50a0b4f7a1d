"""The registry never loses a committed version (issue 14, defects 1–5 and 9).

- ``gc`` against a moved project, a database that does not own the store, and a registration
  still uploading deletes nothing committed or in flight;
- a fault injected at every step of registration leaves a complete version or nothing visible;
- uploads are verified on the bytes sent; a model's own ``manifest.json`` survives; paths read
  from the database never escape the target directory; ``promote`` and ``archive`` serialise.

File store + SQLite where the defect is about the embedded default, the S3 endpoint (moto server)
where it is about S3, PostgreSQL for the locking race.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.exc import OperationalError

from reasonbrain.errors import RegistryError, StoreError
from reasonbrain.registry.api import Registry, open_registry
from reasonbrain.registry.checksums import manifest_digest, scan_dir, sha256_file
from reasonbrain.registry.db import downgrade, open_db, upgrade
from reasonbrain.registry.layout import MODELS
from reasonbrain.registry.refs import parse_ref
from reasonbrain.registry.store import ChecksumMismatch, FileStore, ObjectInfo, ObjectStore
from reasonbrain.registry.tables import ModelVersion


def _file_registry(home: Path, **kw: Any) -> Registry:
    """The embedded default: file:// store and SQLite, both under ``home``."""
    store = FileStore(home / "store")
    return Registry(open_db(f"sqlite:///{home / 'registry.db'}"), store, home / "cache", **kw)


def _s3_registry(s3_uri: str, db_url: str, home: Path, **kw: Any) -> Registry:
    from reasonbrain.registry.store import open_store

    return Registry(open_db(db_url), open_store(s3_uri), home / "cache", **kw)


def _objects(store: ObjectStore) -> set[str]:
    return {o.key for o in store.list_objects(MODELS + "/")}


def _pull_ok(reg: Registry, ref: str, model_dir: Path, out: Path) -> None:
    reg.pull(ref, out, force=True)
    assert manifest_digest(scan_dir(out)) == manifest_digest(scan_dir(model_dir))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "project" / ".reasonbrain"


# --------------------------------------------------------------------- defect 1: moved / wrong
def test_gc_after_moving_the_project_deletes_nothing(
    home: Path, model_dir: Path, tmp_path: Path
) -> None:
    with _file_registry(home) as reg:
        reg.register(model_dir, "tiny")
        reg.register(model_dir, "tiny", aliases=["production"])
        before = _objects(reg.store)
    moved = tmp_path / "renamed-project" / ".reasonbrain"
    moved.parent.mkdir()
    shutil.move(str(home), str(moved))
    with _file_registry(moved) as reg:
        assert [mv.version for mv in reg.list_versions("tiny")] == [2, 1]
        report = reg.gc(min_age_s=0, in_flight_grace_s=0)
        assert report.orphans == [] and report.objects_deleted == 0 and report.missing == []
        assert _objects(reg.store) == before
        _pull_ok(reg, "tiny@production", model_dir, tmp_path / "out")


@pytest.mark.s3
@pytest.mark.parametrize("which", ["empty", "another project's"])
def test_gc_refuses_a_database_that_does_not_own_the_store(
    which: str, s3_uri: str, model_dir: Path, tmp_path: Path
) -> None:
    owner = _s3_registry(s3_uri, f"sqlite:///{tmp_path / 'owner.db'}", tmp_path)
    owner.register(model_dir, "tiny")
    owner.register(model_dir, "tiny")
    stored = _objects(owner.store)
    other = _s3_registry(s3_uri, f"sqlite:///{tmp_path / 'other.db'}", tmp_path)
    if which != "empty":  # a database with versions of its own, in another store
        with other.db.sessions.begin() as s:
            s.add(
                ModelVersion(
                    name="theirs",
                    version=1,
                    store_uri="s3://elsewhere/models/theirs/" + "a" * 32 + "/files",
                    store_key="models/theirs/" + "a" * 32 + "/files",
                    sha256="0" * 64,
                    size_bytes=1,
                    files=[],
                )
            )
    for dry_run in (True, False):
        with pytest.raises(RegistryError, match="do not belong together") as exc:
            other.gc(min_age_s=0, in_flight_grace_s=0, dry_run=dry_run)
        assert "tiny@1" in str(exc.value) or "tiny@2" in str(exc.value)
    assert _objects(owner.store) == stored
    assert owner.gc(min_age_s=0).orphans == []  # the right database: nothing to do
    owner.close()
    other.close()


@pytest.mark.s3
def test_gc_refuses_a_store_that_holds_none_of_the_databases_versions(
    s3_uri: str, model_dir: Path, tmp_path: Path, s3_env: str
) -> None:
    """The database's versions are all elsewhere, and the store holds a root without a commit
    marker (e.g. a version whose finalise step failed): refuse rather than delete it."""
    reg = _s3_registry(s3_uri, f"sqlite:///{tmp_path / 'r.db'}", tmp_path)
    mv = reg.register(model_dir, "tiny")
    reg.store.delete([reg._layout(mv).manifest_key])  # as if step 5 had failed
    other_bucket = s3_uri.replace("rb-test-", "rb-other-")
    import boto3

    boto3.client("s3", endpoint_url=s3_env).create_bucket(Bucket=other_bucket[5:].split("/")[0])
    other = _s3_registry(other_bucket, f"sqlite:///{tmp_path / 'o.db'}", tmp_path)
    other.register(model_dir, "mine")
    wrong = Registry(other.db, reg.store, tmp_path / "cache")  # other's DB, reg's store
    with pytest.raises(RegistryError, match="none of the 1 version"):
        wrong.gc(min_age_s=0, in_flight_grace_s=0)
    assert reg.get("tiny@1").sha256 == mv.sha256
    _pull_ok(reg, "tiny@1", model_dir, tmp_path / "out")
    reg.close()
    other.close()


# ---------------------------------------------------------------- defect 2: uploads in flight
class _PausedUpload:
    """Wraps ``store.put_file``: the upload of ``name`` waits until released (a paused uploader
    thread standing in for a slow, minutes-long upload)."""

    def __init__(self, store: ObjectStore, name: str) -> None:
        self.real = store.put_file
        self.name = name
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, src: Path, key: str, **kw: Any) -> ObjectInfo:
        if key.endswith("/" + self.name):
            self.started.set()
            assert self.release.wait(60), "never released"
        return self.real(src, key, **kw)


def _register_in_thread(reg: Registry, model_dir: Path) -> tuple[threading.Thread, dict[str, Any]]:
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["mv"] = reg.register(model_dir, "tiny")
        except Exception as err:
            result["error"] = err

    t = threading.Thread(target=run)
    t.start()
    return t, result


def _backdate(store: FileStore, root: str, seconds: float) -> None:
    """Make every file under ``root`` look ``seconds`` old (simulates elapsed upload time)."""
    old = time.time() - seconds
    for p in (store.root / root).rglob("*"):
        if p.is_file():
            os.utime(p, (old, old))


@pytest.mark.parametrize("backend", ["file", pytest.param("s3", marks=pytest.mark.s3)])
def test_gc_leaves_a_two_minute_upload_in_flight_alone(
    backend: str, home: Path, model_dir: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "file":
        reg = _file_registry(home, heartbeat_s=0.1)
    else:
        s3_uri = request.getfixturevalue("s3_uri")
        reg = _s3_registry(s3_uri, f"sqlite:///{tmp_path / 'r.db'}", tmp_path, heartbeat_s=0.1)
    paused = _PausedUpload(reg.store, "model.safetensors")
    reg.store.put_file = paused  # type: ignore[method-assign]
    thread, result = _register_in_thread(reg, model_dir)
    try:
        _wait_for_small_files(reg.store, paused)
        (root,) = {k.split("/_registry/")[0] for k in _objects(reg.store) if "/_registry/" in k}
        staged = _objects(reg.store)
        if isinstance(reg.store, FileStore):
            # two minutes pass: every staged file (and the marker) is now 120 s old …
            _backdate(reg.store, root, 120)
            marker = reg.store.root / root / "_registry" / "staging.json"
            deadline = time.monotonic() + 10
            while time.time() - marker.stat().st_mtime > 60:  # … until the heartbeat beats
                assert time.monotonic() < deadline, "heartbeat never refreshed the marker"
                time.sleep(0.02)
            report = reg.gc(min_age_s=60, in_flight_grace_s=60)
        else:  # S3 sets LastModified itself: every finished object already counts as old
            report = reg.gc(min_age_s=0, in_flight_grace_s=60)
        assert report.kept_in_flight == [root] and report.orphans == []
        assert _objects(reg.store) == staged  # nothing deleted
    finally:
        paused.release.set()
        thread.join(60)
    assert "error" not in result, result
    assert result["mv"].version == 1
    _pull_ok(reg, "tiny@1", model_dir, tmp_path / "out")
    assert reg.gc(min_age_s=0, in_flight_grace_s=0).orphans == []
    reg.close()


def test_staged_files_are_rechecked_before_the_commit(
    home: Path, model_dir: Path, tmp_path: Path
) -> None:
    """A gc run with no grace at all deletes a registration's staged files mid-flight: the
    registration must notice before committing and leave nothing visible."""
    reg = _file_registry(home, heartbeat_s=3600)
    paused = _PausedUpload(reg.store, "model.safetensors")
    reg.store.put_file = paused  # type: ignore[method-assign]
    thread, result = _register_in_thread(reg, model_dir)
    try:
        _wait_for_small_files(reg.store, paused)
        report = reg.gc(min_age_s=0, in_flight_grace_s=0)  # a misconfigured gc
        assert len(report.orphans) == 1 and report.objects_deleted == 4  # 3 files + marker
    finally:
        paused.release.set()
        thread.join(60)
    assert isinstance(result.get("error"), StoreError), result
    assert "before the version was committed" in str(result["error"])
    assert reg.list_versions(include_archived=True) == []
    reg.close()


def _wait_for_small_files(store: ObjectStore, paused: _PausedUpload) -> None:
    """The weights' upload is paused; the three small files (uploaded in parallel) are done."""
    assert paused.started.wait(30)
    deadline = time.monotonic() + 30
    while len([k for k in _objects(store) if "/files/" in k]) < 3:
        assert time.monotonic() < deadline, _objects(store)
        time.sleep(0.01)


# --------------------------------------------------------------- all or nothing, step by step
class _InjectedFault(StoreError):
    pass


class _FaultyStore(ObjectStore):
    """Delegates to a real store; the ``fail_at``-th call (any method) raises."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.uri = inner.uri
        self.calls = 0
        self.fail_at = 0
        self.failed = ""
        self.lock = threading.Lock()

    def _tick(self, what: str) -> None:
        with self.lock:
            self.calls += 1
            if self.calls == self.fail_at:
                self.failed = what
                raise _InjectedFault(f"injected store fault at call {self.calls} ({what})")

    def uri_for(self, key: str) -> str:
        return self.inner.uri_for(key)

    def put_file(self, src: Path, key: str, *, sha256: str | None = None) -> ObjectInfo:
        self._tick("put_file")
        return self.inner.put_file(src, key, sha256=sha256)

    def get_file(self, key: str, dest: Path, *, sha256: str | None = None) -> ObjectInfo:
        self._tick("get_file")
        return self.inner.get_file(key, dest, sha256=sha256)

    def put_bytes(self, data: bytes, key: str) -> ObjectInfo:
        self._tick("put_bytes")
        return self.inner.put_bytes(data, key)

    def get_bytes(self, key: str) -> bytes:
        self._tick("get_bytes")
        return self.inner.get_bytes(key)

    def head(self, key: str) -> ObjectInfo | None:
        self._tick("head")
        return self.inner.head(key)

    def list_objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        self._tick("list_objects")
        return self.inner.list_objects(prefix)

    def delete(self, keys: list[str]) -> None:
        self._tick("delete")
        self.inner.delete(keys)

    def presigned_url(self, key: str, expires_s: int = 3600) -> str:
        return self.inner.presigned_url(key, expires_s)


def _fail_at_statement(k: int) -> Callable[..., None]:
    seen: list[str] = []

    def fail(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)
        if len(seen) == k:
            raise OperationalError(statement, None, Exception("injected SQL fault"))

    return fail


def _check_all_or_nothing(reg: Registry, model_dir: Path, before: int, out: Path) -> int:
    """Visible versions grew by 0 or 1, and every visible version pulls and verifies."""
    versions = reg.list_versions("m", include_archived=True)
    assert len(versions) in (before, before + 1)
    for mv in versions:
        _pull_ok(reg, mv.ref, model_dir, out)
    return len(versions)


def test_a_fault_at_every_step_of_registration_is_all_or_nothing(
    home: Path, model_dir: Path, tmp_path: Path
) -> None:
    real = FileStore(home / "store")
    faulty = _FaultyStore(real)
    reg = Registry(open_db(f"sqlite:///{home / 'r.db'}"), faulty, home / "cache", heartbeat_s=3600)
    out = tmp_path / "out"
    # a clean run counts the steps: store calls and SQL statements
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(reg.db.engine, "before_cursor_execute", count)
    faulty.calls = 0
    reg.register(model_dir, "m")
    event.remove(reg.db.engine, "before_cursor_execute", count)
    n_store, n_sql = faulty.calls, len(statements)
    assert n_store >= 8 and n_sql >= 2
    visible = _check_all_or_nothing(reg, model_dir, 0, out)
    faults = 0
    absorbed: list[str] = []
    for k in range(1, n_store + 1):  # every store call, in turn, fails
        faulty.calls, faulty.fail_at, faulty.failed = 0, k, ""
        try:
            reg.register(model_dir, "m")
            absorbed.append(faulty.failed)  # after the commit: retried or left to gc
        except _InjectedFault:
            faults += 1
        faulty.fail_at = 0
        visible = _check_all_or_nothing(reg, model_dir, visible, out)
    # the commit marker write is retried; the in-flight marker's removal is left to gc
    assert sorted(absorbed) == ["delete", "put_bytes"]
    for k in range(1, n_sql + 1):  # every SQL statement, in turn, fails
        fail = _fail_at_statement(k)
        event.listen(reg.db.engine, "before_cursor_execute", fail)
        try:
            reg.register(model_dir, "m")
        except OperationalError:
            faults += 1
        finally:
            event.remove(reg.db.engine, "before_cursor_execute", fail)
        visible = _check_all_or_nothing(reg, model_dir, visible, out)
    for when in ("before_commit", "after_commit"):  # the COMMIT fails / its answer is lost
        from sqlalchemy.orm import Session

        def boom(*args: Any) -> None:
            raise RuntimeError("injected commit fault")

        event.listen(Session, when, boom)
        try:
            reg.register(model_dir, "m")
        except RuntimeError:
            faults += 1
        finally:
            event.remove(Session, when, boom)
        visible = _check_all_or_nothing(reg, model_dir, visible, out)
    assert faults == n_store - 2 + n_sql + 2  # every other fault surfaced as an error
    # afterwards gc leaves exactly the committed versions, each complete
    reg.gc(min_age_s=0, in_flight_grace_s=0)
    versions = reg.list_versions("m", include_archived=True)
    roots = {reg._layout(mv).root for mv in versions}
    assert {k.split("/files/")[0].split("/_registry/")[0] for k in _objects(real)} == roots
    for mv in versions:
        assert real.head(reg._layout(mv).manifest_key) is not None
        _pull_ok(reg, mv.ref, model_dir, out)
    reg.close()


# ------------------------------------------------------------ defect 3: bytes actually uploaded
@pytest.mark.s3
@pytest.mark.parametrize("size", [50_000, 5 * 1024 * 1024 + 17], ids=["single", "multipart"])
def test_s3_upload_checks_the_bytes_sent(size: int, s3_uri: str, tmp_path: Path) -> None:
    from reasonbrain.registry.s3 import S3Store

    bucket, prefix = s3_uri[5:].split("/", 1)
    store = S3Store(bucket, prefix, part_size=5 * 1024 * 1024, retries=2)
    src = tmp_path / "w.bin"
    src.write_bytes(os.urandom(size))
    hashed = sha256_file(src)
    src.write_bytes(os.urandom(size))  # rewritten, same size, after it was hashed
    with pytest.raises(ChecksumMismatch, match="changed while it was being stored"):
        store.put_file(src, "k/w.bin", sha256=hashed)
    assert store.head("k/w.bin") is None  # no object carries a digest its bytes lack
    info = store.put_file(src, "k/w.bin")  # the file as it is now uploads fine
    assert info.sha256 == sha256_file(src)
    store.get_file("k/w.bin", tmp_path / "back.bin")
    assert sha256_file(tmp_path / "back.bin") == info.sha256


def _rewrite_after_hashing(monkeypatch: pytest.MonkeyPatch, times: int) -> None:
    """The file changes (same size) after the store hashed it, before its parts are sent."""
    import reasonbrain.registry.s3 as s3_module

    real = s3_module._digests
    left = [times]

    def digests_then_rewrite(src: Path, part_size: int) -> tuple[str, list[bytes]]:
        out = real(src, part_size)
        if left[0] > 0:
            left[0] -= 1
            src.write_bytes(os.urandom(src.stat().st_size))  # a trainer still writing
        return out

    monkeypatch.setattr(s3_module, "_digests", digests_then_rewrite)


@pytest.mark.s3
def test_a_file_rewritten_during_its_multipart_upload_is_refused(
    s3_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defect 3: only S3's checksum of the stored parts can see this change."""
    reg = _s3_registry(s3_uri, f"sqlite:///{tmp_path / 'r.db'}", tmp_path)
    from reasonbrain.registry.s3 import S3Store

    assert isinstance(reg.store, S3Store)
    reg.store.transfer.multipart_threshold = reg.store.transfer.multipart_chunksize = 5 << 20
    model = tmp_path / "big-model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(os.urandom((5 << 20) + 1000))
    _rewrite_after_hashing(monkeypatch, times=1)
    monkeypatch.setattr(reg.store, "retries", 1)
    with pytest.raises(ChecksumMismatch, match="stored parts differs"):
        reg.register(model, "tiny")
    assert reg.list_versions(include_archived=True) == []
    assert _objects(reg.store) == set()  # nothing left that claims a wrong digest
    # with a retry the upload converges on the file as it now is, and that is what is recorded
    _rewrite_after_hashing(monkeypatch, times=1)
    monkeypatch.setattr(reg.store, "retries", 2)
    mv = reg.register(model, "tiny")
    assert mv.sha256 == manifest_digest(scan_dir(model))
    _pull_ok(reg, "tiny@1", model, tmp_path / "out")
    reg.close()


# ------------------------------------------------------------- defect 4: a model's manifest.json
@pytest.mark.parametrize("backend", ["file", pytest.param("s3", marks=pytest.mark.s3)])
def test_a_model_file_named_manifest_json_survives(
    backend: str, home: Path, model_dir: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    (model_dir / "manifest.json").write_text('{"shards": ["model.safetensors"]}')
    (model_dir / "_registry").mkdir()
    (model_dir / "_registry" / "manifest.json").write_text("a model may use this name too")
    if backend == "file":
        reg = _file_registry(home)
    else:
        s3_uri = request.getfixturevalue("s3_uri")
        reg = _s3_registry(s3_uri, f"sqlite:///{tmp_path / 'r.db'}", tmp_path)
    mv = reg.register(model_dir, "tiny")
    out = tmp_path / "pulled"
    _pull_ok(reg, mv.ref, model_dir, out)
    assert (out / "manifest.json").read_text() == '{"shards": ["model.safetensors"]}'
    assert (reg.resolve(mv.ref) / "_registry" / "manifest.json").read_text().startswith("a model")
    report = reg.gc(min_age_s=0, in_flight_grace_s=0)
    assert report.manifests_repaired == [] and report.orphans == []
    reg.close()


# ----------------------------------------------------------- defect 5: paths from the database
@pytest.mark.parametrize(
    "bad",
    [
        {"files": [{"path": "../escaped.txt", "size": 3, "sha256": "x"}]},
        {"files": [{"path": "/tmp/rb-abs-escape.txt", "size": 3, "sha256": "x"}]},
        {"files": [{"path": "a/../../escaped.txt", "size": 3, "sha256": "x"}]},
        {"store_key": "models/tiny/../../../../etc"},
        {"name": "../../escaped"},
    ],
    ids=["dotdot", "absolute", "nested-dotdot", "store-key", "name"],
)
def test_pull_and_resolve_never_write_outside_the_target(
    bad: dict[str, Any], home: Path, model_dir: Path, tmp_path: Path
) -> None:
    reg = _file_registry(home)
    mv = reg.register(model_dir, "tiny")
    if "files" in bad:  # plant the bytes where the bad path points inside the store
        entry = bad["files"][0]
        planted = reg.store.root / reg._key(mv) / entry["path"].lstrip("/")
        planted.parent.mkdir(parents=True, exist_ok=True)
        planted.write_bytes(b"pwn")
        entry["sha256"] = sha256_file(planted)
        bad = {"files": [*mv.files, entry]}
    with reg.db.sessions.begin() as s:
        s.execute(update(ModelVersion).where(ModelVersion.id == mv.id).values(**bad))
    ref = f"{bad.get('name', 'tiny')}@1"
    before = {p for p in tmp_path.rglob("*")}
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises((RegistryError, StoreError), match=r"unsafe|invalid"):
        reg.pull(ref, work / "out")
    with pytest.raises((RegistryError, StoreError), match=r"unsafe|invalid"):
        reg.resolve(ref)
    after = {p for p in tmp_path.rglob("*")} - before - {work}
    assert not [p for p in after if not str(p).startswith(str(reg.cache_dir))], after
    assert not Path("/tmp/rb-abs-escape.txt").exists()
    assert not (tmp_path / "escaped.txt").exists() and not (work / "escaped.txt").exists()
    reg.close()


# ------------------------------------------------------------------------ also confirmed
def test_a_version_is_found_by_its_key_not_by_a_uri_prefix(
    home: Path, model_dir: Path, tmp_path: Path
) -> None:
    """A version recorded (before migration 0003) under ``…/store-old/…``: its key is its
    ``models/NAME/<uid>`` tail, not whatever follows a string prefix of the current root."""
    reg = _file_registry(home)
    mv = reg.register(model_dir, "tiny")
    root = reg._layout(mv).root
    with reg.db.sessions.begin() as s:
        s.execute(
            update(ModelVersion)
            .where(ModelVersion.id == mv.id)
            .values(store_uri=reg.store.root.as_uri() + "-old/" + root, store_key=None)
        )
    assert reg._key(reg.get("tiny@1")) == root  # never "-old/models/…"
    reg.close()


def test_resolve_rehashes_a_cached_file_changed_in_place(
    home: Path, model_dir: Path, tmp_path: Path
) -> None:
    reg = _file_registry(home)
    reg.register(model_dir, "tiny")
    path = reg.resolve("tiny@1")
    weights = path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[1000] ^= 0xFF  # same size, one byte flipped
    weights.write_bytes(bytes(data))
    again = reg.resolve("tiny@1")
    assert again == path
    assert sha256_file(weights) == sha256_file(model_dir / "model.safetensors")
    (path / "extra.txt").write_text("not part of the version")
    assert not (reg.resolve("tiny@1") / "extra.txt").exists()
    reg.close()


@pytest.mark.s3
def test_s3_delete_reports_the_keys_it_could_not_delete(
    s3_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reasonbrain.registry.s3 import S3Store
    from reasonbrain.registry.store import open_store

    store = open_store(s3_uri)
    assert isinstance(store, S3Store)
    for k in ("a", "b"):
        store.put_bytes(b"x", f"models/m/{k}")
    real = store.client.delete_objects

    def partly(**kw: Any) -> dict[str, Any]:  # as S3 answers for a key under object lock
        objects = kw["Delete"]["Objects"]
        locked = [o for o in objects if o["Key"].endswith("/b")]
        kw["Delete"] = {**kw["Delete"], "Objects": [o for o in objects if o not in locked]}
        r: dict[str, Any] = real(**kw)
        r["Errors"] = [{"Key": o["Key"], "Code": "AccessDenied"} for o in locked]
        return r

    monkeypatch.setattr(store.client, "delete_objects", partly)
    with pytest.raises(StoreError, match=r"refused to delete 1 of 2 .*AccessDenied"):
        store.delete(["models/m/a", "models/m/b"])
    assert {o.key for o in store.list_objects("models/")} == {"models/m/b"}


def test_registrations_before_store_keys_keep_working(
    home: Path, model_dir: Path, tmp_path: Path
) -> None:
    """A database at schema 0002 with a version in the old layout (files directly under the
    root, absolute ``store_uri``, no ``store_key``): after the migration it pulls, gc keeps it
    and repairs its old-layout marker in place."""
    db_url = f"sqlite:///{home / 'registry.db'}"
    store = FileStore(home / "store")
    db = open_db(db_url)
    downgrade(db.engine, "0002")
    uid = "0123456789abcdef0123456789abcdef"
    root = f"models/tiny/{uid}"
    entries = scan_dir(model_dir)
    for e in entries:
        store.put_file(model_dir / e.path, f"{root}/{e.path}", sha256=e.sha256)
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO model_versions (name, version, store_uri, sha256, size_bytes, files, "
            "created_at, lineage) VALUES ('tiny', 1, ?, ?, ?, ?, '2026-01-01 00:00:00', '{}')",
            (
                store.uri_for(root),
                manifest_digest(entries),
                sum(e.size for e in entries),
                json.dumps([e.to_dict() for e in entries]),
            ),
        )
    upgrade(db.engine)
    with db.sessions() as s:
        assert s.scalars(select(ModelVersion.store_key)).one() == root
    reg = Registry(db, store, home / "cache")
    report = reg.gc(min_age_s=0, in_flight_grace_s=0)
    assert report.orphans == [] and report.manifests_repaired == ["tiny@1"]
    assert store.head(f"{root}/manifest.json") is not None
    _pull_ok(reg, "tiny@1", model_dir, tmp_path / "out")
    assert reg.register(model_dir, "tiny").version == 2  # new layout beside the old one
    assert reg.gc(min_age_s=0, in_flight_grace_s=0).orphans == []
    reg.close()


# --------------------------------------------------------------- defect 9: promote vs archive
@pytest.mark.postgres
def test_promote_cannot_put_an_alias_on_a_version_being_archived(
    pg_url: str, home: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REASONBRAIN_DB_URL", pg_url)
    monkeypatch.setenv("REASONBRAIN_HOME", str(home))
    monkeypatch.delenv("REASONBRAIN_STORE_URI", raising=False)
    reg = open_registry()
    reg.register(model_dir, "tiny")
    reg.register(model_dir, "tiny")
    # archive tiny@2 in a transaction that has locked and changed the row but not committed
    archiver = reg.db.sessions()
    archiver.begin()
    row = reg._query_ref(archiver, parse_ref("tiny@2"), lock=True)
    row.archived_at = datetime.now(UTC)
    archiver.flush()
    result: dict[str, Any] = {}

    def promote() -> None:
        try:
            result["mv"] = reg.promote("tiny@2", "production")
        except Exception as err:
            result["error"] = err

    t = threading.Thread(target=promote)
    t.start()
    t.join(1.0)
    assert t.is_alive(), "promote did not wait for the version row lock"
    archiver.commit()
    archiver.close()
    t.join(30)
    assert isinstance(result.get("error"), RegistryError), result
    assert "archived" in str(result["error"])
    with pytest.raises(RegistryError, match=r"no tiny@production|no such"):
        reg.get("tiny@production")
    reg.close()
