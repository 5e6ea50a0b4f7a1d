"""The ``s3://bucket/prefix`` backend of the object store (boto3).

- Endpoint: ``endpoint_url`` argument, else boto3's own ``AWS_ENDPOINT_URL[_S3]``, else the
  ``REASONBRAIN_S3_ENDPOINT_URL`` setting. Credentials come from boto3's usual chain and are
  never formatted into messages (errors name the endpoint, bucket and key only).
- Large files use multipart upload/download through boto3's managed transfer
  (:class:`boto3.s3.transfer.TransferConfig`, part size from ``REASONBRAIN_S3_PART_SIZE_MB``).
- Integrity of uploads is checked on the stored bytes, with S3's own checksums:

  * a file below the part size is read once into memory, hashed (and compared with the expected
    sha256 when one is given) and sent with ``ChecksumSHA256`` = that digest, so S3 itself
    rejects a body that does not match (``BadDigest``);
  * a larger file is read once to compute its sha256 and the SHA-256 of each part
    (:func:`_digests`), then uploaded in parallel parts with ``ChecksumAlgorithm=SHA256``; S3
    checks every part against the SHA-256 botocore computes over the bytes it sends, and the
    composite checksum S3 reports for the object (the sha256 of its parts' digests) must equal
    the one computed from the bytes that were hashed. A file rewritten between hashing and
    upload (same size or not) fails with :class:`~reasonbrain.registry.store.ChecksumMismatch`
    instead of registering bytes that can never be pulled; an endpoint that reports no checksum
    gets the object read back and hashed instead.

  The sha256 is also stored as object metadata ``sha256`` and recomputed on every download.
- Transient failures (throttling, 5xx, dropped connections) are retried by botocore's
  ``standard`` retry mode with exponential backoff; checksum mismatches by
  :func:`~reasonbrain.registry.store.with_retries`.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from s3transfer.utils import ChunksizeAdjuster

from reasonbrain.errors import StoreError
from reasonbrain.registry.store import (
    ChecksumMismatch,
    ObjectInfo,
    ObjectStore,
    _tmp_beside,
    join_key,
    log,
    with_retries,
)

T = TypeVar("T")
META_SHA = "sha256"


class _HashingSink(io.RawIOBase):
    """A write-only, non-seekable file that hashes what it writes.

    Being non-seekable makes s3transfer hand over the (concurrently fetched) parts in order, so
    the sha256 is computed while the download runs instead of in a second pass over the file.
    """

    def __init__(self, fh: BinaryIO) -> None:
        super().__init__()
        self._fh = fh
        self._h = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, b: Any) -> int:
        self._h.update(b)
        return self._fh.write(b)

    def hexdigest(self) -> str:
        """sha256 of everything written so far."""
        return self._h.hexdigest()


def _digests(src: Path, part_size: int) -> tuple[str, list[bytes]]:
    """One read of ``src``: its sha256 and the SHA-256 digest of each ``part_size`` part."""
    whole = hashlib.sha256()
    parts: list[bytes] = []
    with open(src, "rb") as fh:
        while chunk := fh.read(part_size):
            whole.update(chunk)
            parts.append(hashlib.sha256(chunk).digest())
    return whole.hexdigest(), parts


def _composite(parts: list[bytes]) -> str:
    """S3's composite SHA-256 of a multipart object: base64(sha256(part digests))."""
    return base64.b64encode(hashlib.sha256(b"".join(parts)).digest()).decode()


def _b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


class S3Store(ObjectStore):
    """Objects under ``s3://bucket/prefix``.

    Args:
        bucket: the bucket name.
        prefix: key prefix inside the bucket ("" for the whole bucket).
        endpoint_url: S3-compatible endpoint; ``None`` uses AWS_ENDPOINT_URL or AWS itself.
        part_size: multipart threshold and part size in bytes (S3 minimum: 5 MiB).
        retries: total attempts for transient errors and checksum mismatches.
        max_concurrency: threads per file transfer.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        part_size: int = 8 * 1024 * 1024,
        retries: int = 4,
        max_concurrency: int = 10,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.uri = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.retries = retries
        env_endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        self.endpoint_url = endpoint_url or env_endpoint
        config = Config(
            retries={"max_attempts": retries, "mode": "standard"},
            connect_timeout=10,
            read_timeout=120,
            max_pool_connections=max(10, max_concurrency * 4),
            s3={"addressing_style": "path"} if self.endpoint_url else None,
        )
        self.client = boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint_url, config=config
        )
        self.transfer = TransferConfig(
            multipart_threshold=part_size,
            multipart_chunksize=part_size,
            max_concurrency=max_concurrency,
        )

    # ----------------------------------------------------------------- helpers
    def _key(self, key: str) -> str:
        return join_key(self.prefix, key)

    def uri_for(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def _where(self, key: str | None = None) -> str:
        where = self.uri_for(key) if key is not None else f"s3://{self.bucket}"
        return f"{where} at {self.endpoint_url}" if self.endpoint_url else where

    def _call(self, fn: Callable[[], T], key: str | None, action: str) -> T:
        """Run a boto3 call, turning its errors into StoreError naming bucket/key (never creds)."""
        try:
            try:
                return fn()
            except Boto3Error as err:  # S3UploadFailedError wraps the ClientError
                if isinstance(err.__context__, ClientError | BotoCoreError):
                    raise err.__context__ from None
                raise
        except NoCredentialsError:
            raise StoreError(
                f"no AWS credentials to {action}",
                where=self._where(key),
                fix="set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or an AWS profile",
            ) from None
        except ClientError as err:
            code = str(err.response.get("Error", {}).get("Code", "?"))
            status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("BadDigest", "InvalidDigest", "XAmzContentChecksumMismatch"):
                raise ChecksumMismatch(
                    f"S3 rejected the {action}: {code} (the body does not match its checksum)",
                    where=self._where(key),
                    fix="retry; if it persists the source file is changing during upload",
                ) from None
            if code in ("NoSuchBucket",):
                fix = "create the bucket (e.g. `reasonbrain infra up`) or fix REASONBRAIN_STORE_URI"
            elif code in ("404", "NoSuchKey", "NotFound"):
                fix = "the object is missing; run `reasonbrain registry gc` to find orphans"
            elif code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"):
                fix = "check the AWS credentials and the bucket policy"
            else:
                fix = "retry later; check the endpoint and bucket"
            raise StoreError(
                f"S3 {action} failed: {code} (HTTP {status})", where=self._where(key), fix=fix
            ) from None
        except (BotoCoreError, Boto3Error, OSError) as err:
            # BotoCoreError messages carry endpoint/bucket/key, never credentials
            raise StoreError(
                f"S3 {action} failed: {type(err).__name__}",
                where=self._where(key),
                fix="check that the endpoint is reachable (AWS_ENDPOINT_URL) and retry",
            ) from None

    @staticmethod
    def _to_info(
        key: str, size: int, meta: dict[str, str] | None, modified: datetime
    ) -> ObjectInfo:
        sha = (meta or {}).get(META_SHA)
        return ObjectInfo(key, int(size), sha, modified.astimezone(UTC))

    # --------------------------------------------------------------- interface
    def ensure_bucket(self) -> None:
        """Create the bucket when it does not exist (local stack, tests)."""

        def run() -> None:
            try:
                self.client.head_bucket(Bucket=self.bucket)
            except ClientError as err:
                if err.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                    raise
                self.client.create_bucket(Bucket=self.bucket)

        self._call(run, None, "create bucket")

    def head(self, key: str) -> ObjectInfo | None:
        def run() -> ObjectInfo | None:
            try:
                r = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            except ClientError as err:
                if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    return None
                raise
            return self._to_info(key, r["ContentLength"], r.get("Metadata"), r["LastModified"])

        return self._call(run, key, "head")

    def put_file(self, src: Path, key: str, *, sha256: str | None = None) -> ObjectInfo:
        def attempt() -> ObjectInfo:
            size = Path(src).stat().st_size
            if size < self.transfer.multipart_threshold:
                digest = self._put_small(src, key, sha256)
            else:
                digest = self._put_multipart(src, key, sha256, size)
            info = self.head(key)
            if info is None or info.sha256 != digest:
                raise ChecksumMismatch(
                    "uploaded object is missing or carries another sha256",
                    where=self._where(key),
                    fix="retry; another writer may be using the same key",
                )
            log.debug("uploaded %s (%d bytes)", self.uri_for(key), info.size)
            return info

        return with_retries(attempt, attempts=self.retries, what=self.uri_for(key))

    def _changed(self, key: str, detail: str) -> ChecksumMismatch:
        return ChecksumMismatch(
            f"the file changed while it was being stored ({detail})",
            where=self._where(key),
            fix="wait until the file is complete, then register again",
        )

    def _drop(self, key: str) -> None:
        try:
            self.delete([key])
        except StoreError as err:  # gc removes it with the rest of a failed registration
            log.warning("could not remove %s: %s", self.uri_for(key), err)

    def _put_small(self, src: Path, key: str, expected: str | None) -> str:
        """One PUT of the bytes we hashed; S3 verifies them against ``ChecksumSHA256``."""
        data = Path(src).read_bytes()
        got = hashlib.sha256(data).hexdigest()
        if expected is not None and got != expected:
            raise self._changed(key, f"sha256 {got[:12]}…, expected {expected[:12]}…")
        self._call(
            lambda: self.client.put_object(
                Bucket=self.bucket,
                Key=self._key(key),
                Body=data,
                ChecksumSHA256=_b64(got),
                Metadata={META_SHA: got},
            ),
            key,
            "upload",
        )
        return got

    def _put_multipart(self, src: Path, key: str, expected: str | None, size: int) -> str:
        """Parallel multipart upload, then S3's composite SHA-256 is compared with ours."""
        part_size = ChunksizeAdjuster().adjust_chunksize(self.transfer.multipart_chunksize, size)
        got, parts = _digests(Path(src), part_size)
        if expected is not None and got != expected:
            raise self._changed(key, f"sha256 {got[:12]}…, expected {expected[:12]}…")
        self._call(
            lambda: self.client.upload_file(
                str(src),
                self.bucket,
                self._key(key),
                ExtraArgs={"Metadata": {META_SHA: got}, "ChecksumAlgorithm": "SHA256"},
                Config=self.transfer,
            ),
            key,
            "upload",
        )
        head: Any = self._call(
            lambda: self.client.head_object(
                Bucket=self.bucket, Key=self._key(key), ChecksumMode="ENABLED"
            ),
            key,
            "head",
        )
        stored = head.get("ChecksumSHA256")
        if stored is None:  # an endpoint that keeps no checksums: read the object back
            self._verify_by_download(key, got)
            return got
        value, _, n = str(stored).partition("-")  # some endpoints add "-<parts>"
        if value != _composite(parts) or n not in ("", str(len(parts))):
            self._drop(key)  # no object may carry a sha256 its bytes do not have
            raise self._changed(key, "S3's checksum of the stored parts differs from ours")
        return got

    def _verify_by_download(self, key: str, expected: str) -> None:
        with open(os.devnull, "wb") as devnull:
            sink = _HashingSink(devnull)
            self._call(
                lambda: self.client.download_fileobj(
                    self.bucket, self._key(key), sink, Config=self.transfer
                ),
                key,
                "download",
            )
        if sink.hexdigest() != expected:
            self._drop(key)
            raise self._changed(key, "the object read back hashes differently")

    def get_file(self, key: str, dest: Path, *, sha256: str | None = None) -> ObjectInfo:
        dest = Path(dest)

        def attempt() -> ObjectInfo:
            # the DB's sha256 is the reference; only without it read the object's metadata
            info = None if sha256 else self.head(key)
            if sha256 is None and info is None:
                raise StoreError(
                    "object not found",
                    where=self._where(key),
                    fix="the object is missing; run `reasonbrain registry gc` to find orphans",
                )
            expected = sha256 or (info.sha256 if info else None)
            tmp = _tmp_beside(dest)
            try:
                with open(tmp, "wb") as fh:
                    sink = _HashingSink(fh)
                    self._call(
                        lambda: self.client.download_fileobj(
                            self.bucket, self._key(key), sink, Config=self.transfer
                        ),
                        key,
                        "download",
                    )
                got = sink.hexdigest()
                if expected is not None and got != expected:
                    raise ChecksumMismatch(
                        f"sha256 mismatch: expected {expected[:12]}…, got {got[:12]}…; "
                        "corrupted bytes refused",
                        where=self._where(key),
                        fix="the stored object is damaged; restore it or register the model again",
                    )
                os.replace(tmp, dest)
            finally:
                tmp.unlink(missing_ok=True)
            st = dest.stat()
            return info or ObjectInfo(key, st.st_size, got, datetime.now(UTC))

        return with_retries(attempt, attempts=self.retries, what=self.uri_for(key))

    def put_bytes(self, data: bytes, key: str) -> ObjectInfo:
        sha = hashlib.sha256(data).hexdigest()
        self._call(
            lambda: self.client.put_object(
                Bucket=self.bucket,
                Key=self._key(key),
                Body=data,
                ChecksumSHA256=_b64(sha),
                Metadata={META_SHA: sha},
            ),
            key,
            "put",
        )
        return ObjectInfo(key, len(data), sha, datetime.now(UTC))

    def get_bytes(self, key: str) -> bytes:
        r: Any = self._call(
            lambda: self.client.get_object(Bucket=self.bucket, Key=self._key(key)), key, "get"
        )
        return bytes(self._call(r["Body"].read, key, "get"))

    def list_objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        full = join_key(self.prefix, prefix)
        if full and (prefix.endswith("/") or not prefix):
            full += "/"
        strip = len(self.prefix) + 1 if self.prefix else 0
        pages = self._call(
            lambda: list(
                self.client.get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket, Prefix=full
                )
            ),
            prefix or None,
            "list",
        )
        for page in pages:
            for o in page.get("Contents", []):
                yield ObjectInfo(o["Key"][strip:], int(o["Size"]), None, o["LastModified"])

    def delete(self, keys: list[str]) -> None:
        """Delete objects in batches of 1,000.

        Raises:
            StoreError: S3 refused some keys (a batch delete answers 200 and lists per-key
                errors; they are checked, so callers never report deletions that did not happen).
        """
        failed: list[str] = []
        for i in range(0, len(keys), 1000):
            batch = [{"Key": self._key(k)} for k in keys[i : i + 1000]]
            r: Any = self._call(
                lambda b=batch: self.client.delete_objects(  # type: ignore[misc]
                    Bucket=self.bucket, Delete={"Objects": b, "Quiet": True}
                ),
                None,
                "delete",
            )
            failed += [f"{e.get('Key')} ({e.get('Code')})" for e in r.get("Errors") or []]
        if failed:
            raise StoreError(
                f"S3 refused to delete {len(failed)} of {len(keys)} object(s): "
                + ", ".join(failed[:5])
                + (" …" if len(failed) > 5 else ""),
                where=self._where(None),
                fix="check the bucket policy / object lock, then retry",
            )

    def presigned_url(self, key: str, expires_s: int = 3600) -> str:
        return str(
            self._call(
                lambda: self.client.generate_presigned_url(
                    "get_object",
                    Params={"Bucket": self.bucket, "Key": self._key(key)},
                    ExpiresIn=expires_s,
                ),
                key,
                "presign",
            )
        )
