"""Build an output directory next to its destination, then swap it in.

Generation and import write many files; a crash half-way must not leave a half-written dataset
where a complete one (or nothing) was before. Everything is written to a hidden sibling
directory, and only a finished directory is renamed into place.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reasonbrain.errors import DatasetError


def check_output_dir(out: Path, force: bool) -> None:
    """Refuse to replace a non-empty directory unless ``force``; refuse a file path.

    Raises:
        DatasetError: ``out`` is a file, or a non-empty directory and ``force`` is false.
    """
    if out.exists() and not out.is_dir():
        raise DatasetError("output path exists and is not a directory", where=str(out))
    if out.is_dir() and any(out.iterdir()) and not force:
        raise DatasetError(
            "output directory is not empty",
            where=str(out),
            fix="choose another --out or pass --force to replace it",
        )


@contextmanager
def staged_dir(out: Path | str, force: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary directory; on success it replaces ``out`` atomically.

    On an exception the temporary directory is removed and ``out`` is untouched.
    """
    dest = Path(out)
    check_output_dir(dest, force)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.staging-", dir=dest.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old: Path | None = None
    if dest.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
        old.rmdir()
        dest.rename(old)
    tmp.rename(dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
