"""The streamed data's order and resume guarantees, without Ray (the plan and the worker side).

The stream of rank ``r`` must hold exactly the samples the pre-loaded path gives rank ``r`` at
each (step, micro-step) — so 1 vs 2 workers and restarted vs uninterrupted runs see the same
samples — and the worker must refuse a stream that is out of order rather than train on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from reasonbrain.training.data import global_batch_indices, shard_indices
from reasonbrain.training.datasource import DataLocation
from reasonbrain.training.stream import StreamedBatches, StreamPlan


def _plan(world: int, accum: int, batch: int = 8, steps: int = 7) -> StreamPlan:
    return StreamPlan(
        location=DataLocation("/nowhere"),
        image_size=16,
        seed=3,
        batch_size=batch,
        world_size=world,
        accum=accum,
        max_steps=steps,
    )


@pytest.mark.parametrize(("world", "accum"), [(1, 1), (2, 1), (2, 2), (4, 2)])
def test_each_rank_streams_its_slice_of_every_global_batch(world: int, accum: int) -> None:
    n = 11  # not a multiple of the batch: epochs wrap inside a step
    plan = _plan(world, accum)
    per_rank = {r: plan.rows(r, 0, n) for r in range(world)}
    for r, rows in per_rank.items():
        want = [
            (step, m, i)
            for step in range(plan.max_steps)
            for m in range(accum)
            for i in shard_indices(
                global_batch_indices(n, plan.seed, step, plan.batch_size),
                rank=r,
                world_size=world,
                micro=m,
                accum=accum,
            )
        ]
        assert [(x["step"], x["micro"], x["index"]) for x in rows] == want
    # together the ranks cover each global batch exactly once (same samples as 1 worker)
    for step in range(plan.max_steps):
        seen = sorted(x["index"] for rows in per_rank.values() for x in rows if x["step"] == step)
        assert seen == sorted(global_batch_indices(n, plan.seed, step, plan.batch_size))


def test_a_resumed_stream_is_the_tail_of_the_uninterrupted_one() -> None:
    plan = _plan(2, 2)
    for rank in (0, 1):
        full = plan.rows(rank, 0, 13)
        for start in (1, 4, 7):
            assert plan.rows(rank, start, 13) == [x for x in full if x["step"] >= start]
    assert plan.rows(0, plan.max_steps, 13) == []  # a finished run streams nothing


class _Shard:
    """A stand-in for a Ray Data iterator: yields the given numpy batches."""

    def __init__(self, batches: list[dict[str, np.ndarray]]) -> None:
        self.batches = batches

    def iter_batches(self, **_: Any) -> Iterator[dict[str, np.ndarray]]:
        return iter(self.batches)


def _raw(step: int, micro: int, n: int = 2, size: int = 4) -> dict[str, np.ndarray]:
    return {
        "step": np.full(n, step),
        "micro": np.full(n, micro),
        "index": np.arange(n) + 10 * step,
        "id": np.asarray([f"s{step}-{i}" for i in range(n)]),
        "instruction": np.asarray(["paint the box"] * n),
        "objects": np.asarray(['["box"]'] * n),
        "target_caption": np.asarray([""] * n),
        "category": np.asarray(["physical"] * n),
        "src": np.zeros((n, size, size, 3), np.uint8),
        "tgt": np.full((n, size, size, 3), 255, np.uint8),
        "mask": np.zeros((n, size, size), np.uint8),
        "has_mask": np.zeros(n, bool),
    }


def test_worker_skips_rows_before_its_step_and_collates_the_contract() -> None:
    shard = _Shard([_raw(0, 0), _raw(0, 1), _raw(1, 0), _raw(1, 1)])
    stream = StreamedBatches(shard, micro=2, accum=2, n_records=5)
    (a, b) = stream.step_batches(1)  # resumed at step 1: step 0's rows are skipped
    assert a["id"] == ["s1-0", "s1-1"] and b["id"] == ["s1-0", "s1-1"]
    assert a["src"].shape == (2, 3, 4, 4) and float(a["src"].min()) == -1.0
    assert float(a["tgt"].max()) == 1.0 and a["objects"] == [["box"], ["box"]]
    with pytest.raises(RuntimeError, match="ended before step 3"):
        stream.step_batches(2)


@pytest.mark.parametrize(
    "batches",
    [
        [_raw(2, 0)],  # the stream is past the step: samples would be skipped
        [_raw(1, 1)],  # the micro-steps are swapped
        [_raw(1, 0, n=1)],  # a short micro-batch
    ],
)
def test_worker_refuses_a_stream_out_of_order(batches: list[dict[str, np.ndarray]]) -> None:
    stream = StreamedBatches(_Shard(batches), micro=2, accum=2, n_records=5)
    with pytest.raises(RuntimeError, match="out of order"):
        stream.step_batches(1)


def test_data_location_refuses_paths_outside_the_dataset(tmp_path: Path) -> None:
    from reasonbrain.errors import ConfigError, DatasetError

    (tmp_path / "ok.txt").write_text("x")
    loc = DataLocation.parse(tmp_path)
    assert loc.read_bytes("ok.txt") == b"x"
    with pytest.raises(DatasetError, match="escapes"):
        loc.read_bytes("../secret")
    with pytest.raises(DatasetError, match="escapes"):
        DataLocation.parse("s3://bucket/data").read_bytes("../other/x.png")
    with pytest.raises(ConfigError, match="no bucket"):
        DataLocation.parse("s3:///data")
    with pytest.raises(ConfigError, match="scheme"):
        DataLocation.parse("gs://bucket/data")
