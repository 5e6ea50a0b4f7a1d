"""The dataset contract: Reason50K-compatible JSONL manifests.

A dataset directory holds ``train.jsonl``, ``val.jsonl`` and ``test.jsonl``; each line is one
:class:`Record`. Image paths are relative to the dataset directory, never absolute and never
escaping it. ReasonSynth puts its exact ground truth in ``meta`` (see :class:`SynthMeta`).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from reasonbrain.errors import DatasetError, ManifestError

SPLITS: tuple[str, ...] = ("train", "val", "test")


def check_relative_path(value: str) -> str:
    """Return ``value`` if it is a relative POSIX path that stays inside its root.

    Raises:
        ValueError: absolute, empty, Windows-style or escaping (``..``) paths.
    """
    if not value or not value.strip():
        raise ValueError("empty path")
    if "\\" in value:
        raise ValueError(f"path {value!r} uses backslashes; use '/'")
    p = PurePosixPath(value)
    if p.is_absolute():
        raise ValueError(f"path {value!r} is absolute; paths must be relative to the dataset root")
    if ".." in p.parts:
        raise ValueError(f"path {value!r} escapes the dataset root")
    return value


class Record(BaseModel):
    """One manifest line (one editing example)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    category: str = Field(min_length=1)
    src_image: str
    tgt_image: str
    instruction: str
    objects: list[str] = Field(default_factory=list)
    target_caption: str | None = None
    meta: dict[str, Any] | None = None

    @field_validator("src_image", "tgt_image")
    @classmethod
    def _relative(cls, v: str) -> str:
        return check_relative_path(v)

    def to_json(self) -> str:
        """One compact JSON line (no trailing newline); optional fields left out when unset."""
        return json.dumps(
            self.model_dump(mode="json", exclude_none=True), ensure_ascii=False, sort_keys=False
        )


class SynthMeta(BaseModel):
    """ReasonSynth ground truth stored in ``Record.meta`` (all paths relative to the root).

    ``counterfactuals`` maps a kind (``no_change``, ``wrong_object``, ``wrong_change``) to an image
    of that wrong outcome (val/test only). ``holdout`` says which hold-out a sample belongs to:
    ``seen`` (train phrasings and combinations), ``phrasing`` (a phrasing never used in train) or
    ``combination`` (an object/attribute combination never used in train for that family).
    """

    model_config = ConfigDict(extra="allow")

    family: str
    affected_object: str
    mask: str
    counterfactuals: dict[str, str] = Field(default_factory=dict)
    holdout: str = "seen"
    template: str | None = None

    @field_validator("mask")
    @classmethod
    def _relative(cls, v: str) -> str:
        return check_relative_path(v)


class ManifestLineError(ManifestError):
    """A manifest line that is not valid JSON or not a valid :class:`Record`."""

    def __init__(self, path: Path, lineno: int, reason: str) -> None:
        self.path = path
        self.lineno = lineno
        self.reason = reason
        super().__init__(
            f"invalid manifest line: {reason}",
            where=f"{path}:{lineno}",
            fix="fix or remove the line (`reasonbrain data validate --quarantine` isolates it)",
        )


def parse_line(line: str, path: Path, lineno: int) -> Record:
    """Parse one manifest line.

    Raises:
        ManifestLineError: with the file and line number.
    """
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as err:
        raise ManifestLineError(
            path, lineno, f"not JSON ({err.msg} at column {err.colno})"
        ) from None
    if not isinstance(obj, dict):
        raise ManifestLineError(path, lineno, "not a JSON object")
    try:
        return Record.model_validate(obj)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "line"
        raise ManifestLineError(path, lineno, f"{loc}: {first['msg']}") from None


def iter_manifest(path: Path | str) -> Iterator[tuple[int, Record]]:
    """Yield ``(line_number, record)`` for every non-blank line; stops at the first bad line.

    Raises:
        DatasetError: the file does not exist.
        ManifestLineError: a line is malformed (with its line number).
    """
    p = Path(path)
    if not p.is_file():
        raise DatasetError("manifest not found", where=str(p), fix="check the dataset directory")
    with p.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if line.strip():
                yield lineno, parse_line(line, p, lineno)


def read_manifest(path: Path | str) -> list[Record]:
    """Read a whole manifest (strict: the first malformed line raises)."""
    return [rec for _, rec in iter_manifest(path)]


def atomic_write_text(path: Path | str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory + rename."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_manifest(path: Path | str, records: Iterable[Record]) -> int:
    """Write records as JSONL atomically; returns the number of lines written."""
    lines = [r.to_json() for r in records]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)


def manifest_path(root: Path | str, split: str) -> Path:
    """``root/<split>.jsonl``."""
    return Path(root) / f"{split}.jsonl"


def meta_mask_path(meta: dict[str, Any] | None) -> str | None:
    """A record's affected-region mask (``meta.mask``, relative to the dataset root), if any."""
    value = (meta or {}).get("mask")
    return value if isinstance(value, str) and value else None


def resolve_in_root(root: Path | str, rel: str) -> Path:
    """Resolve a record path inside ``root``; refuses paths that escape it (symlinks included).

    Raises:
        DatasetError: the path is absolute or resolves outside ``root``.
    """
    try:
        check_relative_path(rel)
    except ValueError as err:
        raise DatasetError(str(err), where=rel) from None
    base = Path(root).resolve()
    full = (base / rel).resolve()
    if full != base and base not in full.parents:
        raise DatasetError("path resolves outside the dataset root", where=rel)
    return full


def existing_splits(root: Path | str) -> list[str]:
    """The splits among train/val/test that have a manifest in ``root``.

    Raises:
        DatasetError: ``root`` is not a directory or holds no manifest.
    """
    r = Path(root)
    if not r.is_dir():
        raise DatasetError(
            "dataset directory not found",
            where=str(r),
            fix="generate one with `reasonbrain data generate --out DIR`",
        )
    found = [s for s in SPLITS if manifest_path(r, s).is_file()]
    if not found:
        raise DatasetError(
            "no train/val/test .jsonl manifest in the dataset directory",
            where=str(r),
            fix="point at a directory in the Reason50K layout",
        )
    return found
