"""Read tabular sources (parquet, JSONL) row by row, and the images their cells hold.

Used by the column-based formats (``ip2p``, ``emu_edit``). Parquet files are streamed in record
batches with pyarrow, so a multi-gigabyte file with embedded images never sits in memory whole.
An image cell is one of:

- a string: a path relative to the table file's directory (it must stay inside the source);
- raw bytes (a parquet ``binary`` column);
- a mapping ``{"bytes": …, "path": …}`` as Hugging Face ``datasets`` writes its ``Image``
  feature: the bytes when present, else the path.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reasonbrain.data.importers.base import (
    ImageSource,
    SourceRoot,
    embedded_suffix,
    image_suffix,
)
from reasonbrain.errors import ImportFormatError

TABLE_SUFFIXES: tuple[str, ...] = (".parquet", ".jsonl")


@dataclass(frozen=True)
class TableRow:
    """One row of a table file.

    Attributes:
        file: the table file.
        rel: its path relative to the source root (POSIX), used to build stable ids.
        index: 0-based row number within the file.
        lineno: 1-based line number (JSONL only).
        values: column → cell value.
    """

    file: Path
    rel: str
    index: int
    lineno: int | None
    values: dict[str, Any]

    @property
    def where(self) -> str:
        """``file:line`` for JSONL, ``file row N`` (0-based) for parquet."""
        return (
            f"{self.file}:{self.lineno}"
            if self.lineno is not None
            else f"{self.file} row {self.index}"
        )


def table_files(src: Path) -> tuple[Path, list[Path]]:
    """The table files of a source and the root their relative names are taken from.

    ``src`` is one ``.parquet``/``.jsonl`` file (root: its directory) or a directory searched
    recursively (root: the directory), in sorted path order.

    Raises:
        ImportFormatError: a file of another type, or a directory without table files.
    """
    if src.is_file():
        if src.suffix.lower() not in TABLE_SUFFIXES:
            raise ImportFormatError(
                f"expected a .parquet or .jsonl file, got {src.suffix or 'no suffix'}",
                where=str(src),
                fix="pass a .parquet/.jsonl file or a directory of them",
            )
        return src.parent, [src]
    found = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in TABLE_SUFFIXES)
    if not found:
        raise ImportFormatError(
            "no .parquet or .jsonl files in the source directory",
            where=str(src),
            fix="pass a .parquet/.jsonl file or a directory of them",
        )
    return src, found


def iter_rows(root: Path, files: Sequence[Path], required: Sequence[str]) -> Iterator[TableRow]:
    """Rows of every file in order; each file must have the ``required`` columns.

    Raises:
        ImportFormatError: unreadable file, bad JSON line (with its line number), or a missing
            column (naming the columns that exist).
    """
    for path in files:
        rel = path.relative_to(root).as_posix()
        if path.suffix.lower() == ".parquet":
            yield from _parquet_rows(path, rel, required)
        else:
            yield from _jsonl_rows(path, rel, required)


def _missing_columns(have: Sequence[str], required: Sequence[str], where: str) -> None:
    missing = [c for c in required if c not in have]
    if missing:
        raise ImportFormatError(
            f"missing column(s) {', '.join(missing)}; the file has: {', '.join(have) or 'none'}",
            where=where,
            fix="name the columns with the importer's *_column options",
        )


def _parquet_rows(path: Path, rel: str, required: Sequence[str]) -> Iterator[TableRow]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as err:
        raise ImportFormatError(
            f"not a readable parquet file ({str(err).splitlines()[0]})",
            where=str(path),
            fix="check the file is a complete parquet file",
        ) from None
    _missing_columns(pf.schema_arrow.names, required, str(path))
    index = 0
    for batch in pf.iter_batches(batch_size=64):
        for values in batch.to_pylist():
            yield TableRow(path, rel, index, None, values)
            index += 1


def _jsonl_rows(path: Path, rel: str, required: Sequence[str]) -> Iterator[TableRow]:
    index = 0
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                values = json.loads(line)
            except json.JSONDecodeError as err:
                raise ImportFormatError(
                    f"not JSON ({err.msg} at column {err.colno})",
                    where=where,
                    fix="fix the line in the source and import again",
                ) from None
            if not isinstance(values, dict):
                raise ImportFormatError("line is not a JSON object", where=where)
            _missing_columns(list(values), required, where)
            yield TableRow(path, rel, index, lineno, values)
            index += 1


def cell_image(row: TableRow, column: str, root: SourceRoot) -> tuple[ImageSource, str]:
    """The image in ``row[column]`` and the suffix its output file should have.

    Raises:
        ImportFormatError: an empty cell, a path outside the source or to a missing file, or
            bytes that are not an image.
    """
    value = row.values.get(column)
    where = f"{row.where} column {column!r}"
    if isinstance(value, dict):
        data = value.get("bytes")
        value = data if data is not None else value.get("path")
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        return ImageSource(origin=where, data=data), embedded_suffix(data, where=where)
    if isinstance(value, str) and value:
        if _is_abs(value):
            raise ImportFormatError(
                f"image path {value!r} is absolute",
                where=where,
                fix="store image paths relative to the table file",
            )
        # relative to the table file; "../images/x.png" is fine while it stays inside the root
        base = row.file.parent.relative_to(root.root).as_posix()
        rel = posixpath.normpath(posixpath.join(base, value))
        path = root.file(rel, where=where)
        return ImageSource(origin=where, path=path), image_suffix(value)
    raise ImportFormatError(
        "no image in this cell",
        where=where,
        fix="each row needs an image path or image bytes in this column",
    )


def _is_abs(value: str) -> bool:
    return value.startswith(("/", "\\")) or (len(value) > 1 and value[1] == ":")


def cell_text(row: TableRow, column: str) -> str:
    """A non-empty string cell.

    Raises:
        ImportFormatError: the cell is missing, not a string, or blank.
    """
    value = row.values.get(column)
    if not isinstance(value, str) or not value.strip():
        raise ImportFormatError(
            f"column {column!r} must hold non-empty text, got {value!r:.60}",
            where=row.where,
            fix="fix or remove the row in the source",
        )
    return value.strip()


def scalar_extras(row: TableRow, used: Sequence[str]) -> dict[str, Any]:
    """The row's other scalar cells (text, numbers, booleans), kept in ``meta``."""
    return {
        k: v
        for k, v in row.values.items()
        if k not in used and isinstance(v, str | int | float | bool)
    }
