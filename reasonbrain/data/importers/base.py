"""The importer interface: one small class per source format.

An importer only *reads* its source and describes what the imported dataset should contain: a
stream of :class:`ImportItem` (the split, the manifest :class:`~reasonbrain.data.schema.Record`
with paths already relative to the output directory, and the image files to materialise there).
Copying, decoding checks, de-duplication, manifests and the atomic swap of the output directory
are done once for every format by :mod:`reasonbrain.data.importers.runner`.

Adding a format = one module with an :class:`Importer` subclass (and, if it has settings, an
:class:`ImportOptions` subclass) + one entry in ``reasonbrain.data.importers.IMPORTERS``.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from reasonbrain.data.schema import SPLITS, Record, check_relative_path
from reasonbrain.errors import ImportFormatError

#: File suffixes treated as images (lower case).
IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
)

#: Names at the top of an imported dataset that images may not take.
RESERVED_NAMES: frozenset[str] = frozenset({f"{s}.jsonl" for s in SPLITS} | {"import_info.json"})

#: Spellings of split names found in public datasets → the manifest's split names.
SPLIT_ALIASES: dict[str, str] = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
}


class ImportOptions(BaseModel):
    """Settings every importer understands (format-specific ones extend this model).

    Attributes:
        link: ``copy`` (default) writes independent copies. ``hardlink`` links each image file
            when source and output share a file system (falling back to a copy otherwise); it is
            fast and uses no space, but the output then *shares* the source's files: a tool that
            later rewrites or ``chmod``s an output image in place (DVC protecting its cache, an
            editor) changes the source too. Use it only for read-only consumers.
        verify_images: decode every image fully (catches truncated/corrupt files) before the
            import is accepted.
        workers: threads that copy and decode images (PIL releases the GIL while decoding).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    link: Literal["copy", "hardlink"] = "copy"
    verify_images: bool = True
    workers: int = Field(4, ge=1, le=64)


OptT = TypeVar("OptT", bound=ImportOptions)


@dataclass(frozen=True)
class ImageSource:
    """Where one output image's bytes come from: a file inside the source, or embedded bytes.

    Attributes:
        origin: where the image is referenced in the source (for error messages).
        path: a file to copy (already checked to lie inside the source).
        data: bytes embedded in a table cell (parquet binary / HF ``{"bytes": …}``).
        mask: when set, the image is an edit-region mask in a benchmark's own convention and is
            written as the dataset contract's single-channel PNG (255 inside, 0 outside):
            ``"grey"`` — inside where the grey level is > 127 (Reason-Edit's JPEG masks);
            ``"transparent"`` — inside where alpha < 128, as in DALL·E-2-style RGBA edit masks
            (MagicBrush); an image without alpha falls back to ``"grey"``.
    """

    origin: str
    path: Path | None = None
    data: bytes | None = None
    mask: Literal["grey", "transparent"] | None = None

    def key(self) -> tuple[str, str, str]:
        """Identity used to tell whether two references are the same image."""
        if self.path is not None:
            return ("path", str(self.path), self.mask or "")
        return ("bytes", hashlib.sha256(self.data or b"").hexdigest(), self.mask or "")


@dataclass(frozen=True)
class ImportItem:
    """One imported example: its split, its manifest record and the files it needs.

    Attributes:
        split: ``train``, ``val`` or ``test``.
        record: the manifest line; every path in it is relative to the output directory.
        files: output-relative path → where its bytes come from. The record's images (and any
            extra files such as masks that ``meta`` points at) must all be listed here.
        origin: where the example comes from in the source (file:line, file row N …).
    """

    split: str
    record: Record
    files: dict[str, ImageSource]
    origin: str


@dataclass
class ImportReport:
    """Facts an importer reports besides its records (shown in the summary, kept on disk).

    Attributes:
        dropped: reason → number of source rows deliberately left out.
        notes: short human-readable remarks (e.g. how the split was chosen).
    """

    dropped: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    def drop(self, reason: str, n: int = 1) -> None:
        """Count ``n`` source rows left out for ``reason``."""
        self.dropped[reason] += n

    def note(self, text: str) -> None:
        """Add a remark once."""
        if text not in self.notes:
            self.notes.append(text)


class Importer(ABC, Generic[OptT]):
    """A source format. Subclasses set ``name``, ``description`` and ``options_model``.

    ``scan`` must never write anything: it reads ``src`` and yields items; the runner does the rest.
    """

    name: str
    description: str
    options_model: type[OptT]

    def parse_options(self, raw: dict[str, Any] | None) -> OptT:
        """Validate user options (``key=value`` strings are coerced by pydantic).

        Raises:
            ConfigError: an unknown option or an invalid value.
        """
        from pydantic import ValidationError

        from reasonbrain.errors import ConfigError

        try:
            return self.options_model.model_validate(dict(raw or {}))
        except ValidationError as err:
            first = err.errors()[0]
            key = ".".join(str(p) for p in first["loc"]) or "options"
            known = ", ".join(sorted(self.options_model.model_fields))
            what = (
                f"unknown option {key!r} for the {self.name} importer"
                if first["type"] == "extra_forbidden"
                else f"invalid value for option {key!r} of the {self.name} importer: {first['msg']}"
            )
            raise ConfigError(what, where="import options", fix=f"known options: {known}") from None

    @abstractmethod
    def scan(self, src: Path, options: OptT, report: ImportReport) -> Iterator[ImportItem]:
        """Read ``src`` and yield one item per imported example, in a deterministic order.

        Raises:
            ImportFormatError: ``src`` does not match the format (what, where, how to fix).
        """


# ----------------------------------------------------------------------------- shared helpers
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_ID = 120


def safe_id(raw: object, *, where: str) -> str:
    """A file-name-safe id: runs of characters outside ``[A-Za-z0-9._-]`` become ``_``.

    Ids name output files (``images/src/<id>.png``, evaluation's ``<id>.png``), so they must be
    one path component. Very long ids are shortened with a hash suffix so they stay unique.

    Raises:
        ImportFormatError: the id is empty after cleaning.
    """
    text = _UNSAFE_ID.sub("_", str(raw)).lstrip(".")
    if not text.strip("_"):
        raise ImportFormatError(
            f"id {raw!r} is empty or has no usable characters",
            where=where,
            fix="give every example a non-empty id (letters, digits, '.', '_' or '-')",
        )
    if len(text) > _MAX_ID:
        digest = hashlib.sha256(str(raw).encode()).hexdigest()[:12]
        text = f"{text[: _MAX_ID - 13]}-{digest}"
    return text


def hash_split(key: str, val_fraction: float, test_fraction: float) -> str:
    """Deterministic split from a hash of ``key``: same id ⇒ same split on every machine.

    The first 8 bytes of sha256(key) read as a fraction u in [0, 1): ``test`` when
    u < test_fraction, ``val`` when u < test_fraction + val_fraction, else ``train``. Adding or
    removing other examples never moves an example to another split.
    """
    u = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2**64
    if u < test_fraction:
        return "test"
    if u < test_fraction + val_fraction:
        return "val"
    return "train"


def normalise_split(value: object, *, where: str) -> str:
    """Map a split name as public datasets spell it (``validation``, ``dev`` …) to ours.

    Raises:
        ImportFormatError: an unknown split name.
    """
    key = str(value).strip().lower()
    if key not in SPLIT_ALIASES:
        raise ImportFormatError(
            f"unknown split {value!r}",
            where=where,
            fix=f"use one of {sorted(SPLIT_ALIASES)}",
        )
    return SPLIT_ALIASES[key]


def split_from_filename(path: Path) -> str | None:
    """The split a Hugging Face style file name declares (``train-00000-of-00002.parquet``,
    ``validation.jsonl``), or ``None``."""
    head = re.split(r"[-_.]", path.name, maxsplit=1)[0].lower()
    return SPLIT_ALIASES.get(head)


class SourceRoot:
    """The source directory of one import: resolves example paths inside it.

    Each directory's real path is computed once and cached, and a file costs a single ``lstat``
    (plus a ``realpath`` when it is a symlink): ``Path.resolve`` on every file would ``lstat``
    every path component again, which dominated import time on large datasets.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._real = os.path.realpath(root)
        self._dirs: dict[str, str] = {}

    def file(self, rel: str, *, where: str, what: str = "image") -> Path:
        """The real path of the file ``rel`` names inside the root.

        Symlinks are followed and must stay inside the root too.

        Raises:
            ImportFormatError: the path is absolute, escapes the root or names no file.
        """
        try:
            check_relative_path(rel)
        except ValueError as err:
            raise ImportFormatError(
                f"bad {what} path: {err}",
                where=where,
                fix="paths must be relative to the source directory and stay inside it",
            ) from None
        parent, _, name = rel.rpartition("/")
        real_parent = self._dirs.get(parent)
        if real_parent is None:
            real_parent = os.path.realpath(os.path.join(self._real, parent))
            self._dirs[parent] = real_parent
        full = os.path.join(real_parent, name)
        try:
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                full = os.path.realpath(full)
                st = os.stat(full)
            is_file = stat.S_ISREG(st.st_mode)
        except OSError:  # reported as "not found" once we know the path is inside the root
            is_file = False
        if not full.startswith(self._real + os.sep):
            raise ImportFormatError(
                f"{what} path {rel!r} resolves outside the source directory",
                where=where,
                fix="paths (and symlinks) must stay inside the source directory",
            )
        if not is_file:
            raise ImportFormatError(
                f"{what} not found: {rel}",
                where=where,
                fix=f"restore the missing file under {self.root} or remove the example",
            )
        return Path(full)


def image_suffix(path: str | Path) -> str:
    """The lower-case suffix of an image path (``.png`` when it has none we know)."""
    suffix = Path(path).suffix.lower()
    return suffix if suffix in IMAGE_SUFFIXES else ".png"


_FORMAT_SUFFIX = {
    "PNG": ".png",
    "JPEG": ".jpg",
    "WEBP": ".webp",
    "BMP": ".bmp",
    "GIF": ".gif",
    "TIFF": ".tif",
}


def embedded_suffix(data: bytes, *, where: str) -> str:
    """The file suffix for embedded image bytes, from their header (PIL reads only the header).

    Raises:
        ImportFormatError: the bytes are not an image in a format we write.
    """
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format or ""
    except (UnidentifiedImageError, OSError, ValueError):
        raise ImportFormatError(
            "embedded bytes are not an image",
            where=where,
            fix="store PNG/JPEG/WebP bytes in the image column",
        ) from None
    if fmt not in _FORMAT_SUFFIX:
        raise ImportFormatError(
            f"embedded image format {fmt or 'unknown'} is not supported",
            where=where,
            fix=f"convert the images to one of {sorted(_FORMAT_SUFFIX)}",
        )
    return _FORMAT_SUFFIX[fmt]
