"""Resumable batch evaluation: ``reasonbrain evaluate --model M --data D --split S --out O``
(or ``--predictions DIR`` instead of ``--model``: edits made elsewhere, scored the same way).

The entry point, composing one module per job:

1. :func:`~reasonbrain.evaluation.predictors.resolve_model` pins the model (a registry alias to
   its version, a directory — of model files or of predictions — to its content digest);
2. :func:`~reasonbrain.evaluation.protocols.eval_units` and
   :func:`~reasonbrain.evaluation.protocols.plan_sample` turn the split's records into samples
   (one record each, or a chained MagicBrush session under
   ``eval.magicbrush_protocol=final_turn``);
3. :mod:`~reasonbrain.evaluation.runkey` builds the resume key and
   :mod:`~reasonbrain.evaluation.store` checks it against ``--out`` and finds what is done;
4. an engine (:mod:`~reasonbrain.evaluation.engines`: Ray Data actors or a plain loop) runs the
   :mod:`~reasonbrain.evaluation.worker` over what is missing; each finished sample is written;
5. :mod:`~reasonbrain.evaluation.describe` writes ``metrics.json``.

See :mod:`~reasonbrain.evaluation.store` for the output directory and its crash safety.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from reasonbrain.data.schema import Record, manifest_path, read_manifest
from reasonbrain.errors import ConfigError, DatasetError
from reasonbrain.evaluation.describe import describe_config, write_metrics
from reasonbrain.evaluation.engines import ENGINES, Engine
from reasonbrain.evaluation.predictors import (
    PREDICTIONS,
    prediction_files,
    prediction_index,
    resolve_model,
)
from reasonbrain.evaluation.protocols import eval_units, plan_sample
from reasonbrain.evaluation.runkey import dataset_identity, run_key
from reasonbrain.evaluation.store import (
    IMAGES,
    JUDGE_CACHE,
    METRICS,
    PER_CATEGORY,
    RUN,
    SAMPLES,
    SampleWriter,
    image_name,
    prepare_out,
    read_done,
    write_run_file,
)
from reasonbrain.evaluation.worker import work_items

if TYPE_CHECKING:
    from reasonbrain.config import EvalParams, Settings

__all__ = [
    "IMAGES",
    "JUDGE_CACHE",
    "METRICS",
    "PER_CATEGORY",
    "RUN",
    "SAMPLES",
    "Engine",
    "EvalSummary",
    "describe_config",
    "evaluate",
    "image_name",
    "load_records",
    "read_done",
    "write_metrics",
]


@dataclass
class EvalSummary:
    """What one ``evaluate`` call did."""

    out: Path
    total: int
    skipped_done: int
    evaluated: int
    seconds: float
    metrics: dict[str, Any]

    @property
    def edits_per_s(self) -> float:
        """Newly evaluated samples per second of this call."""
        return self.evaluated / self.seconds if self.seconds > 0 else 0.0


def load_records(data: Path, split: str, limit: int | None) -> list[Record]:
    """The split's records (the first ``limit`` when given).

    Raises:
        DatasetError: no manifest for the split, or duplicate ids.
    """
    records = read_manifest(manifest_path(data, split))
    if limit is not None:
        records = records[:limit]
    seen: set[str] = set()
    for r in records:
        if r.id in seen:
            raise DatasetError(
                f"duplicate sample id {r.id!r}",
                where=str(manifest_path(data, split)),
                fix="ids must be unique within a split",
            )
        seen.add(r.id)
    return records


def evaluate(
    model: str,
    data: Path | str,
    out: Path | str,
    params: EvalParams,
    *,
    split: str | None = None,
    limit: int | None = None,
    engine: Engine = "ray",
    settings: Settings | None = None,
    force: bool = False,
    progress: bool = True,
) -> EvalSummary:
    """Evaluate ``model`` on ``data``'s split into ``out`` (resumable; see the module docstring).

    Args:
        model: ``identity``, a saved model directory, ``registry://NAME@ALIAS|@VERSION``, or
            ``predictions:DIR`` — a directory of edits made elsewhere, ``<sample id>.png``
            (:class:`~reasonbrain.evaluation.predictors.PredictionsPredictor`).
        data: dataset directory (Reason50K layout).
        out: output directory.
        params: the ``eval`` section of params.
        split: overrides ``params.split``.
        limit: evaluate only the first N samples of the split (records; a MagicBrush session
            counts as one sample under ``eval.magicbrush_protocol=final_turn``).
        engine: ``ray`` (Ray Data actors) or ``loop`` (in-process).
        settings: where weights/judges live (default: from the environment).
        force: clear a previous evaluation in ``out`` (judge cache included) instead of
            resuming it.
        progress: show a progress bar.

    Raises:
        ConfigError / DatasetError / RegistryError: bad model, data, split or output directory.
    """
    from reasonbrain.config import get_settings

    cfg = settings or get_settings()
    data, out = Path(data), Path(out)
    split = split or params.split
    if limit is not None and limit < 1:
        raise ConfigError("--limit must be at least 1", where=str(limit))
    all_units = eval_units(load_records(data, split, None), params.magicbrush_protocol)
    units = all_units[:limit]
    resolved = resolve_model(model)
    dataset = dataset_identity(data, split)
    key = run_key(resolved, dataset, split, params)
    prepare_out(out, key, force)
    done = read_done(out)
    todo = [u for u in units if u.id not in done]
    write_run_file(out, key, {"limit": limit, "model": resolved.to_dict()})
    worker_kwargs = {
        "model": resolved.to_dict(),
        "data_root": str(data.resolve()),
        "params": params.model_dump(mode="json"),
        "settings": cfg.model_dump(mode="json"),
        "cache_dir": str((out / JUDGE_CACHE).resolve()),
    }
    t0 = time.perf_counter()
    if todo:
        items = work_items([plan_sample(u, params.seed) for u in todo])
        _consume(ENGINES[engine](items, worker_kwargs, params), out, len(todo), progress, done)
    seconds = time.perf_counter() - t0
    rows = [done[u.id] for u in units if u.id in done]
    info = {
        "model": resolved.path if resolved.kind == "directory" else resolved.spec,
        "model_resolved": resolved.to_dict(),
        "data": dataset["path"],
        "dataset": dataset,
        "split": split,
        "eval": key["eval"],
        "limit": limit,
        "engine": engine,
        "evaluated_now": len(todo),
        "resumed_from": len(units) - len(todo),
        "seconds": round(seconds, 3),
    }
    if resolved.kind == PREDICTIONS:
        assert resolved.path is not None
        info["predictions"] = predictions_coverage(Path(resolved.path), [u.id for u in all_units])
    doc = write_metrics(out, rows, params, cfg, info)
    return EvalSummary(out, len(units), len(units) - len(todo), len(todo), seconds, doc)


def predictions_coverage(directory: Path, sample_ids: list[str]) -> dict[str, Any]:
    """How a predictions directory matches the split: image files, how many samples of the
    whole split have one, and the files no sample claims (a naming mistake shows here)."""
    index = prediction_index(directory)
    claimed: set[str] = set()
    matched = 0
    for sid in sample_ids:
        files = prediction_files(index, sid)
        matched += bool(files)
        claimed.update(files)
    unused = sorted({f for names in index.values() for f in names} - claimed)
    return {
        "dir": str(directory),
        "files": sum(len(v) for v in index.values()),
        "split_samples_with_a_file": matched,
        "split_samples": len(sample_ids),
        "unused_files": len(unused),
        "unused_examples": unused[:5],
    }


def _consume(
    batches: Iterator[dict[str, np.ndarray]],
    out: Path,
    total: int,
    progress: bool,
    done: dict[str, dict[str, Any]],
) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    writer = SampleWriter(out)
    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        disable=not progress,
        transient=False,
    )
    try:
        with bar:
            task = bar.add_task("evaluating", total=total)
            for batch in batches:
                for sid, png, row in zip(batch["id"], batch["png"], batch["row"], strict=True):
                    writer.write(str(sid), bytes(png), str(row))
                    done[str(sid)] = json.loads(str(row))
                    bar.advance(task)
    finally:
        writer.close()
