"""Write the images an import needs into the staging directory, checking each one decodes.

Copies (or hard links) and decode checks run on a small thread pool: file copies and PIL's
decoders release the GIL, so threads overlap I/O and decoding without the start-up and pickling
cost of processes. At most ``workers * 8`` files are in flight, which bounds the memory that
embedded image bytes can take. Errors surface in submission order, so the error a user sees for
a broken source is the same on every run.
"""

from __future__ import annotations

import os
import shutil
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Literal

from reasonbrain.data.importers.base import RESERVED_NAMES, ImageSource
from reasonbrain.data.schema import check_relative_path
from reasonbrain.errors import ImportFormatError


def _decode_check(path: Path, origin: str) -> None:
    """Fully decode ``path``; a truncated or non-image file raises ImportFormatError."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ImportFormatError(
            f"image does not decode ({reason})",
            where=origin,
            fix="replace the corrupt or truncated image in the source, or remove the example",
        ) from None


def _write_mask(dest: Path, source: ImageSource) -> None:
    """Write a benchmark mask as the contract's single-channel PNG (255 inside, 0 outside)."""
    import io

    import numpy as np
    from PIL import Image

    fp: io.BytesIO | Path
    if source.data is not None:
        fp = io.BytesIO(source.data)
    else:
        assert source.path is not None
        fp = source.path
    try:
        with Image.open(fp) as im:
            im.load()
            if source.mask == "transparent" and "A" in im.getbands():
                inside = np.asarray(im.getchannel("A")) < 128
            else:
                inside = np.asarray(im.convert("L")) > 127
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as err:
        raise ImportFormatError(
            f"mask does not decode ({err})", where=source.origin, fix="restore the mask file"
        ) from None
    with dest.open("xb") as fh:
        Image.fromarray(inside.astype(np.uint8) * 255, mode="L").save(fh, format="PNG")


def _write_one(
    dest: Path, source: ImageSource, link: Literal["copy", "hardlink"], verify: bool
) -> int:
    """Materialise one file; returns its size in bytes."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if source.mask is not None:
        _write_mask(dest, source)
    elif source.data is not None:
        with dest.open("xb") as fh:
            fh.write(source.data)
    else:
        assert source.path is not None
        linked = False
        if link == "hardlink":
            try:
                os.link(source.path, dest)
                linked = True
            except OSError:  # other file system, or links not allowed: fall back to a copy
                linked = False
        if not linked:
            # copyfile (not copy2): the output gets its own fresh permissions, never the
            # source's; on Linux it copies in the kernel (sendfile).
            shutil.copyfile(source.path, dest)
    if verify:
        _decode_check(dest, source.origin)
    return dest.stat().st_size


class Materialiser:
    """Collects ``dest → source`` files for one staging directory and writes them in parallel.

    The same destination may be requested many times (e.g. MagicBrush turn k's input is turn
    k-1's output) as long as it is the same source; two different sources for one destination
    are an error.

    Use as a context manager: on an exception, queued work is cancelled and running work is
    awaited, so nothing writes into the staging directory after it is removed.
    """

    def __init__(
        self,
        root: Path,
        *,
        link: Literal["copy", "hardlink"] = "copy",
        verify: bool = True,
        workers: int = 4,
    ) -> None:
        self.root = root
        self.link: Literal["copy", "hardlink"] = link
        self.verify = verify
        self.files = 0
        self.bytes = 0
        self._max_inflight = max(1, workers) * 8
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="import")
        self._pending: deque[Future[int]] = deque()
        self._seen: dict[str, tuple[tuple[str, str, str], str]] = {}

    def __enter__(self) -> Materialiser:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._pool.shutdown(wait=True, cancel_futures=exc is not None)

    def add(self, dest: str, source: ImageSource) -> None:
        """Schedule ``source`` to be written at ``root/dest`` (once).

        Raises:
            ImportFormatError: ``dest`` is not a safe relative path, is a reserved name, or is
                claimed by two different sources; or an earlier file failed.
        """
        try:
            check_relative_path(dest)
        except ValueError as err:
            raise ImportFormatError(f"bad output path: {err}", where=source.origin) from None
        if dest in RESERVED_NAMES or PurePosixPath(dest).name.startswith("."):
            raise ImportFormatError(
                f"image path {dest!r} collides with a reserved or hidden name",
                where=source.origin,
                fix="keep images under a sub-directory such as images/",
            )
        key = source.key()
        seen = self._seen.get(dest)
        if seen is not None:
            if seen[0] != key:
                raise ImportFormatError(
                    f"two different images would be written to {dest!r}",
                    where=f"{seen[1]} and {source.origin}",
                    fix="ids must be unique after sanitising; rename one of the examples",
                )
            return
        self._seen[dest] = (key, source.origin)
        self._pending.append(
            self._pool.submit(_write_one, self.root / dest, source, self.link, self.verify)
        )
        while len(self._pending) > self._max_inflight:
            self._collect(self._pending.popleft())

    def finish(self) -> None:
        """Wait for every scheduled file, oldest first; re-raise the first failure."""
        while self._pending:
            self._collect(self._pending.popleft())

    def _collect(self, fut: Future[int]) -> None:
        self.bytes += fut.result()
        self.files += 1
