"""``--quarantine DIR``: a cleaned, self-contained copy of the dataset plus ``rejected.jsonl``.

Design: ``DIR`` becomes a dataset directory of its own, in the same layout. Its manifests hold
the lines (byte for byte) of the rows that pass every blocking check, and the images those rows
reference are *copied* next to them under the same relative paths, so the cleaned set validates
and trains on its own (``reasonbrain data validate DIR`` passes). Copies rather than hard links:
an in-place edit of a hard-linked file would silently change the original too.
``rejected.jsonl`` holds one line per rejected row: ``{split, line, id, reasons, raw}``.
Nothing is dropped silently: kept + rejected = every non-blank manifest line.

The original dataset is never touched: ``DIR`` must lie outside it, is built in a temporary
sibling directory and renamed into place only when complete. An existing ``DIR`` is replaced
only if it is empty or an earlier quarantine output (it holds ``rejected.jsonl``).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from reasonbrain.data.schema import manifest_path
from reasonbrain.data.staging import staged_dir
from reasonbrain.data.validation.manifests import ManifestRow
from reasonbrain.data.validation.report import QuarantineSummary
from reasonbrain.errors import DatasetError

REJECTED_FILE = "rejected.jsonl"


def check_quarantine_dir(root: Path, qdir: Path) -> None:
    """Refuse a quarantine directory that could touch the dataset or unrelated files.

    Raises:
        DatasetError: ``qdir`` is the dataset, lies inside it or contains it; or it is a file, or
            a non-empty directory that is not an earlier quarantine output.
    """
    r, q = root.resolve(), qdir.resolve()
    if q == r or r in q.parents or q in r.parents:
        raise DatasetError(
            "the quarantine directory must lie outside the dataset directory",
            where=str(qdir),
            fix="choose a separate directory, e.g. --quarantine data/clean",
        )
    if q.exists() and not q.is_dir():
        raise DatasetError("quarantine path exists and is not a directory", where=str(qdir))
    if q.is_dir() and any(q.iterdir()) and not (q / REJECTED_FILE).is_file():
        raise DatasetError(
            "quarantine directory is not empty and is not an earlier quarantine output",
            where=str(qdir),
            fix="choose an empty or new directory",
        )


def write_quarantine(
    root: Path,
    qdir: Path,
    rows: Sequence[ManifestRow],
    splits: Sequence[str],
    reasons: Mapping[int, list[str]],
) -> QuarantineSummary:
    """Write the cleaned dataset and ``rejected.jsonl`` into ``qdir`` (atomically).

    Args:
        root: the validated dataset directory (read only).
        qdir: the output directory (checked with :func:`check_quarantine_dir`).
        rows: every manifest row, in order.
        splits: the splits present in ``root`` (each gets a manifest, possibly empty).
        reasons: row index → why it is rejected (rows absent here are kept).
    """
    check_quarantine_dir(root, qdir)
    base = os.path.realpath(root)
    kept: dict[str, list[str]] = {s: [] for s in splits}
    rejected: list[str] = []
    with staged_dir(qdir, force=True) as tmp:
        made: set[str] = set()
        copied: set[str] = set()
        for i, row in enumerate(rows):
            why = reasons.get(i)
            if why:
                entry = {
                    "split": row.split,
                    "line": row.line,
                    "id": row.raw_id,
                    "reasons": why,
                    "raw": row.raw,
                }
                rejected.append(json.dumps(entry, ensure_ascii=False))
                continue
            kept[row.split].append(row.raw)
            for _, rel in row.refs:
                rel = os.path.normpath(rel)
                if rel in copied:
                    continue
                dest = os.path.join(tmp, rel)
                parent = os.path.dirname(dest)
                if parent not in made:
                    os.makedirs(parent, exist_ok=True)
                    made.add(parent)
                # the source may be a symlink inside the root: copy the file it points to
                shutil.copy2(os.path.realpath(os.path.join(base, rel)), dest)
                copied.add(rel)
        for split, lines in kept.items():
            manifest_path(tmp, split).write_text(
                "".join(line + "\n" for line in lines), encoding="utf-8"
            )
        (tmp / REJECTED_FILE).write_text(
            "".join(line + "\n" for line in rejected), encoding="utf-8"
        )
    return QuarantineSummary(
        dir=qdir,
        kept={s: len(v) for s, v in kept.items()},
        rejected=len(rejected),
        images_copied=len(copied),
    )
