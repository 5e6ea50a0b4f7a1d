"""``ip2p``: InstructPix2Pix-style tables (source image, edit instruction, edited image).

Source: one ``.parquet`` or ``.jsonl`` file, or a directory searched recursively for them (the
Hugging Face layout ``data/train-00000-of-00002.parquet`` works as is). Columns (names are
options): ``input_image``, ``edit_prompt``, ``edited_image``; optional ``id``, ``split`` and
``edited_prompt`` (the caption of the edited image → ``target_caption``). Image cells are paths
relative to the table file or embedded bytes (see :mod:`reasonbrain.data.importers.tables`).

Split of each row, first rule that applies:

1. the ``split`` option forces every row into one split;
2. the ``split`` column (``train``/``validation``/``val``/``dev``/``test`` …);
3. a Hugging Face style file name (``train-…``, ``validation-…``, ``test.jsonl``);
4. a deterministic hash of the row's id: ``test`` with probability ``test_fraction`` (0.05),
   ``val`` with ``val_fraction`` (0.05), else ``train`` (see
   :func:`~reasonbrain.data.importers.base.hash_split`): the same id always lands in the same
   split, whatever else the table holds.

Ids: the ``id`` column when present, else ``<file path without suffix>-<row number>`` — stable
as long as the files keep their names and row order. All ids are sanitised for use as file
names. Every record gets the constant ``category`` option (``edit``); ``meta.source`` says which
file and row it came from and ``meta.columns`` keeps the row's other scalar columns.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from reasonbrain.data.importers.base import (
    ImageSource,
    Importer,
    ImportItem,
    ImportOptions,
    ImportReport,
    SourceRoot,
    hash_split,
    normalise_split,
    safe_id,
    split_from_filename,
)
from reasonbrain.data.importers.tables import (
    TableRow,
    cell_image,
    cell_text,
    iter_rows,
    scalar_extras,
    table_files,
)
from reasonbrain.data.schema import Record


class Ip2pOptions(ImportOptions):
    """Column names and split/category rules of the ``ip2p`` importer."""

    input_column: str = "input_image"
    instruction_column: str = "edit_prompt"
    output_column: str = "edited_image"
    id_column: str = "id"
    caption_column: str = "edited_prompt"
    split_column: str = "split"
    split: Literal["train", "val", "test"] | None = None
    val_fraction: float = Field(0.05, ge=0.0, le=1.0)
    test_fraction: float = Field(0.05, ge=0.0, le=1.0)
    category: str = Field("edit", min_length=1)

    @model_validator(mode="after")
    def _fractions(self) -> Ip2pOptions:
        if self.val_fraction + self.test_fraction > 1.0:
            raise ValueError("val_fraction + test_fraction must not exceed 1")
        return self


class Ip2pImporter(Importer[Ip2pOptions]):
    """InstructPix2Pix-style parquet/JSONL tables."""

    name = "ip2p"
    description = (
        "InstructPix2Pix-style parquet/JSONL (input_image, edit_prompt, edited_image; "
        "image paths or embedded bytes)"
    )
    options_model = Ip2pOptions

    def scan(self, src: Path, options: Ip2pOptions, report: ImportReport) -> Iterator[ImportItem]:
        """Yield one item per table row (see the module docstring for ids and splits)."""
        base, files = table_files(src)
        root = SourceRoot(base)
        required = [options.input_column, options.instruction_column, options.output_column]
        for row in iter_rows(base, files, required):
            yield self._item(row, root, options, report)

    def _item(
        self, row: TableRow, root: SourceRoot, options: Ip2pOptions, report: ImportReport
    ) -> ImportItem:
        raw_id = row.values.get(options.id_column)
        if raw_id is None or raw_id == "":
            stem = row.rel.rsplit(".", 1)[0]
            raw_id = f"{stem}-{row.index:06d}"
        rid = safe_id(raw_id, where=row.where)
        split = self._split(row, rid, options, report)
        src_img, src_ext = cell_image(row, options.input_column, root)
        tgt_img, tgt_ext = cell_image(row, options.output_column, root)
        files: dict[str, ImageSource] = {
            f"images/src/{rid}{src_ext}": src_img,
            f"images/tgt/{rid}{tgt_ext}": tgt_img,
        }
        caption = row.values.get(options.caption_column)
        used = [
            options.input_column,
            options.output_column,
            options.instruction_column,
            options.caption_column,
            options.split_column,
            options.id_column,
        ]
        meta: dict[str, Any] = {"source": {"file": row.rel, "row": row.index}}
        extras = scalar_extras(row, used)
        if extras:
            meta["columns"] = extras
        if raw_id != rid:
            meta["source_id"] = str(raw_id)
        record = Record(
            id=rid,
            category=options.category,
            src_image=f"images/src/{rid}{src_ext}",
            tgt_image=f"images/tgt/{rid}{tgt_ext}",
            instruction=cell_text(row, options.instruction_column),
            objects=[],
            target_caption=caption.strip()
            if isinstance(caption, str) and caption.strip()
            else None,
            meta=meta,
        )
        return ImportItem(split=split, record=record, files=files, origin=row.where)

    @staticmethod
    def _split(row: TableRow, rid: str, options: Ip2pOptions, report: ImportReport) -> str:
        if options.split is not None:
            report.note(f"split: every row forced into {options.split!r} (option)")
            return options.split
        value = row.values.get(options.split_column)
        if value is not None and value != "":
            report.note(f"split: from the {options.split_column!r} column")
            return normalise_split(value, where=f"{row.where} column {options.split_column!r}")
        by_name = split_from_filename(row.file)
        if by_name is not None:
            report.note("split: from Hugging Face style file names")
            return by_name
        report.note(
            f"split: sha256 hash of the id (val {options.val_fraction:g}, "
            f"test {options.test_fraction:g}, rest train)"
        )
        return hash_split(rid, options.val_fraction, options.test_fraction)
