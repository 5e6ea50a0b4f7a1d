"""SHA-256 checksums of files and of whole model directories.

A model directory is described by its *manifest*: one :class:`FileEntry` (relative POSIX path,
size, sha256) per file, sorted by path. The directory digest is the sha256 of the manifest's
canonical text, so two directories have the same digest exactly when they hold the same bytes
under the same names. The registry stores both the per-file checksums (object metadata and DB)
and the digest (``model_versions.sha256``).

Paths in a manifest come from the database and the object store, which a reader does not control:
:func:`check_relpath` is applied to every one of them before anything is written under a target
directory (no absolute paths, no ``..``, no empty or ``.`` segments, no backslashes or NUL).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from reasonbrain.errors import StoreError

CHUNK = 8 * 1024 * 1024
_BAD_CHARS = re.compile(r"[\\\x00-\x1f]")


def check_relpath(path: str, *, where: str) -> str:
    """Return ``path`` if it is a safe relative POSIX path (it stays inside any directory it is
    joined to).

    Raises:
        StoreError: absolute, ``..``/``.``/empty segments, a drive, backslashes or control
            characters — a manifest row that was edited or damaged.
    """
    parts = path.split("/") if isinstance(path, str) else []
    if (
        not parts
        or path.startswith("/")
        or _BAD_CHARS.search(path)
        or any(p in ("", ".", "..") for p in parts)
        or ":" in parts[0]
    ):
        raise StoreError(
            f"unsafe file path {path!r} in a model manifest",
            where=where,
            fix="the registry record was edited or is damaged; re-register the model",
        )
    return path


@dataclass(frozen=True)
class FileEntry:
    """One file of a directory manifest.

    Attributes:
        path: path relative to the directory root, with ``/`` separators.
        size: size in bytes.
        sha256: hex sha256 of the bytes.
    """

    path: str
    size: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (stored in the DB and in the store's ``manifest.json``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FileEntry:
        """Inverse of :meth:`to_dict`."""
        return cls(path=str(d["path"]), size=int(d["size"]), sha256=str(d["sha256"]))


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 8 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def list_files(root: Path) -> list[str]:
    """Relative POSIX paths of every regular file under ``root``, sorted.

    Raises:
        StoreError: ``root`` is not a directory or holds no files.
    """
    root = Path(root)
    if not root.is_dir():
        raise StoreError("not a directory", where=str(root), fix="pass a model directory")
    paths = [p.relative_to(root).as_posix() for p in sorted(root.rglob("*")) if p.is_file()]
    if not paths:
        raise StoreError("directory holds no files", where=str(root), fix="pass a model directory")
    return paths


def scan_dir(root: Path) -> list[FileEntry]:
    """The manifest of every regular file under ``root``.

    Raises:
        StoreError: ``root`` is not a directory or holds no files.
    """
    root = Path(root)
    return [
        FileEntry(rel, (root / rel).stat().st_size, sha256_file(root / rel))
        for rel in list_files(root)
    ]


def manifest_digest(entries: list[FileEntry]) -> str:
    """sha256 of the canonical manifest text (``path\\tsize\\tsha256`` lines, sorted by path)."""
    text = "".join(
        f"{e.path}\t{e.size}\t{e.sha256}\n" for e in sorted(entries, key=lambda e: e.path)
    )
    return hashlib.sha256(text.encode()).hexdigest()
