"""Run an importer: stream its items into a staging directory, then swap it into place.

Shared by every format: source/output sanity checks, duplicate-id detection, file
materialisation (:mod:`~reasonbrain.data.importers.materialise`), the three manifests, the
``import_info.json`` provenance file and the summary. The source is only ever opened for
reading; the output appears atomically (``staged_dir``) or not at all.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reasonbrain.data.importers.base import Importer, ImportOptions, ImportReport
from reasonbrain.data.importers.materialise import Materialiser
from reasonbrain.data.prepare import DatasetSummary
from reasonbrain.data.schema import SPLITS, Record, atomic_write_text, write_manifest
from reasonbrain.data.staging import staged_dir
from reasonbrain.errors import DatasetError, ImportFormatError

log = logging.getLogger(__name__)

INFO_FILE = "import_info.json"


@dataclass(frozen=True)
class ImportSummary(DatasetSummary):
    """What an import produced (``counts`` per split, as for generation) plus its provenance.

    Attributes:
        format: the importer name.
        dropped: reason → number of source rows deliberately left out.
        categories: category → number of records (declare them in ``validate.categories``).
        files: image files written.
        bytes: their total size.
        notes: remarks from the importer (e.g. how splits were assigned).
    """

    format: str = ""
    dropped: dict[str, int] = field(default_factory=dict)
    categories: dict[str, int] = field(default_factory=dict)
    files: int = 0
    bytes: int = 0
    notes: tuple[str, ...] = ()


def check_source(src: Path, out: Path) -> None:
    """The source must exist, and source and output must not overlap.

    Raises:
        ImportFormatError: ``src`` does not exist.
        DatasetError: ``out`` is ``src``, inside it, or contains it (writing there, or replacing
            it with ``--force``, would modify the source).
    """
    if not src.exists():
        raise ImportFormatError(
            "import source not found", where=str(src), fix="check the source path"
        )
    s, o = src.resolve(), out.resolve()
    if o == s or s in o.parents or o in s.parents:
        raise DatasetError(
            "the output directory overlaps the import source",
            where=f"{out} vs {src}",
            fix="write the imported dataset outside the source directory",
        )


def _progress(enabled: bool | None) -> Any:
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    show = console.is_terminal if enabled is None else enabled
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        TextColumn("{task.completed} records"),
        TimeElapsedColumn(),
        console=console,
        disable=not show,
        transient=False,
    )


def run_import(
    importer: Importer[Any],
    src: Path,
    out: Path,
    *,
    options: ImportOptions,
    force: bool = False,
    progress: bool | None = None,
) -> ImportSummary:
    """Import ``src`` with ``importer`` into ``out`` (see ``importers.import_dataset``)."""
    t0 = time.perf_counter()
    check_source(src, out)
    report = ImportReport()
    records: dict[str, list[Record]] = {s: [] for s in SPLITS}
    first_seen: dict[str, str] = {}
    with (
        staged_dir(out, force=force) as tmp,
        Materialiser(
            tmp, link=options.link, verify=options.verify_images, workers=options.workers
        ) as files,
        _progress(progress) as bar,
    ):
        task = bar.add_task(f"importing {importer.name}", total=None)
        for item in importer.scan(src, options, report):
            rid = item.record.id
            if rid in first_seen:
                raise ImportFormatError(
                    f"duplicate id {rid!r}",
                    where=f"{first_seen[rid]} and {item.origin}",
                    fix="ids must be unique across all splits (after sanitising)",
                )
            first_seen[rid] = item.origin
            if item.split not in records:
                raise ImportFormatError(f"unknown split {item.split!r}", where=item.origin)
            _check_record_files(item.record, item.files, item.origin)
            for dest, source in item.files.items():
                files.add(dest, source)
            records[item.split].append(item.record)
            bar.advance(task)
        files.finish()
        if not first_seen:
            raise ImportFormatError(
                f"no examples found for format {importer.name}",
                where=str(src),
                fix="check that the source is in this format (`reasonbrain data formats`)",
            )
        counts = {s: write_manifest(tmp / f"{s}.jsonl", records[s]) for s in SPLITS}
        categories = Counter(r.category for rs in records.values() for r in rs)
        summary = ImportSummary(
            counts=counts,
            seconds=time.perf_counter() - t0,
            format=importer.name,
            dropped=dict(sorted(report.dropped.items())),
            categories=dict(sorted(categories.items())),
            files=files.files,
            bytes=files.bytes,
            notes=tuple(report.notes),
        )
        atomic_write_text(tmp / INFO_FILE, _info_json(summary, src, options))
    for reason, n in summary.dropped.items():
        log.warning("%s import: dropped %d source rows (%s)", importer.name, n, reason)
    return summary


def _check_record_files(record: Record, files: dict[str, Any], origin: str) -> None:
    """Every image the record names must be among the files the item materialises."""
    for rel in (record.src_image, record.tgt_image):
        if rel not in files:  # a bug in an importer, not in the source: fail loudly anyway
            raise ImportFormatError(
                f"record {record.id!r} names {rel!r} but the importer provides no such file",
                where=origin,
            )


def _info_json(summary: ImportSummary, src: Path, options: ImportOptions) -> str:
    info = {
        "format": summary.format,
        "source": str(src),
        "options": options.model_dump(mode="json"),
        "counts": summary.counts,
        "categories": summary.categories,
        "dropped": summary.dropped,
        "files": summary.files,
        "bytes": summary.bytes,
        "notes": list(summary.notes),
    }
    return json.dumps(info, indent=2, sort_keys=True) + "\n"
