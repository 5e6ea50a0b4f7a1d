"""Stage ``data``, second half: append the landing-zone drops that the ``ingest`` flow merged.

``data.ingested_dir`` (default ``data/ingested``) holds one Reason50K-layout directory per merged
drop, each tracked by DVC (``<drop>.dvc`` in git, the files in the DVC cache/remote). After the
base dataset is generated or imported, every drop's records are appended to the manifests of the
same split, and the files they reference are copied under ``<data.dir>/ingested/<drop>/``, their
paths rebased accordingly (``src_image``, ``tgt_image`` and image paths inside ``meta`` such as
ReasonSynth masks and counterfactuals). Drops are taken in name order, so the result is the same
on every machine. Sample ids must stay unique across the base dataset and all drops (the
``ingest`` flow checks this before merging; here it is checked again).
"""

from __future__ import annotations

import posixpath
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from reasonbrain.data.importers.base import IMAGE_SUFFIXES
from reasonbrain.data.schema import (
    SPLITS,
    Record,
    manifest_path,
    read_manifest,
    resolve_in_root,
    write_manifest,
)
from reasonbrain.errors import DatasetError

#: where merged drops' files go inside the dataset directory
INGESTED = "ingested"


def ingested_drops(ingested_dir: Path | str) -> list[Path]:
    """The merged drops under ``ingested_dir`` (directories holding a manifest), in name order.

    Raises:
        DatasetError: a drop is tracked (``<name>.dvc``) but its files are not in the workspace.
    """
    root = Path(ingested_dir)
    if not root.is_dir():
        return []
    for tracked in sorted(root.glob("*.dvc")):
        d = tracked.with_suffix("")
        if not (d.is_dir() and any(manifest_path(d, s).is_file() for s in SPLITS)):
            raise DatasetError(
                "a merged landing-zone drop is tracked but its files are missing",
                where=str(d),
                fix=f"run `dvc pull {tracked}` (or `dvc remove {tracked}` to drop it)",
            )
    return sorted(
        d
        for d in root.iterdir()
        if d.is_dir()
        and not d.name.startswith(".")
        and any(manifest_path(d, s).is_file() for s in SPLITS)
    )


def _is_image_path(value: str) -> bool:
    return posixpath.splitext(value)[1].lower() in IMAGE_SUFFIXES


def _rebase_meta(value: Any, prefix: str) -> Any:
    """``meta`` with every image path (a string with an image suffix) prefixed."""
    if isinstance(value, str):
        return posixpath.join(prefix, value) if _is_image_path(value) else value
    if isinstance(value, dict):
        return {k: _rebase_meta(v, prefix) for k, v in value.items()}
    if isinstance(value, list):
        return [_rebase_meta(v, prefix) for v in value]
    return value


def _referenced(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        if _is_image_path(value):
            yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _referenced(v)
    elif isinstance(value, list):
        for v in value:
            yield from _referenced(v)


def rebase_record(record: Record, prefix: str) -> Record:
    """The record with its file paths relative to the merged dataset (``prefix/<old path>``)."""
    return record.model_copy(
        update={
            "src_image": posixpath.join(prefix, record.src_image),
            "tgt_image": posixpath.join(prefix, record.tgt_image),
            "meta": _rebase_meta(record.meta, prefix) if record.meta is not None else None,
        }
    )


def merge_ingested(dest: Path | str, ingested_dir: Path | str) -> dict[str, int]:
    """Append every drop under ``ingested_dir`` to the dataset in ``dest`` (see module doc).

    Returns:
        Records added per split (empty when there is no drop).

    Raises:
        DatasetError: a drop's id is already in the dataset, a referenced file is missing or
            escapes the drop, or a tracked drop is not checked out.
    """
    dest = Path(dest)
    drops = ingested_drops(ingested_dir)
    if not drops:
        return {}
    manifests = {
        s: read_manifest(p) if (p := manifest_path(dest, s)).is_file() else [] for s in SPLITS
    }
    seen = {r.id: f"{dest}/{s}.jsonl" for s, recs in manifests.items() for r in recs}
    added = dict.fromkeys(SPLITS, 0)
    for drop in drops:
        prefix = posixpath.join(INGESTED, drop.name)
        for split in SPLITS:
            path = manifest_path(drop, split)
            if not path.is_file():
                continue
            for rec in read_manifest(path):
                if rec.id in seen:
                    raise DatasetError(
                        f"sample id {rec.id!r} of drop {drop.name} is already in the dataset",
                        where=f"{path} (first in {seen[rec.id]})",
                        fix=f"remove the drop (`dvc remove {drop}.dvc`) and drop it again "
                        "with unique ids",
                    )
                seen[rec.id] = str(path)
                for rel in {rec.src_image, rec.tgt_image, *_referenced(rec.meta)}:
                    src = resolve_in_root(drop, rel)
                    if not src.is_file():
                        raise DatasetError("a drop references a missing file", where=str(src))
                    out = dest / prefix / rel
                    out.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(src, out)
                manifests[split].append(rebase_record(rec, prefix))
                added[split] += 1
    for split, recs in manifests.items():
        write_manifest(manifest_path(dest, split), recs)
    return {s: n for s, n in added.items() if n}
