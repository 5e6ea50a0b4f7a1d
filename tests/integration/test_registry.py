"""Registry: atomic registration, versions under concurrency, aliases, pull, gc (issue 6).

Every test runs against a real S3 HTTP endpoint (moto server) and against both SQLite and the
local PostgreSQL server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError

from reasonbrain.errors import RegistryError, StoreError
from reasonbrain.registry.api import Registry, open_registry, resolve_model_ref
from reasonbrain.registry.checksums import manifest_digest, scan_dir
from reasonbrain.registry.s3 import S3Store
from reasonbrain.registry.tables import ModelAlias, ModelVersion, Run

pytestmark = pytest.mark.s3


@pytest.fixture
def env(
    s3_uri: str, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Settings pointing at the test bucket and database."""
    values = {
        "REASONBRAIN_STORE_URI": s3_uri,
        "REASONBRAIN_DB_URL": db_url,
        "REASONBRAIN_HOME": str(tmp_path / "home"),
        "REASONBRAIN_STORE_RETRIES": "2",
    }
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return values


@pytest.fixture
def reg(env: dict[str, str]) -> Registry:
    r = open_registry()
    yield r
    r.close()


def _count_versions(reg: Registry) -> int:
    with reg.db.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(ModelVersion)) or 0)


def test_register_pull_round_trip(reg: Registry, model_dir: Path, tmp_path: Path) -> None:
    v1 = reg.register(model_dir, "tiny", description="first")
    v2 = reg.register(model_dir, "tiny", aliases=["staging"])
    assert (v1.version, v2.version) == (1, 2)
    assert v1.store_uri != v2.store_uri and v1.store_uri.startswith(reg.store.uri)
    assert v1.sha256 == manifest_digest(scan_dir(model_dir)) == v2.sha256
    assert v1.size_bytes == sum(p.stat().st_size for p in model_dir.rglob("*") if p.is_file())
    assert [a.alias for a in reg.get("tiny@staging").aliases] == ["staging"]
    assert reg.get("tiny").version == 2  # bare name: newest
    # finalised: the store holds a manifest that matches the DB row
    manifest = json.loads(reg.store.get_bytes(reg._layout(v1).manifest_key))
    assert manifest["version"] == 1 and manifest["sha256"] == v1.sha256
    out = tmp_path / "pulled"
    mv = reg.pull("tiny@1", out)
    assert mv.version == 1
    assert manifest_digest(scan_dir(out)) == v1.sha256
    assert (out / "model.safetensors").read_bytes() == (
        model_dir / "model.safetensors"
    ).read_bytes()
    with pytest.raises(RegistryError, match="not an empty directory"):
        reg.pull("tiny@1", out)
    reg.pull("tiny@2", out, force=True)


def test_resolve_model_ref_caches_verified_copies(
    reg: Registry, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mv = reg.register(model_dir, "tiny", aliases=["production"])
    path = resolve_model_ref("registry://tiny@production")
    assert path.is_dir() and manifest_digest(scan_dir(path)) == mv.sha256
    # cached: a second resolve does not touch the object store
    with monkeypatch.context() as m:
        m.setattr(S3Store, "get_file", lambda *a, **k: pytest.fail("downloaded again"))
        assert resolve_model_ref("registry://tiny@1") == path
    # a damaged cache is pulled again
    (path / "README.md").unlink()
    assert resolve_model_ref("registry://tiny@production") == path
    assert (path / "README.md").is_file()
    with pytest.raises(RegistryError, match="no such model"):
        resolve_model_ref("registry://nope@production")


def test_corrupted_bytes_are_refused_by_pull(
    reg: Registry, model_dir: Path, tmp_path: Path
) -> None:
    mv = reg.register(model_dir, "tiny")
    assert isinstance(reg.store, S3Store)
    key = reg.store._key(f"{reg._key(mv)}/model.safetensors")
    reg.store.client.put_object(Bucket=reg.store.bucket, Key=key, Body=b"evil bytes")
    out = tmp_path / "out"
    with pytest.raises(StoreError, match="sha256 mismatch") as exc:
        reg.pull("tiny@1", out)
    assert "model.safetensors" in str(exc.value)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


_WORKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from reasonbrain.registry.api import open_registry
    reg = open_registry()
    barrier, n, model = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    (barrier / sys.argv[4]).touch()
    while len(list(barrier.iterdir())) < 2:  # start together: maximise the race
        time.sleep(0.005)
    for _ in range(n):
        print(reg.register(model, "racer").version, flush=True)
    """
)


def test_concurrent_registration_gives_distinct_monotonic_versions(
    reg: Registry, env: dict[str, str], tmp_path: Path
) -> None:
    n = 4
    model = tmp_path / "racer"
    model.mkdir()
    (model / "config.json").write_text("{}")
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(barrier), str(n), str(model), f"w{i}"],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    seen = [[int(x) for x in o[0].split()] for o in outs]
    for versions in seen:
        assert versions == sorted(versions)  # monotonic within each writer
    allv = sorted(seen[0] + seen[1])
    assert allv == list(range(1, 2 * n + 1))  # distinct, no gaps, nothing lost
    rows = reg.list_versions("racer")
    assert sorted(mv.version for mv in rows) == allv
    assert len({mv.store_uri for mv in rows}) == 2 * n


def test_s3_failure_mid_registration_leaves_no_row_and_gc_cleans(
    reg: Registry, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_put = S3Store.put_file
    calls = {"n": 0}

    def failing_put(self: S3Store, src: Path, key: str, **kw: object) -> object:
        calls["n"] += 1
        if calls["n"] >= 3:  # the endpoint goes away after two uploads …
            raise StoreError("S3 upload failed: InternalError (HTTP 500)", where=key)
        return real_put(self, src, key, **kw)  # type: ignore[arg-type]

    def failing_delete(self: S3Store, keys: list[str]) -> None:
        raise StoreError("S3 delete failed: InternalError (HTTP 500)")  # … and stays away

    with monkeypatch.context() as m:
        m.setattr(S3Store, "put_file", failing_put)
        m.setattr(S3Store, "delete", failing_delete)
        m.setattr(reg.store, "put_tree", _serial_put_tree(reg.store))
        with pytest.raises(StoreError, match="InternalError"):
            reg.register(model_dir, "tiny")
    assert _count_versions(reg) == 0
    left = sorted(o.key.rsplit("/", 1)[-1] for o in reg.store.list_objects("models/"))
    assert len(left) == 3 and "staging.json" in left  # two files + the in-flight marker
    assert reg.gc().kept_in_flight  # the marker is fresh: left alone
    assert reg.gc(in_flight_grace_s=0).kept_recent  # younger than the grace period
    assert len(list(reg.store.list_objects("models/"))) == 3
    report = reg.gc(min_age_s=0, in_flight_grace_s=0)
    assert len(report.orphans) == 1 and report.objects_deleted == 3
    assert list(reg.store.list_objects("models/")) == []
    assert reg.register(model_dir, "tiny").version == 1


def test_a_failed_upload_removes_what_it_staged(
    reg: Registry, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_put = S3Store.put_file

    def failing_put(self: S3Store, src: Path, key: str, **kw: object) -> object:
        if key.endswith("README.md"):
            raise StoreError("S3 upload failed: InternalError (HTTP 500)", where=key)
        return real_put(self, src, key, **kw)  # type: ignore[arg-type]

    with monkeypatch.context() as m:
        m.setattr(S3Store, "put_file", failing_put)
        with pytest.raises(StoreError, match="InternalError"):
            reg.register(model_dir, "tiny")
    assert _count_versions(reg) == 0
    assert list(reg.store.list_objects("models/")) == []  # nothing committed: nothing kept


def _serial_put_tree(store: S3Store):  # type: ignore[no-untyped-def]
    """put_tree with one worker, so that "the third upload fails" is deterministic."""
    real = store.put_tree

    def put_tree(src, prefix, *, workers=4):  # type: ignore[no-untyped-def]
        return real(src, prefix, workers=1)

    return put_tree


def test_db_failure_leaves_no_visible_version_and_gc_cleans(reg: Registry, model_dir: Path) -> None:
    reg.register(model_dir, "tiny")

    def fail_insert(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("INSERT INTO MODEL_VERSIONS"):
            raise OperationalError(statement, params, Exception("disk I/O error (injected)"))

    event.listen(reg.db.engine, "before_cursor_execute", fail_insert)
    try:
        with pytest.raises(OperationalError, match="injected"):
            reg.register(model_dir, "tiny")
    finally:
        event.remove(reg.db.engine, "before_cursor_execute", fail_insert)
    assert [mv.version for mv in reg.list_versions("tiny", include_archived=True)] == [1]
    with pytest.raises(RegistryError):
        reg.get("tiny@2")
    assert len(reg.store.list_prefixes("models/tiny")) == 2  # bytes of the failed attempt
    report = reg.gc(min_age_s=0)
    assert len(report.orphans) == 1 and not report.manifests_repaired
    assert len(reg.store.list_prefixes("models/tiny")) == 1
    assert reg.register(model_dir, "tiny").version == 2


def test_finalise_failure_keeps_version_and_gc_repairs_manifest(
    reg: Registry, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Registry, mv: ModelVersion) -> None:
        raise StoreError("S3 down (injected)")

    with monkeypatch.context() as m:
        m.setattr(Registry, "_write_manifest", broken)
        mv = reg.register(model_dir, "tiny")
    assert reg.get("tiny@1").sha256 == mv.sha256  # committed and visible
    assert reg.store.head(reg._layout(mv).manifest_key) is None
    report = reg.gc(min_age_s=0)
    assert report.manifests_repaired == ["tiny@1"] and not report.orphans
    assert reg.store.head(reg._layout(mv).manifest_key) is not None


def test_alias_promotion_is_atomic(reg: Registry, model_dir: Path) -> None:
    reg.register(model_dir, "tiny")
    reg.register(model_dir, "tiny")
    assert reg.promote("tiny@1", "production").version == 1

    def fail_commit(session) -> None:  # type: ignore[no-untyped-def]
        raise RuntimeError("crash before commit (injected)")

    from sqlalchemy.orm import Session

    event.listen(Session, "before_commit", fail_commit)
    try:
        with pytest.raises(RuntimeError, match="injected"):
            reg.promote("tiny@2", "production")
    finally:
        event.remove(Session, "before_commit", fail_commit)
    assert reg.get("tiny@production").version == 1  # the old target, not neither
    assert reg.promote("tiny@2", "production").version == 2
    assert reg.get("tiny@production").version == 2
    with reg.db.sessions() as s:
        rows = s.scalars(select(ModelAlias).where(ModelAlias.alias == "production")).all()
    assert len(rows) == 1  # moved, never duplicated
    with pytest.raises(RegistryError, match="invalid alias"):
        reg.promote("tiny@2", "7")


def test_archive_and_lineage(reg: Registry, model_dir: Path) -> None:
    with reg.db.sessions.begin() as s:
        s.add(Run(id="run-1", kind="train", params={"lr": 1}, params_hash="abc", git_commit="f00"))
    v1 = reg.register(model_dir, "tiny", run_id="run-1", lineage={"parent": None})
    assert v1.run_id == "run-1" and v1.lineage["git_commit"] == "f00"
    assert v1.lineage["params_hash"] == "abc" and "parent" in v1.lineage
    with pytest.raises(RegistryError, match="unknown run"):
        reg.register(model_dir, "tiny", run_id="nope")
    reg.register(model_dir, "tiny")
    reg.promote("tiny@2", "production")
    with pytest.raises(RegistryError, match="holds alias"):
        reg.archive("tiny@2")
    reg.archive("tiny@2", force=True)
    assert reg.get("tiny").version == 1  # bare name skips archived
    assert [mv.version for mv in reg.list_versions("tiny")] == [1]
    assert len(reg.list_versions("tiny", include_archived=True)) == 2
    with pytest.raises(RegistryError, match="archived"):
        reg.promote("tiny@2", "production")
    assert reg.register(model_dir, "tiny").version == 3  # numbers are never reused
