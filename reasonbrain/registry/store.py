"""Object store: one small interface, two backends chosen by URI (issue 6, part 1).

- ``file:///path`` — :class:`FileStore`, the embedded default under ``.reasonbrain/store``.
- ``s3://bucket/prefix`` — :class:`~reasonbrain.registry.s3.S3Store` (boto3; AWS S3 or any
  S3-compatible endpoint given by ``AWS_ENDPOINT_URL`` or ``REASONBRAIN_S3_ENDPOINT_URL``).

Keys are ``/``-separated paths relative to the store root. Every ``put_file`` records the sha256 of
the bytes next to the object (S3 object metadata; a sidecar file for ``file://``) and checks the
stored copy; every ``get_file`` hashes what it received, refuses a mismatch and never leaves a
partial file at the destination (bytes go to a temporary name that is renamed when verified).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlparse

from reasonbrain.errors import StoreError
from reasonbrain.registry.checksums import CHUNK, FileEntry, list_files, sha256_file

log = logging.getLogger("reasonbrain.registry")
T = TypeVar("T")
A = TypeVar("A")


@dataclass(frozen=True)
class ObjectInfo:
    """What the store knows about one object.

    Attributes:
        key: key relative to the store root.
        size: size in bytes.
        sha256: the recorded sha256 (``None`` when the object carries none).
        modified: last modification time (UTC).
    """

    key: str
    size: int
    sha256: str | None
    modified: datetime


class ChecksumMismatch(StoreError):
    """Bytes read or written do not match their recorded sha256 (retried, then raised)."""


def with_retries(fn: Callable[[], T], *, attempts: int, what: str) -> T:
    """Call ``fn`` until it succeeds, retrying :class:`ChecksumMismatch` with backoff.

    Transport-level retries (throttling, 5xx, dropped connections) are botocore's job; this
    loop covers what botocore cannot see: bytes that arrived but hash wrong.
    """
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except ChecksumMismatch:
            if attempt == attempts:
                raise
            delay = min(0.1 * 2 ** (attempt - 1), 2.0)
            log.warning(
                "%s: checksum mismatch, retry %d/%d in %.1fs", what, attempt, attempts, delay
            )
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def join_key(*parts: str) -> str:
    """Join key parts with ``/``, ignoring empty parts and stray slashes."""
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


class ObjectStore(ABC):
    """The interface both backends implement; directory helpers are built on the file methods."""

    #: root URI without credentials (safe to print and to store in the DB)
    uri: str
    retries: int = 4

    def uri_for(self, key: str) -> str:
        """Full URI of ``key``."""
        return join_key(self.uri, key) if not self.uri.endswith("/") else self.uri + key

    @abstractmethod
    def put_file(self, src: Path, key: str, *, sha256: str | None = None) -> ObjectInfo:
        """Upload ``src`` to ``key`` and verify the stored copy; returns its info.

        The stored bytes are verified against ``sha256`` when given (else against the digest
        of the file as the store read it), and the returned ``sha256`` is theirs: a file that
        changes during the upload fails with :class:`ChecksumMismatch`, it never leaves an
        object whose recorded digest its bytes do not have.
        """

    @abstractmethod
    def get_file(self, key: str, dest: Path, *, sha256: str | None = None) -> ObjectInfo:
        """Download ``key`` to ``dest`` (atomically), verifying against ``sha256`` (or the
        recorded checksum when ``None``).

        Raises:
            StoreError: the object is missing; ChecksumMismatch: the bytes do not verify.
        """

    @abstractmethod
    def put_bytes(self, data: bytes, key: str) -> ObjectInfo:
        """Store a small object (manifests)."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """Read a small object."""

    @abstractmethod
    def head(self, key: str) -> ObjectInfo | None:
        """Info of ``key``, or ``None`` when it does not exist."""

    @abstractmethod
    def list_objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``."""

    @abstractmethod
    def delete(self, keys: list[str]) -> None:
        """Delete objects (missing keys are ignored)."""

    @abstractmethod
    def presigned_url(self, key: str, expires_s: int = 3600) -> str:
        """A URL that reads ``key`` without credentials (``file://`` URI for the file store)."""

    def list_prefixes(self, prefix: str) -> set[str]:
        """The distinct next-level "directories" below ``prefix``."""
        base = prefix.rstrip("/") + "/"
        return {
            o.key[len(base) :].split("/", 1)[0]
            for o in self.list_objects(base)
            if "/" in o.key[len(base) :]
        }

    def put_dir(
        self, src: Path, prefix: str, entries: list[FileEntry], *, workers: int = 4
    ) -> list[ObjectInfo]:
        """Upload the files of a manifest under ``prefix`` (a few files in parallel)."""

        def one(e: FileEntry) -> ObjectInfo:
            return self.put_file(src / e.path, join_key(prefix, e.path), sha256=e.sha256)

        return _run_all(one, entries, workers)

    def put_tree(self, src: Path, prefix: str, *, workers: int = 4) -> list[FileEntry]:
        """Upload every file under ``src``; returns the manifest (sorted by path).

        Each entry's size and sha256 are those the store verified for the stored object (the
        store hashes each file inside its upload worker, so hashing one file overlaps the upload
        of others instead of costing a separate pass over the whole directory first).
        """
        src = Path(src)
        paths = sorted(list_files(src), key=lambda rel: -(src / rel).stat().st_size)

        def one(rel: str) -> FileEntry:
            info = self.put_file(src / rel, join_key(prefix, rel))
            assert info.sha256 is not None  # put_file always records one
            return FileEntry(rel, info.size, info.sha256)

        return sorted(_run_all(one, paths, workers), key=lambda e: e.path)

    def get_dir(
        self, prefix: str, dest: Path, entries: list[FileEntry], *, workers: int = 4
    ) -> None:
        """Download a manifest's files from ``prefix`` into ``dest``, verifying every sha256."""

        def one(e: FileEntry) -> ObjectInfo:
            return self.get_file(join_key(prefix, e.path), dest / e.path, sha256=e.sha256)

        _run_all(one, entries, workers)


def _run_all(fn: Callable[[A], T], entries: list[A], workers: int) -> list[T]:
    """Apply ``fn`` to every entry on a few threads; the first failure cancels what has not
    started yet (a failed registration should not keep uploading) and is re-raised."""
    pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(entries))))
    try:
        futures = [pool.submit(fn, e) for e in entries]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for f in done:
            if f.exception() is not None:
                pool.shutdown(wait=True, cancel_futures=True)
                raise f.exception()  # type: ignore[misc]
        return [f.result() for f in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _tmp_beside(dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    os.close(fd)
    return Path(name)


def copy_hashing(src: Path, dest: Path) -> str:
    """Copy ``src`` to ``dest`` (a temporary name) and return the sha256 of the bytes written."""
    h = hashlib.sha256()
    with open(src, "rb") as fi, open(dest, "wb") as fo:
        while chunk := fi.read(CHUNK):
            h.update(chunk)
            fo.write(chunk)
        fo.flush()
        os.fsync(fo.fileno())
    return h.hexdigest()


class FileStore(ObjectStore):
    """Objects as files under a root directory; checksums in a ``.sha256/`` sidecar tree.

    Args:
        root: the store directory (created on first write).
        retries: attempts when a copy does not verify.
    """

    SIDECAR = ".sha256"

    def __init__(self, root: Path, *, retries: int = 4) -> None:
        self.root = Path(root).resolve()
        self.uri = self.root.as_uri()
        self.retries = retries

    def uri_for(self, key: str) -> str:
        return (self.root / key).as_uri()

    def _path(self, key: str) -> Path:
        p = (self.root / key).resolve()
        if self.root not in p.parents:
            raise StoreError("key escapes the store root", where=key)
        return p

    def _sidecar(self, key: str) -> Path:
        return self.root / self.SIDECAR / key

    def _info(self, key: str, path: Path) -> ObjectInfo:
        st = path.stat()
        side = self._sidecar(key)
        sha = side.read_text().strip() if side.is_file() else None
        return ObjectInfo(key, st.st_size, sha, datetime.fromtimestamp(st.st_mtime, UTC))

    def put_file(self, src: Path, key: str, *, sha256: str | None = None) -> ObjectInfo:
        expected = sha256 or sha256_file(src)
        dest = self._path(key)

        def attempt() -> ObjectInfo:
            tmp = _tmp_beside(dest)
            try:
                got = copy_hashing(src, tmp)
                if got != expected:
                    raise ChecksumMismatch(
                        f"sha256 mismatch writing: expected {expected[:12]}…, got {got[:12]}…",
                        where=self.uri_for(key),
                        fix="the source file changed while it was being stored; retry",
                    )
                side = self._sidecar(key)
                side.parent.mkdir(parents=True, exist_ok=True)
                side.write_text(expected)
                os.replace(tmp, dest)
            finally:
                tmp.unlink(missing_ok=True)
            return self._info(key, dest)

        return with_retries(attempt, attempts=self.retries, what=self.uri_for(key))

    def get_file(self, key: str, dest: Path, *, sha256: str | None = None) -> ObjectInfo:
        src = self._path(key)
        if not src.is_file():
            raise StoreError("object not found", where=self.uri_for(key))
        info = self._info(key, src)
        expected = sha256 or info.sha256

        def attempt() -> ObjectInfo:
            tmp = _tmp_beside(Path(dest))
            try:
                got = copy_hashing(src, tmp)
                if expected is not None and got != expected:
                    raise ChecksumMismatch(
                        f"sha256 mismatch: expected {expected[:12]}…, got {got[:12]}…; "
                        "corrupted bytes refused",
                        where=self.uri_for(key),
                        fix="the stored object is damaged; restore it or register the model again",
                    )
                os.replace(tmp, dest)
            finally:
                tmp.unlink(missing_ok=True)
            return info

        return with_retries(attempt, attempts=self.retries, what=self.uri_for(key))

    def put_bytes(self, data: bytes, key: str) -> ObjectInfo:
        dest = self._path(key)
        tmp = _tmp_beside(dest)
        try:
            tmp.write_bytes(data)
            side = self._sidecar(key)
            side.parent.mkdir(parents=True, exist_ok=True)
            side.write_text(hashlib.sha256(data).hexdigest())
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return self._info(key, dest)

    def get_bytes(self, key: str) -> bytes:
        p = self._path(key)
        if not p.is_file():
            raise StoreError("object not found", where=self.uri_for(key))
        return p.read_bytes()

    def head(self, key: str) -> ObjectInfo | None:
        p = self._path(key)
        return self._info(key, p) if p.is_file() else None

    def list_objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        if not self.root.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(self.root):
            rel_dir = Path(dirpath).relative_to(self.root).as_posix()
            if rel_dir == ".":
                dirnames[:] = [d for d in dirnames if d != self.SIDECAR]
                rel_dir = ""
            dirnames.sort()
            for name in sorted(filenames):
                key = join_key(rel_dir, name)
                if key.startswith(prefix) and not name.endswith(".part"):
                    yield self._info(key, Path(dirpath) / name)

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            self._path(key).unlink(missing_ok=True)
            self._sidecar(key).unlink(missing_ok=True)
        # prune directories left empty (both trees)
        for top in (self.root, self.root / self.SIDECAR):
            for key in keys:
                d = (top / key).parent
                while d != top and d.is_dir() and not any(d.iterdir()):
                    d.rmdir()
                    d = d.parent

    def presigned_url(self, key: str, expires_s: int = 3600) -> str:
        return self.uri_for(key)

    def destroy(self) -> None:
        """Remove the whole store directory (tests)."""
        shutil.rmtree(self.root, ignore_errors=True)


def open_store(uri: str | None = None, *, settings: object | None = None) -> ObjectStore:
    """Open the object store named by ``uri`` (default: ``settings.resolved_store_uri()``).

    Raises:
        StoreError: an unsupported scheme or a malformed URI.
    """
    from reasonbrain.config import Settings, get_settings

    s = settings if isinstance(settings, Settings) else get_settings()
    uri = uri or s.resolved_store_uri()
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise StoreError("file:// URIs must be local", where=uri, fix="use file:///abs/path")
        return FileStore(Path(unquote(parsed.path)), retries=s.store_retries)
    if parsed.scheme == "s3":
        from reasonbrain.registry.s3 import S3Store

        if not parsed.netloc:
            raise StoreError("s3:// URI has no bucket", where=uri, fix="use s3://bucket/prefix")
        return S3Store(
            parsed.netloc,
            parsed.path.strip("/"),
            endpoint_url=s.s3_endpoint_url,
            part_size=s.s3_part_size_mb * 1024 * 1024,
            retries=s.store_retries,
        )
    raise StoreError(
        f"unsupported object-store scheme {parsed.scheme!r}",
        where=uri,
        fix="use file:///path or s3://bucket/prefix",
    )
