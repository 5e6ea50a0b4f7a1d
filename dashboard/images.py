"""Images from the object store, fetched in parallel and cached in memory.

Evaluation samples name their images by full URI (``file://…`` or ``s3://bucket/…``). A URI
under the configured store is read through it; any other is read through a store opened at its
own root (its directory for ``file://``, its bucket for ``s3://``), so a database whose images
live in another bucket still shows them. Stored images are immutable (an evaluation writes them
once under its key), so the cache keys on the URI and the display size; it is a byte-budgeted
LRU with a one-hour expiry, shared by every session of the server (``st.cache_resource``), and
a page's misses are fetched on a few threads at once instead of one after another. Failures
(missing object, undecodable bytes, unreachable store) are reported per image and never cached,
so they recover as soon as the object is there.
"""

from __future__ import annotations

import io
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote, urlparse

from PIL import Image, UnidentifiedImageError

from reasonbrain.errors import ReasonBrainError
from reasonbrain.registry.store import ObjectStore

#: how many images one page fetches at once
FETCH_THREADS = 8


@dataclass(frozen=True)
class ImageProblem:
    """Why an image cannot be shown (one line)."""

    uri: str
    reason: str


def split_uri(uri: str) -> tuple[str, str]:
    """``(root URI, key)`` of an object URI: the parent directory for ``file://``, the bucket
    for ``s3://``.

    Raises:
        ValueError: another scheme, or no key.
    """
    p = urlparse(uri)
    if p.scheme == "file":
        path = PurePosixPath(unquote(p.path))
        if not path.name:
            raise ValueError(f"no file name in {uri!r}")
        return path.parent.as_uri(), path.name
    if p.scheme == "s3":
        key = p.path.lstrip("/")
        if not p.netloc or not key:
            raise ValueError(f"no bucket or key in {uri!r}")
        return f"s3://{p.netloc}", key
    raise ValueError(f"unsupported image URI scheme {p.scheme!r} in {uri!r}")


def display_png(data: bytes, side: int | None) -> bytes:
    """Bytes to show for an image whose longer side becomes ``side`` pixels.

    Larger images are downscaled (Lanczos); small ones (ReasonSynth's 32–64 px) are upscaled by
    a whole factor with nearest-neighbour, so pixels stay crisp instead of being blurred by the
    browser. ``side=None`` returns the stored bytes unchanged.

    Raises:
        ValueError: the bytes are not a decodable image.
    """
    if side is None:
        return data
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            img = im.convert("RGBA") if im.mode in ("RGBA", "LA", "P") else im.convert("RGB")
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"not a decodable image ({type(err).__name__})") from None
    longest = max(img.size)
    if longest > side:
        img.thumbnail((side, side), Image.Resampling.LANCZOS)
    elif longest < side:
        factor = side // longest
        if factor > 1:
            img = img.resize((img.width * factor, img.height * factor), Image.Resampling.NEAREST)
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=False)
    return out.getvalue()


class ImageCache:
    """A byte-budgeted LRU of display-ready image bytes, keyed by (URI, side).

    Args:
        store: the configured object store (URIs under it are read through it).
        opener: opens a store for another root URI (default:
            :func:`reasonbrain.registry.store.open_store`).
        budget_bytes: the most bytes kept; 0 disables caching.
        ttl_s: an entry older than this is fetched again (bounds staleness should an object
            ever be rewritten under the same URI).
    """

    def __init__(
        self,
        store: ObjectStore,
        *,
        opener: Callable[[str], ObjectStore] | None = None,
        budget_bytes: int = 256 * 1024 * 1024,
        ttl_s: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from reasonbrain.registry.store import open_store

        self.store = store
        self.root = store.uri_for("").rstrip("/") + "/"
        self._opener = opener or open_store
        self._stores: dict[str, ObjectStore] = {}
        self.budget = budget_bytes
        self.ttl_s = ttl_s
        self._clock = clock
        self._lru: OrderedDict[tuple[str, int | None], tuple[float, bytes]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    # ------------------------------------------------------------------------- reading
    def locate(self, uri: str) -> tuple[ObjectStore, str]:
        """The store that holds ``uri`` and the key inside it.

        Raises:
            ValueError: a URI this dashboard cannot read.
        """
        if uri.startswith(self.root):
            return self.store, uri[len(self.root) :]
        root, key = split_uri(uri)
        with self._lock:
            store = self._stores.get(root)
        if store is None:
            store = self._opener(root)
            with self._lock:
                self._stores.setdefault(root, store)
        return store, key

    def _fetch(self, uri: str, side: int | None) -> bytes | ImageProblem:
        try:
            store, key = self.locate(uri)
            return display_png(store.get_bytes(key), side)
        except ReasonBrainError as err:
            return ImageProblem(uri, err.what)
        except ValueError as err:
            return ImageProblem(uri, str(err))
        except OSError as err:
            return ImageProblem(uri, f"cannot read: {type(err).__name__}")

    def url(self, uri: str, expires_s: int = 3600) -> str | None:
        """A browser-usable download URL (presigned for S3); ``None`` for ``file://`` objects,
        which the dashboard serves itself."""
        if not uri.startswith("s3://"):
            return None
        try:
            store, key = self.locate(uri)
            return store.presigned_url(key, expires_s)
        except (ReasonBrainError, ValueError):
            return None

    # ------------------------------------------------------------------------- caching
    def _get_cached(self, key: tuple[str, int | None]) -> bytes | None:
        with self._lock:
            entry = self._lru.get(key)
            if entry is None:
                return None
            stored_at, data = entry
            if self._clock() - stored_at > self.ttl_s:
                del self._lru[key]
                self._size -= len(data)
                return None
            self._lru.move_to_end(key)
            self.hits += 1
            return data

    def _put(self, key: tuple[str, int | None], data: bytes) -> None:
        if len(data) > self.budget:
            return
        with self._lock:
            old = self._lru.pop(key, None)
            if old is not None:
                self._size -= len(old[1])
            self._lru[key] = (self._clock(), data)
            self._size += len(data)
            while self._size > self.budget and self._lru:
                _, (_, dropped) = self._lru.popitem(last=False)
                self._size -= len(dropped)

    @property
    def size_bytes(self) -> int:
        """Bytes held now."""
        with self._lock:
            return self._size

    def get(self, uri: str, side: int | None = None) -> bytes | ImageProblem:
        """One image (see :meth:`get_many`)."""
        return self.get_many([uri], side)[uri]

    def get_many(
        self, uris: Iterable[str], side: int | None = None
    ) -> dict[str, bytes | ImageProblem]:
        """Display bytes for each URI (or why not), fetching the misses concurrently."""
        wanted = list(dict.fromkeys(uris))
        out: dict[str, bytes | ImageProblem] = {}
        missing: list[str] = []
        for uri in wanted:
            data = self._get_cached((uri, side))
            if data is None:
                missing.append(uri)
            else:
                out[uri] = data
        with self._lock:
            self.misses += len(missing)
        if len(missing) == 1:
            out[missing[0]] = self._fetch(missing[0], side)
        elif missing:
            with ThreadPoolExecutor(max_workers=min(FETCH_THREADS, len(missing))) as pool:
                for uri, res in zip(
                    missing, pool.map(lambda u: self._fetch(u, side), missing), strict=True
                ):
                    out[uri] = res
        for uri in missing:
            res = out[uri]
            if isinstance(res, bytes):
                self._put((uri, side), res)
        return {uri: out[uri] for uri in wanted}
