"""Object store: file:// and s3:// (a real HTTP endpoint: moto server) behind one interface."""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.request
from pathlib import Path

import pytest

from reasonbrain.errors import StoreError
from reasonbrain.registry.checksums import manifest_digest, scan_dir, sha256_file
from reasonbrain.registry.store import (
    ChecksumMismatch,
    FileStore,
    ObjectStore,
    open_store,
    with_retries,
)
from tests.integration.registry_fixtures import DUMMY_KEY_ID, DUMMY_SECRET

pytestmark = pytest.mark.s3


@pytest.fixture(params=["file", "s3"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> ObjectStore:
    monkeypatch.setenv("REASONBRAIN_STORE_RETRIES", "2")  # keep the mismatch backoff short
    if request.param == "file":
        return open_store((tmp_path / "store").as_uri())
    return open_store(request.getfixturevalue("s3_uri"))


def _corrupt(store: ObjectStore, key: str) -> None:
    """Replace an object's bytes behind the store's back, keeping its recorded sha256."""
    if isinstance(store, FileStore):
        (store.root / key).write_bytes(b"tampered bytes")
        return
    from reasonbrain.registry.s3 import S3Store

    assert isinstance(store, S3Store)
    info = store.head(key)
    assert info is not None and info.sha256
    store.client.put_object(
        Bucket=store.bucket,
        Key=store._key(key),
        Body=b"tampered bytes",
        Metadata={"sha256": info.sha256},
    )


def test_directory_round_trip_with_checksums(
    store: ObjectStore, model_dir: Path, tmp_path: Path
) -> None:
    entries = scan_dir(model_dir)
    infos = store.put_dir(model_dir, "models/m/abc", entries)
    assert {i.key for i in infos} == {f"models/m/abc/{e.path}" for e in entries}
    for e in entries:  # sha256 recorded beside every object
        head = store.head(f"models/m/abc/{e.path}")
        assert head is not None and head.sha256 == e.sha256 and head.size == e.size
    listed = {o.key for o in store.list_objects("models/m/")}
    assert listed == {f"models/m/abc/{e.path}" for e in entries}
    assert store.list_prefixes("models/m") == {"abc"}

    out = tmp_path / "out"
    store.get_dir("models/m/abc", out, entries)
    assert manifest_digest(scan_dir(out)) == manifest_digest(entries)
    assert (out / "tokenizer" / "vocab.json").read_text() == '{"a": 0, "b": 1}'

    store.delete([o.key for o in store.list_objects("models/")])
    assert list(store.list_objects("models/")) == []


def test_corrupted_download_is_refused(store: ObjectStore, tmp_path: Path) -> None:
    src = tmp_path / "w.bin"
    src.write_bytes(os.urandom(50_000))
    store.put_file(src, "k/w.bin")
    _corrupt(store, "k/w.bin")
    dest = tmp_path / "dl" / "w.bin"
    with pytest.raises(ChecksumMismatch, match="corrupted bytes refused") as exc:
        store.get_file("k/w.bin", dest)
    assert "k/w.bin" in str(exc.value)
    assert not dest.exists()
    assert not any(p.name.endswith(".part") for p in dest.parent.iterdir())
    # an explicit expected sha256 (from the DB) is enforced too
    with pytest.raises(ChecksumMismatch):
        store.get_file("k/w.bin", dest, sha256=sha256_file(src))


def test_missing_object_error_names_the_key(store: ObjectStore, tmp_path: Path) -> None:
    with pytest.raises(StoreError) as exc:
        store.get_file("no/such/key.bin", tmp_path / "x")
    msg = str(exc.value)
    assert "no/such/key.bin" in msg
    assert not (tmp_path / "x").exists()


def test_s3_multipart_upload_of_a_file_larger_than_the_part_size(
    s3_uri: str, tmp_path: Path
) -> None:
    from reasonbrain.registry.s3 import S3Store

    bucket, prefix = s3_uri[5:].split("/", 1)
    store = S3Store(bucket, prefix, part_size=5 * 1024 * 1024)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(11 * 1024 * 1024 + 123))
    store.put_file(big, "big.bin")
    etag = store.client.head_object(Bucket=bucket, Key=store._key("big.bin"))["ETag"]
    assert etag.strip('"').endswith("-3")  # three parts: 5 + 5 + 1 MiB
    out = tmp_path / "back.bin"
    store.get_file("big.bin", out)
    assert sha256_file(out) == sha256_file(big)


def test_s3_presigned_url_reads_the_object(s3_uri: str, tmp_path: Path) -> None:
    store = open_store(s3_uri)
    store.put_bytes(b"hello dashboard", "img/a.png")
    url = store.presigned_url("img/a.png", expires_s=60)
    assert DUMMY_SECRET not in url
    with urllib.request.urlopen(url, timeout=10) as r:  # no credentials needed
        assert r.read() == b"hello dashboard"


def test_s3_errors_name_bucket_and_fix(s3_env: str, tmp_path: Path) -> None:
    store = open_store("s3://no-such-bucket-rb/prefix")
    f = tmp_path / "f"
    f.write_bytes(b"x")
    with pytest.raises(StoreError) as exc:
        store.put_file(f, "a/b.bin")
    assert "no-such-bucket-rb" in str(exc.value) and "NoSuchBucket" in str(exc.value)
    assert exc.value.fix and "bucket" in exc.value.fix


def test_s3_unreachable_endpoint_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from reasonbrain.registry.s3 import S3Store

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", DUMMY_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", DUMMY_SECRET)
    store = S3Store("bkt", endpoint_url="http://127.0.0.1:9", retries=1)
    with pytest.raises(StoreError, match="EndpointConnectionError") as exc:
        store.head("k")
    assert "s3://bkt/k" in str(exc.value) and "127.0.0.1:9" in str(exc.value)


def test_checksum_mismatch_is_retried_with_backoff() -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ChecksumMismatch("bad bytes", where="s3://b/k")
        return "ok"

    assert with_retries(flaky, attempts=4, what="s3://b/k") == "ok"
    assert len(calls) == 3
    calls.clear()

    def always() -> str:
        calls.append(1)
        raise ChecksumMismatch("always bad", where="s3://b/k")

    with pytest.raises(ChecksumMismatch):
        with_retries(always, attempts=2, what="s3://b/k")
    assert len(calls) == 2


def test_credentials_never_in_logs_or_errors(
    s3_env: str, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    from reasonbrain.registry.db import open_db
    from reasonbrain.registry.s3 import S3Store

    caplog.set_level(logging.DEBUG)  # every logger, botocore's included
    messages: list[str] = []
    f = tmp_path / "f"
    f.write_bytes(b"payload")
    bad = S3Store("missing-bucket-creds", "p")
    for op in (
        lambda: bad.put_file(f, "k"),
        lambda: bad.get_file("k", tmp_path / "o"),
        lambda: bad.list_objects(""),
        lambda: list(bad.list_objects("")),
        lambda: S3Store("b", endpoint_url="http://127.0.0.1:9", retries=1).head("k"),
    ):
        try:
            op()
        except StoreError as err:
            messages.append(str(err))
    db_secret = "pg-pass-" + hashlib.sha256(b"x").hexdigest()[:8]
    try:
        open_db(f"postgresql+psycopg://someone:{db_secret}@127.0.0.1:1/nodb")
    except Exception as err:  # a RegistryError is expected; anything else must not leak either
        messages.append(str(err))
    assert len(messages) == 5
    text = "\n".join(messages) + "\n" + caplog.text
    assert DUMMY_SECRET not in text
    assert db_secret not in text
    assert DUMMY_KEY_ID not in "\n".join(messages)
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("reasonbrain"))
    assert DUMMY_KEY_ID not in ours
