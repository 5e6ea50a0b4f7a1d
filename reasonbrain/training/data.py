"""Training data order and batches.

The sample order is a pure function of ``(seed, step)``: epoch ``e`` is the permutation
``randperm(n, seed=hash(seed, e))`` and global batch ``s`` is the ``batch_size`` samples at stream
positions ``[s·B, (s+1)·B)`` of the concatenated epochs. A restarted or resumed run therefore sees
exactly the samples the uninterrupted run would have seen, without saving sampler state, and the
*data position* stored in a checkpoint (``step · batch_size``) is informative, not load-bearing.

Each global batch is split into ``grad_accum_steps`` micro-steps, each micro-batch into one
contiguous slice per rank, so 1 worker and 2 workers with the same global batch see the same
samples per optimiser step.

Two ways to feed the loop the same samples (``train.preload``):

- **pre-loaded** (:class:`PreloadedSplit` + :class:`BatchSource`, the tiny default): every image of
  the split is decoded once into ``uint8`` tensors in each worker, so a batch costs an index + a
  float conversion; memory grows with the dataset;
- **streamed** (:mod:`~reasonbrain.training.stream`): Ray Data reads and decodes exactly the
  samples of each rank's micro-batches, in this order, and the worker never holds the dataset.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch

from reasonbrain.data.schema import Record
from reasonbrain.data.torch_dataset import collate_edits
from reasonbrain.errors import ConfigError
from reasonbrain.training.datasource import DataLocation, read_samples, to_item


def mix_seed(*parts: int) -> int:
    """A 63-bit seed derived from integers (stable across processes and Python versions)."""
    blob = ",".join(str(int(p)) for p in parts).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "little") & ((1 << 63) - 1)


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The sample order of one epoch."""
    g = torch.Generator().manual_seed(mix_seed(seed, epoch, 0x5EED))
    return torch.randperm(n, generator=g)


def global_batch_indices(n: int, seed: int, step: int, batch_size: int) -> list[int]:
    """Dataset indices of global batch ``step`` (0-based)."""
    if n <= 0:
        raise ConfigError("the training split is empty", where="train.jsonl", fix="add data")
    start, end = step * batch_size, (step + 1) * batch_size
    out: list[int] = []
    epoch, cache = -1, torch.empty(0, dtype=torch.long)
    for pos in range(start, end):
        e = pos // n
        if e != epoch:
            epoch, cache = e, epoch_permutation(n, seed, e)
        out.append(int(cache[pos % n]))
    return out


def micro_batch_size(batch_size: int, world_size: int, accum: int) -> int:
    """Samples per rank per micro-step.

    Raises:
        ConfigError: the global batch is not divisible by ``world_size × accum``.
    """
    if batch_size % (world_size * accum):
        raise ConfigError(
            f"train.batch_size {batch_size} is not divisible by workers × grad_accum_steps "
            f"({world_size} × {accum})",
            where="params.yaml train",
            fix="choose a batch size that is a multiple of workers × grad_accum_steps",
        )
    return batch_size // (world_size * accum)


def shard_indices(
    global_indices: list[int], *, rank: int, world_size: int, micro: int, accum: int
) -> list[int]:
    """The slice of a global batch that ``rank`` processes at micro-step ``micro``."""
    per = len(global_indices) // (world_size * accum)
    start = (micro * world_size + rank) * per
    return global_indices[start : start + per]


def rank_positions(
    *, step: int, rank: int, world_size: int, micro: int, accum: int, batch_size: int
) -> range:
    """Stream positions ``rank`` processes at ``(step, micro)``: the slice of global batch
    ``step`` (positions ``[step·B, (step+1)·B)``) that :func:`shard_indices` takes."""
    per = batch_size // (world_size * accum)
    start = step * batch_size + (micro * world_size + rank) * per
    return range(start, start + per)


class PreloadedSplit:
    """A split decoded once into ``uint8`` tensors (items as ``EditDataset`` gives them), from a
    directory or an S3 prefix.

    Args:
        location: the dataset.
        split: ``train`` / ``val`` / ``test``.
        image_size: side length images are resized to.
        limit: keep only the first ``limit`` records.
    """

    def __init__(
        self, location: DataLocation, split: str, image_size: int, limit: int | None = None
    ) -> None:
        self.records: list[Record] = location.records(split, limit=limit)
        self._rows = read_samples(location, self.records, image_size)
        self._src = torch.stack([torch.from_numpy(r.pop("src")) for r in self._rows])
        self._tgt = torch.stack([torch.from_numpy(r.pop("tgt")) for r in self._rows])
        self._mask = torch.stack([torch.from_numpy(r.pop("mask")) for r in self._rows])

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, idx: int) -> dict[str, Any]:
        row = {**self._rows[idx], "src": self._src[idx], "tgt": self._tgt[idx]}
        return to_item({**row, "mask": self._mask[idx]})


class BatchSource:
    """Batches of a (pre-loaded) dataset by index, in the :func:`collate_edits` contract.

    With the model's ``processor``, each record's text is tokenised (and its object phrases
    extracted) once, on first use, and cached: later epochs only pad (outside the model's
    forward, as the processor contract requires).
    """

    def __init__(self, dataset: Any, processor: Any = None) -> None:
        self.dataset = dataset
        self.processor = processor
        self._text: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self.dataset)

    def batch(self, indices: list[int]) -> dict[str, Any]:
        """Collate the given samples."""
        items = [self.dataset[i] for i in indices]
        if self.processor is not None:
            for i, item in zip(indices, items, strict=True):
                if i not in self._text:
                    self._text[i] = self.processor.encode(
                        item["instruction"], item["target_caption"] or None
                    )
                item["text_features"] = self._text[i]
        return collate_edits(items, processor=self.processor)


class PreloadedBatches:
    """The pre-loaded path's micro-batches of a step for one rank (same interface as
    :class:`~reasonbrain.training.stream.StreamedBatches`)."""

    def __init__(
        self, source: BatchSource, *, seed: int, batch_size: int, rank: int, world: int, accum: int
    ) -> None:
        self.source, self.seed, self.batch_size = source, seed, batch_size
        self.rank, self.world, self.accum = rank, world, accum

    def __len__(self) -> int:
        return len(self.source)

    def step_batches(self, step: int) -> list[dict[str, Any]]:
        """The ``accum`` micro-batches rank ``rank`` processes at ``step``."""
        g = global_batch_indices(len(self.source), self.seed, step, self.batch_size)
        return [
            self.source.batch(
                shard_indices(g, rank=self.rank, world_size=self.world, micro=m, accum=self.accum)
            )
            for m in range(self.accum)
        ]
