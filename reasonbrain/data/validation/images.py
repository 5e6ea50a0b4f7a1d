"""Per-file image facts: inside the root, readable, decodes, mode, size, content hashes.

Validation judges columns of per-row facts; the expensive part of those facts is opening every
image once. This module does exactly that, per *file* (an image shared by several rows is probed
once), in parallel across processes for large datasets. It is deliberately light (PIL + stdlib)
because worker processes import it.
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from itertools import repeat
from typing import NamedTuple

from PIL import Image

from reasonbrain.data.schema import check_relative_path

#: Below this many files the pool start-up costs more than it saves.
_PARALLEL_MIN_FILES = 1024
#: Files per task sent to a worker (amortises pickling and scheduling).
_CHUNK = 256


class ImageFacts(NamedTuple):
    """What validation needs to know about one image file (a tuple: cheap to pickle).

    Exactly one stage can fail: ``path_error`` (absolute, escaping the root, also through a
    symlink) → ``file_error`` (missing, a directory, unreadable) → ``decode_error`` (truncated,
    not an image). Later fields are set only when every stage before them passed.
    """

    rel: str
    path_error: str | None = None
    file_error: str | None = None
    decode_error: str | None = None
    mode: str | None = None
    width: int | None = None
    height: int | None = None
    sha256: str | None = None
    """SHA-256 of the file bytes."""
    pixels_sha256: str | None = None
    """SHA-256 of the decoded pixels (mode, size, raw bytes): equal for re-encoded copies."""


def _real_path(root: str, rel: str, dirs: dict[str, str]) -> str:
    """``realpath(root/rel)``, resolving each directory once (``dirs`` caches them).

    Same result as :func:`os.path.realpath` on the whole path, at a fraction of its cost when
    many files share a directory: only the file itself is checked for being a symlink.
    """
    parent, name = os.path.split(rel)
    real_parent = dirs.get(parent)
    if real_parent is None:
        real_parent = dirs[parent] = os.path.realpath(os.path.join(root, parent))
    full = os.path.join(real_parent, name)
    return os.path.realpath(full) if os.path.islink(full) or name in ("", ".", "..") else full


def probe_image(root: str, rel: str, dirs: dict[str, str] | None = None) -> ImageFacts:
    """Probe one image referenced as ``rel`` inside the dataset directory ``root``.

    Args:
        root: the dataset directory, already made absolute with :func:`os.path.realpath`.
        rel: the path as written in the manifest.
        dirs: a cache of resolved directories shared by calls with the same ``root``.

    Returns:
        The facts; never raises for a bad file (the failure is recorded instead).
    """
    try:
        check_relative_path(rel)
    except ValueError as err:
        return ImageFacts(rel, path_error=str(err))
    full = _real_path(root, rel, {} if dirs is None else dirs)
    if not full.startswith(root.rstrip(os.sep) + os.sep):
        return ImageFacts(rel, path_error=f"{rel!r} resolves outside the dataset root (symlink?)")
    try:
        with open(full, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        return ImageFacts(rel, file_error=f"{rel}: file not found")
    except IsADirectoryError:
        return ImageFacts(rel, file_error=f"{rel}: is a directory, not an image file")
    except OSError as err:
        return ImageFacts(rel, file_error=f"{rel}: unreadable ({err.strerror or err})")
    sha = hashlib.sha256(data).hexdigest()
    try:
        # verify() checks the container (chunk CRCs, truncation) without decoding; load() then
        # decodes every pixel. Both are needed: each catches damage the other misses.
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            mode, (width, height) = im.mode, im.size
            header = f"{mode}:{width}x{height}:".encode()
            pixels = hashlib.sha256(header + im.tobytes()).hexdigest()
    except Exception as err:  # PIL raises many types (OSError, SyntaxError …)
        return ImageFacts(rel, sha256=sha, decode_error=f"{rel}: does not decode ({err})")
    return ImageFacts(rel, None, None, None, mode, width, height, sha, pixels)


def _start_method() -> str:
    """``fork`` while this process has a single thread, else ``forkserver``.

    fork starts workers instantly (they inherit the imported modules) and needs no
    ``if __name__ == "__main__"`` guard in the caller's script, but forking a process that runs
    other threads can deadlock a child; forkserver is safe then.
    """
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return "fork"
    return "forkserver"


def probe_chunk(root: str, rels: Sequence[str]) -> list[ImageFacts]:
    """Probe a chunk of files (one worker task)."""
    dirs: dict[str, str] = {}
    return [probe_image(root, rel, dirs) for rel in rels]


def probe_images(
    root: str,
    rels: Sequence[str],
    *,
    workers: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, ImageFacts]:
    """Probe every distinct file in ``rels``, in parallel when there are many.

    Args:
        root: the dataset directory (made absolute here).
        rels: manifest paths; duplicates are probed once.
        workers: processes (default: all cores); ``1`` probes in this process.
        on_progress: called with the number of files just finished.

    Returns:
        ``{rel: facts}`` for every distinct ``rel``.
    """
    root = os.path.realpath(root)
    unique = list(dict.fromkeys(rels))
    n_workers = workers or os.cpu_count() or 1
    chunks = [unique[i : i + _CHUNK] for i in range(0, len(unique), _CHUNK)]
    out: dict[str, ImageFacts] = {}
    if n_workers <= 1 or len(unique) < _PARALLEL_MIN_FILES:
        for chunk in chunks:
            out.update((f.rel, f) for f in probe_chunk(root, chunk))
            if on_progress:
                on_progress(len(chunk))
        return out
    ctx = multiprocessing.get_context(_start_method())
    with ProcessPoolExecutor(max_workers=min(n_workers, len(chunks)), mp_context=ctx) as pool:
        for done in pool.map(probe_chunk, repeat(root), chunks):
            out.update((f.rel, f) for f in done)
            if on_progress:
                on_progress(len(done))
    return out
