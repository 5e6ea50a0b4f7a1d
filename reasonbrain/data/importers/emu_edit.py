"""``emu_edit``: the Emu Edit test set (parquet; no ground-truth edited images).

Source: one parquet/JSONL file or a directory of them (the Hugging Face release's
``data/validation-*.parquet``, ``data/test-*.parquet``) with the columns ``idx, image,
instruction, task, split, hash, input_caption, output_caption``; ``image`` is embedded bytes (HF
``{"bytes", "path"}``) or a path relative to the file.

**No target.** Emu Edit publishes no edited images: its metrics compare the output with the
*input* image (CLIP-I, DINO, L1) and with ``output_caption`` (CLIP-out, CLIP-dir). The manifest
still needs a ``tgt_image``, so it is the *source image itself* (the same file, written once),
and ``meta.has_target`` is ``false``: evaluators must read that flag and score against the
input image and the captions instead of against ``tgt_image``; validation should not count
these records as "target identical to source".

Records: id ``<split>-<idx>`` (idx restarts in each split), category = ``task`` (lower case),
``target_caption`` = ``output_caption``, split from the ``split`` column (``validation`` → val;
file name, else ``test``, when the column is missing). ``meta``: ``benchmark="emu_edit"``,
``has_target=false``, ``idx``, ``hash``, ``task``, ``input_caption``, ``output_caption``.

Rows whose ``input_caption`` equals ``output_caption`` carry no usable caption change and are
dropped, as is usual for this benchmark (option ``drop_same_caption``); their number is reported
in the summary and ``import_info.json`` as ``dropped["input_caption == output_caption"]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from reasonbrain.data.importers.base import (
    Importer,
    ImportItem,
    ImportOptions,
    ImportReport,
    SourceRoot,
    normalise_split,
    safe_id,
    split_from_filename,
)
from reasonbrain.data.importers.tables import (
    TableRow,
    cell_image,
    cell_text,
    iter_rows,
    table_files,
)
from reasonbrain.data.schema import Record

SAME_CAPTION = "input_caption == output_caption"
REQUIRED: tuple[str, ...] = (
    "idx",
    "image",
    "instruction",
    "task",
    "input_caption",
    "output_caption",
)


class EmuEditOptions(ImportOptions):
    """Settings of the ``emu_edit`` importer."""

    drop_same_caption: bool = True


class EmuEditImporter(Importer[EmuEditOptions]):
    """Emu Edit test set: source image, instruction, task and captions (no target image)."""

    name = "emu_edit"
    description = (
        "Emu Edit test set parquet (idx, image, instruction, task, split, captions); no targets"
    )
    options_model = EmuEditOptions

    def scan(
        self, src: Path, options: EmuEditOptions, report: ImportReport
    ) -> Iterator[ImportItem]:
        """Yield one item per kept row (see the module docstring)."""
        base, files = table_files(src)
        root = SourceRoot(base)
        report.note("no ground-truth targets: tgt_image is the source image, meta.has_target=false")
        for row in iter_rows(base, files, REQUIRED):
            in_cap = cell_text(row, "input_caption")
            out_cap = cell_text(row, "output_caption")
            if options.drop_same_caption and in_cap == out_cap:
                report.drop(SAME_CAPTION)
                continue
            yield self._item(row, root, in_cap, out_cap)

    @staticmethod
    def _item(row: TableRow, root: SourceRoot, in_cap: str, out_cap: str) -> ImportItem:
        value = row.values.get("split")
        if value is not None and value != "":
            split = normalise_split(value, where=f"{row.where} column 'split'")
        else:
            split = split_from_filename(row.file) or "test"
        idx = row.values["idx"]
        rid = safe_id(f"{split}-{idx}", where=row.where)
        image, ext = cell_image(row, "image", root)
        path = f"images/src/{rid}{ext}"
        task = cell_text(row, "task").lower()
        meta: dict[str, Any] = {
            "benchmark": "emu_edit",
            "has_target": False,
            "idx": idx,
            "task": task,
            "input_caption": in_cap,
            "output_caption": out_cap,
        }
        if row.values.get("hash") is not None:
            meta["hash"] = str(row.values["hash"])
        record = Record(
            id=rid,
            category=safe_id(task, where=f"{row.where} column 'task'"),
            src_image=path,
            tgt_image=path,
            instruction=cell_text(row, "instruction"),
            objects=[],
            target_caption=out_cap,
            meta=meta,
        )
        return ImportItem(split=split, record=record, files={path: image}, origin=row.where)
