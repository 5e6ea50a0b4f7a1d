"""``reason50k``: copy and verify a directory in the Reason50K layout.

Source layout (the paper's public code; also what ``reasonbrain data generate`` writes)::

    SRC/train.jsonl  SRC/val.jsonl  SRC/test.jsonl      (at least one of them)
    SRC/images/...                                       (any layout; paths are relative to SRC)

Every line is parsed with :func:`reasonbrain.data.schema.parse_line` (a bad line is reported
with its file and line number). Each referenced image — ``src_image``, ``tgt_image`` and any
image path inside ``meta`` (ReasonSynth's mask and counterfactual outcomes) — must lie inside
SRC (symlinks included) and decode. Records, categories and ``meta`` are kept as they are; paths
keep their relative form, so the output is a verified copy of SRC's examples (files that no
record references, such as a generator's own metadata, are not copied). An id that is not safe
as a file name is cleaned (:func:`~reasonbrain.data.importers.base.safe_id`) and the original
is kept in ``meta.source_id``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from reasonbrain.data.importers.base import (
    IMAGE_SUFFIXES,
    ImageSource,
    Importer,
    ImportItem,
    ImportOptions,
    ImportReport,
    SourceRoot,
    safe_id,
)
from reasonbrain.data.schema import SPLITS, ManifestLineError, manifest_path, parse_line
from reasonbrain.errors import ImportFormatError


def meta_image_paths(value: Any) -> Iterator[str]:
    """Every string inside ``meta`` (nested dicts/lists) that names an image file by suffix."""
    if isinstance(value, str):
        if posixpath.splitext(value)[1].lower() in IMAGE_SUFFIXES:
            yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from meta_image_paths(v)
    elif isinstance(value, list):
        for v in value:
            yield from meta_image_paths(v)


class Reason50kImporter(Importer[ImportOptions]):
    """Verify and copy a Reason50K-layout directory."""

    name = "reason50k"
    description = (
        "a Reason50K-layout directory (train/val/test.jsonl + images/); verified and copied"
    )
    options_model = ImportOptions

    def scan(self, src: Path, options: ImportOptions, report: ImportReport) -> Iterator[ImportItem]:
        """Yield every record of every split present in ``src`` (see the module docstring)."""
        if not src.is_dir():
            raise ImportFormatError(
                "a reason50k source must be a directory",
                where=str(src),
                fix="point at the directory that holds train.jsonl/val.jsonl/test.jsonl",
            )
        splits = [s for s in SPLITS if manifest_path(src, s).is_file()]
        if not splits:
            raise ImportFormatError(
                "no train.jsonl, val.jsonl or test.jsonl in the source directory",
                where=str(src),
                fix="point at a directory in the Reason50K layout",
            )
        missing = [s for s in SPLITS if s not in splits]
        if missing:
            report.note(f"splits absent in the source (written empty): {', '.join(missing)}")
        root = SourceRoot(src)
        for split in splits:
            path = manifest_path(src, split)
            with path.open(encoding="utf-8") as fh:
                for lineno, line in enumerate(fh, start=1):
                    if line.strip():
                        yield self._item(root, split, path, lineno, line)

    @staticmethod
    def _item(root: SourceRoot, split: str, path: Path, lineno: int, line: str) -> ImportItem:
        where = f"{path}:{lineno}"
        try:
            record = parse_line(line, path, lineno)
        except ManifestLineError as err:
            raise ImportFormatError(
                err.what, where=err.where, fix="fix the line in the source and import again"
            ) from None
        files: dict[str, ImageSource] = {}
        for rel in (record.src_image, record.tgt_image, *meta_image_paths(record.meta)):
            if rel not in files:
                files[rel] = ImageSource(origin=where, path=root.file(rel, where=where))
        clean = safe_id(record.id, where=where)
        if clean != record.id:
            meta = {**(record.meta or {}), "source_id": record.id}
            record = record.model_copy(update={"id": clean, "meta": meta})
        return ImportItem(split=split, record=record, files=files, origin=where)
