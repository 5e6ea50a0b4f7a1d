"""Training data as a stream (``train.preload: false``): Ray Data reads, decodes and hands each
rank exactly its samples, in order; no worker holds the dataset.

**What each rank gets.** Rank ``r`` of ``W`` gets its own dataset, ``train_rank<r>``
(``ray.train.get_dataset_shard``), whose rows are the samples of its micro-batches in training
order: for every step ``s`` from the run's resume step to ``max_steps`` and micro-step ``m``, the
slice of global batch ``s`` that :func:`~reasonbrain.training.data.shard_indices` gives it. So the
order is the pre-loaded path's — a pure function of ``(seed, step)`` — and 1 or 2 workers, a
restarted or a resumed run see the very samples the uninterrupted run would have seen. Each row
carries its ``step`` and ``micro``; the worker checks them, so a stream out of order fails loudly
instead of training on the wrong samples.

Why not one dataset split by Ray Train (``streaming_split``)? Its output splitter hands blocks to
whichever rank asks first and "does not provide any ordering guarantees" (Ray's docs): which
samples a rank sees, and so the run, would depend on timing.

**Resuming.** The datasets are given to the trainer as factories (:class:`RankStream`), which Ray
Train calls each time it starts a worker group — first start, restart after a failure
(``FailureConfig``) or ``--resume``. The factory reads the run's latest registered checkpoint
(``ray.train.Result.from_path``: the same snapshot Ray restores the workers from) and starts the
stream at its step; nothing before it is read or decoded again.

**The pipeline.** The plan (one row per sample occurrence: step, micro, record fields) is cut into
blocks of whole steps; ``map_batches(decode_rows)`` reads the images from the dataset directory or
S3 prefix and decodes/resizes them (``uint8``) in Ray Data tasks of ``train.data_cpus`` CPUs,
``preserve_order`` keeps the plan's order, and the worker prefetches ``train.prefetch_batches``
micro-batches. The worker turns rows into items, runs the model's processor on their text (a
bounded cache: flat memory) and collates them
(:func:`~reasonbrain.data.torch_dataset.collate_edits`).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from reasonbrain.data.torch_dataset import collate_edits
from reasonbrain.training.checkpoint import STATE_JSON, Storage
from reasonbrain.training.data import global_batch_indices, micro_batch_size, rank_positions
from reasonbrain.training.datasource import DataLocation, read_samples, to_item

SHARD_NAME = "train_rank{rank}"
TEXT_CACHE_SIZE = 4096
"""Processor outputs kept per worker (records seen again in a later epoch skip tokenising); a
bound, so that memory does not grow with the dataset."""


def shard_name(rank: int) -> str:
    """The dataset name of ``rank``'s stream (``ray.train.get_dataset_shard``)."""
    return SHARD_NAME.format(rank=rank)


@dataclass(frozen=True)
class StreamPlan:
    """What a rank's stream is made of (picklable; built on the driver).

    Attributes:
        location: the dataset (directory or S3 prefix).
        image_size: side length images are decoded to.
        seed, batch_size, world_size, accum, max_steps: the run's ``train`` params.
        data_cpus: CPUs per Ray Data read/decode task.
    """

    location: DataLocation
    image_size: int
    seed: int
    batch_size: int
    world_size: int
    accum: int
    max_steps: int
    data_cpus: float = 1.0

    @property
    def micro(self) -> int:
        """Samples per rank per micro-step."""
        return micro_batch_size(self.batch_size, self.world_size, self.accum)

    def rows(self, rank: int, start_step: int, n_records: int) -> list[dict[str, int]]:
        """``{step, micro, index}`` of every sample rank ``rank`` processes from ``start_step``."""
        out: list[dict[str, int]] = []
        for step in range(start_step, self.max_steps):
            g = global_batch_indices(n_records, self.seed, step, self.batch_size)
            for m in range(self.accum):
                pos = rank_positions(
                    step=step,
                    rank=rank,
                    world_size=self.world_size,
                    micro=m,
                    accum=self.accum,
                    batch_size=self.batch_size,
                )
                out.extend(
                    {"step": step, "micro": m, "index": g[p - step * self.batch_size]} for p in pos
                )
        return out


def build_rank_dataset(plan: StreamPlan, rank: int, start_step: int) -> Any:
    """Rank ``rank``'s stream from ``start_step`` (a lazy ``ray.data.Dataset``)."""
    import pyarrow as pa
    import ray.data

    records = plan.location.records("train")
    rows = plan.rows(rank, start_step, len(records))
    names: tuple[str, ...] = ("step", "micro", "index", "id", "src_image", "tgt_image")
    names += ("mask_image", "instruction", "objects", "target_caption", "category")
    columns: dict[str, list[Any]] = {k: [] for k in names}
    for row in rows:
        rec = records[row["index"]]
        mask = (rec.meta or {}).get("mask")
        for key, value in (
            ("step", row["step"]),
            ("micro", row["micro"]),
            ("index", row["index"]),
            ("id", rec.id),
            ("src_image", rec.src_image),
            ("tgt_image", rec.tgt_image),
            ("mask_image", mask if isinstance(mask, str) and mask else ""),
            ("instruction", rec.instruction),
            ("objects", json.dumps(list(rec.objects))),
            ("target_caption", rec.target_caption or ""),
            ("category", rec.category),
        ):
            columns[key].append(value)
    table = pa.table(columns)
    # blocks of whole steps (at least 32 rows): parallel decode tasks, cheap bookkeeping
    per_step = plan.micro * plan.accum
    block = per_step * max(1, -(-32 // per_step))
    blocks = [table.slice(i, block) for i in range(0, table.num_rows, block)] or [table]
    ds = ray.data.from_arrow(blocks).map_batches(
        decode_rows,  # type: ignore[arg-type]  # keyword-only options come from fn_kwargs
        batch_size=None,
        batch_format="pyarrow",
        fn_kwargs={"location": plan.location, "image_size": plan.image_size},
        num_cpus=plan.data_cpus,
    )
    ds.context.execution_options.preserve_order = True  # (the trainer's DataConfig says so too)
    return ds


def decode_rows(table: Any, *, location: DataLocation, image_size: int) -> dict[str, np.ndarray]:
    """Ray Data task: read and decode a block of plan rows (``uint8`` images, text as is)."""
    from reasonbrain.data.schema import Record

    cols = table.to_pydict()
    records = [
        Record(
            id=cols["id"][i],
            category=cols["category"][i],
            src_image=cols["src_image"][i],
            tgt_image=cols["tgt_image"][i],
            instruction=cols["instruction"][i],
            meta={"mask": cols["mask_image"][i]} if cols["mask_image"][i] else None,
        )
        for i in range(table.num_rows)
    ]
    samples = read_samples(location, records, image_size)
    out = {k: [s[k] for s in samples] for k in ("src", "tgt", "mask", "has_mask")}
    keep = ("step", "micro", "index", "id", "instruction", "objects", "target_caption", "category")
    return {
        **{k: np.asarray(cols[k]) for k in keep},
        "src": np.stack(out["src"]),
        "tgt": np.stack(out["tgt"]),
        "mask": np.stack(out["mask"]),
        "has_mask": np.asarray(out["has_mask"], dtype=bool),
    }


def resume_step(storage: Storage, run_name: str) -> int:
    """The step of the run's latest registered checkpoint (0 when there is none) — where the
    workers Ray Train starts next will resume."""
    from pyarrow import fs
    from ray.train import Result

    filesystem = storage.filesystem or fs.LocalFileSystem()
    run_path = f"{storage.path}/{run_name}"
    try:
        result = Result.from_path(run_path, storage_filesystem=filesystem)
    except RuntimeError:  # no run directory or no snapshot yet
        return 0
    ckpt = result.checkpoint
    if ckpt is None:
        return 0
    with ckpt.filesystem.open_input_stream(f"{ckpt.path}/{STATE_JSON}") as fh:
        return int(json.loads(fh.read().decode("utf-8"))["step"])


@dataclass(frozen=True)
class RankStream:
    """Dataset factory for ``TorchTrainer(datasets=…)``: Ray Train calls it at every worker-group
    start; it starts rank ``rank``'s stream at the run's resume step (:func:`resume_step`)."""

    plan: StreamPlan
    rank: int
    storage: Storage
    run_name: str

    def __call__(self) -> Any:
        return build_rank_dataset(self.plan, self.rank, resume_step(self.storage, self.run_name))


def ingest_config() -> Any:
    """``DataConfig``: each rank's dataset whole (not split again), order preserved."""
    from ray.data import ExecutionOptions
    from ray.train import DataConfig

    return DataConfig(datasets_to_split=[], execution_options=ExecutionOptions(preserve_order=True))


class StreamedBatches:
    """The worker side: micro-batches of one step from the rank's shard, checked against the
    step they must belong to.

    Args:
        shard: ``ray.train.get_dataset_shard(shard_name(rank))``.
        micro: samples per micro-batch; ``accum``: micro-steps per step.
        n_records: size of the training split (for the epoch count in the log).
        processor: the model's processor (text → tensors), or ``None``.
        prefetch: micro-batches Ray Data prepares ahead.
    """

    def __init__(
        self,
        shard: Any,
        *,
        micro: int,
        accum: int,
        n_records: int,
        processor: Any = None,
        prefetch: int = 4,
    ) -> None:
        self.micro, self.accum, self.n_records, self.processor = micro, accum, n_records, processor
        self._batches: Iterator[dict[str, np.ndarray]] = iter(
            shard.iter_batches(
                batch_size=micro, batch_format="numpy", prefetch_batches=prefetch, drop_last=False
            )
        )
        self._text: OrderedDict[int, Any] = OrderedDict()

    def __len__(self) -> int:
        return self.n_records

    def step_batches(self, step: int) -> list[dict[str, Any]]:
        """The ``accum`` micro-batches of ``step`` (rows of earlier steps are skipped: a stream
        that starts before the restored checkpoint).

        Raises:
            RuntimeError: the stream ended, or is past ``step`` (samples would be skipped).
        """
        out: list[dict[str, Any]] = []
        while len(out) < self.accum:
            try:
                raw = next(self._batches)
            except StopIteration:
                raise RuntimeError(f"the training stream ended before step {step + 1}") from None
            steps, micros = set(raw["step"].tolist()), set(raw["micro"].tolist())
            if steps == {step} and micros == {len(out)} and len(raw["step"]) == self.micro:
                out.append(self._collate(raw))
            elif max(steps) < step:
                continue
            else:
                raise RuntimeError(
                    f"training stream out of order: expected step {step} micro-step {len(out)}, "
                    f"got steps {sorted(steps)} micro-steps {sorted(micros)}"
                )
        return out

    def _collate(self, raw: dict[str, np.ndarray]) -> dict[str, Any]:
        n = len(raw["id"])
        items = [to_item({k: v[i] for k, v in raw.items()}) for i in range(n)]
        if self.processor is not None:
            for item, key in zip(items, raw["index"].tolist(), strict=True):
                feats = self._text.get(key)
                if feats is None:
                    feats = self.processor.encode(
                        item["instruction"], item["target_caption"] or None
                    )
                    self._text[key] = feats
                    if len(self._text) > TEXT_CACHE_SIZE:
                        self._text.popitem(last=False)
                else:
                    self._text.move_to_end(key)
                item["text_features"] = feats
        return collate_edits(items, processor=self.processor)
