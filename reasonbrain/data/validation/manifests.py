"""Read manifest lines for validation: every line becomes a row, a bad line never stops the read.

Unlike :func:`reasonbrain.data.schema.read_manifest` (strict: the first bad line raises), this
reader keeps going and records *why* a line is bad, with its file and line number, so that the
report lists every problem and ``--quarantine`` can set bad lines aside instead of losing them.

A line whose only fault is an absolute or escaping image path still parses here (those paths
are judged by the ``paths_inside_root`` check, not reported as a schema error).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from reasonbrain.data.schema import (
    ManifestLineError,
    Record,
    check_relative_path,
    existing_splits,
    manifest_path,
    parse_line,
)

#: The manifest fields that hold image paths (besides those in ``meta``).
PATH_FIELDS: tuple[str, ...] = ("src_image", "tgt_image")
_PLACEHOLDER_PATH = "placeholder.png"


@dataclass
class ManifestRow:
    """One non-blank manifest line and what could be read from it."""

    split: str
    line: int
    raw: str
    """The line as written (without its line ending)."""
    record: Record | None = None
    """The parsed record (``None`` when the line is not a valid record)."""
    parse_error: str | None = None
    raw_id: str | None = None
    """The ``id`` field when the line is a JSON object that has one, even if the line is invalid."""
    refs: list[tuple[str, str]] = field(default_factory=list)
    """``(role, path)`` for every image referenced (src, tgt, meta mask and counterfactuals)."""
    ref_errors: list[str] = field(default_factory=list)
    """References that are not path strings at all (e.g. ``meta.mask`` is a number)."""

    @property
    def where(self) -> str:
        """``<split>.jsonl:<line>``."""
        return f"{self.split}.jsonl:{self.line}"


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def _parse_allowing_bad_paths(
    text: str, path: Path, lineno: int
) -> tuple[Record | None, str | None]:
    """Parse a line; a record whose only fault is a bad image path is still returned as parsed."""
    try:
        return parse_line(text, path, lineno), None
    except ManifestLineError as err:
        obj = _json_object(text)
        if obj is not None:
            bad: dict[str, str] = {}
            for key in PATH_FIELDS:
                value = obj.get(key)
                if isinstance(value, str):
                    try:
                        check_relative_path(value)
                    except ValueError:
                        bad[key] = value
            if bad:
                try:
                    rec = Record.model_validate({**obj, **dict.fromkeys(bad, _PLACEHOLDER_PATH)})
                except ValidationError:
                    return None, err.reason
                # keep the offending paths so that the path check reports them
                return rec.model_copy(update=bad), None
        return None, err.reason


def _image_refs(rec: Record) -> tuple[list[tuple[str, str]], list[str]]:
    refs = [("src_image", rec.src_image), ("tgt_image", rec.tgt_image)]
    errors: list[str] = []
    meta = rec.meta or {}
    if "mask" in meta:
        if isinstance(meta["mask"], str):
            refs.append(("meta.mask", meta["mask"]))
        else:
            errors.append("meta.mask is not a path string")
    if "counterfactuals" in meta:
        cfs = meta["counterfactuals"]
        if isinstance(cfs, dict):
            for kind, rel in cfs.items():
                if isinstance(rel, str):
                    refs.append((f"meta.counterfactuals.{kind}", rel))
                else:
                    errors.append(f"meta.counterfactuals.{kind} is not a path string")
        else:
            errors.append("meta.counterfactuals is not an object of path strings")
    return refs, errors


def read_split(root: Path, split: str) -> tuple[list[ManifestRow], int]:
    """Read ``root/<split>.jsonl`` leniently.

    Returns:
        The rows (one per non-blank line, bad lines included) and the number of blank lines.
    """
    path = manifest_path(root, split)
    rows: list[ManifestRow] = []
    blank = 0
    with path.open("rb") as fh:
        for lineno, data in enumerate(fh, start=1):
            try:
                text = data.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as err:
                raw = data.decode("utf-8", errors="replace").rstrip("\r\n")
                why = f"not UTF-8 ({err.reason})"
                rows.append(ManifestRow(split, lineno, raw, parse_error=why))
                continue
            if not text.strip():
                blank += 1
                continue
            rec, error = _parse_allowing_bad_paths(text, path, lineno)
            row = ManifestRow(split, lineno, text, record=rec, parse_error=error)
            if rec is not None:
                row.raw_id = rec.id
                row.refs, row.ref_errors = _image_refs(rec)
            else:
                obj = _json_object(text)
                if obj is not None and isinstance(obj.get("id"), str):
                    row.raw_id = obj["id"]
            rows.append(row)
    return rows, blank


def read_rows(root: Path) -> tuple[list[ManifestRow], dict[str, int], dict[str, int]]:
    """Read every split present in ``root`` (order: train, val, test).

    Returns:
        All rows, the number of rows per split and the number of blank lines per split.

    Raises:
        DatasetError: ``root`` is not a directory or holds no manifest.
    """
    rows: list[ManifestRow] = []
    per_split: dict[str, int] = {}
    blank: dict[str, int] = {}
    for split in existing_splits(root):
        split_rows, blank[split] = read_split(root, split)
        per_split[split] = len(split_rows)
        rows.extend(split_rows)
    return rows, per_split, blank
