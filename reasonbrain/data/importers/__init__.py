"""Importers: bring public editing datasets and benchmarks into the Reason50K layout.

``reasonbrain data import --format FMT SRC --out DIR`` calls :func:`import_dataset`. Formats
(``reasonbrain data formats`` lists them):

- ``reason50k``  — a Reason50K-layout directory, verified and copied (:mod:`.reason50k`);
- ``ip2p``       — InstructPix2Pix-style parquet/JSONL tables (:mod:`.ip2p`);
- ``magicbrush`` — the MagicBrush multi-turn test set (:mod:`.magicbrush`);
- ``emu_edit``   — the Emu Edit test set, no targets (:mod:`.emu_edit`);
- ``reason_edit`` — SmartEdit's Reason-Edit benchmark, no targets (:mod:`.reason_edit`).

Guarantees for every format: the source is only read, never written; the output directory
appears complete or not at all; every image is checked to decode; ids are unique and safe as
file names; paths in the manifests are relative to the output directory. Benchmarks without
ground-truth edits (Emu Edit, Reason-Edit) point ``tgt_image`` at the source image and set
``meta.has_target = false``.

Adding a format: write a module with an :class:`~.base.Importer` subclass and add one instance
to :data:`IMPORTERS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reasonbrain.data.importers.base import (
    ImageSource,
    Importer,
    ImportItem,
    ImportOptions,
    ImportReport,
)
from reasonbrain.data.importers.emu_edit import EmuEditImporter
from reasonbrain.data.importers.ip2p import Ip2pImporter
from reasonbrain.data.importers.magicbrush import MagicBrushImporter
from reasonbrain.data.importers.reason50k import Reason50kImporter
from reasonbrain.data.importers.reason_edit import ReasonEditImporter
from reasonbrain.data.importers.runner import ImportSummary, run_import
from reasonbrain.errors import ImportFormatError

#: Format name → importer. One entry per format.
IMPORTERS: dict[str, Importer[Any]] = {
    imp.name: imp
    for imp in (
        Reason50kImporter(),
        Ip2pImporter(),
        MagicBrushImporter(),
        EmuEditImporter(),
        ReasonEditImporter(),
    )
}

__all__ = [
    "IMPORTERS",
    "ImageSource",
    "ImportItem",
    "ImportOptions",
    "ImportReport",
    "ImportSummary",
    "Importer",
    "get_importer",
    "import_dataset",
]


def get_importer(fmt: str) -> Importer[Any]:
    """The importer registered as ``fmt``.

    Raises:
        ImportFormatError: an unknown format, listing the known ones.
    """
    try:
        return IMPORTERS[fmt]
    except KeyError:
        raise ImportFormatError(
            f"unknown import format {fmt!r}",
            where="--format",
            fix=f"use one of: {', '.join(sorted(IMPORTERS))}",
        ) from None


def import_dataset(
    fmt: str,
    src: Path | str,
    out: Path | str,
    *,
    force: bool = False,
    options: Mapping[str, Any] | None = None,
    progress: bool | None = None,
) -> ImportSummary:
    """Import ``src`` (in format ``fmt``) into a new Reason50K-layout directory ``out``.

    Args:
        fmt: a key of :data:`IMPORTERS`.
        src: the source file or directory; it is only read.
        out: the dataset directory to create (written through a staging directory and renamed
            into place, so a failure leaves nothing behind).
        force: replace ``out`` when it exists and is not empty.
        options: format options (see each importer's ``options_model``), e.g.
            ``{"input_column": "original_image", "link": "hardlink"}``; strings are coerced.
        progress: show a progress line on stderr (``None``: only when stderr is a terminal).

    Returns:
        Counts per split, time taken, dropped rows, categories and files written.

    Raises:
        ImportFormatError: unknown format, or a source that does not match it (what/where/fix).
        ConfigError: an unknown or invalid option.
        DatasetError: ``out`` is non-empty without ``force``, or overlaps ``src``.
    """
    importer = get_importer(fmt)
    opts = importer.parse_options(dict(options or {}))
    return run_import(importer, Path(src), Path(out), options=opts, force=force, progress=progress)
