"""Where the worker runs: Ray Data actors, or a plain in-process loop.

Both take the work items (:func:`~reasonbrain.evaluation.worker.work_items`) and the worker's
constructor arguments, and yield the worker's answers batch by batch as they finish; the driver
writes them to the output store. ``ray`` is the default; ``loop`` (no Ray) is the throughput
benchmark's baseline and what fast tests use.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from reasonbrain.compute import ensure_ray
from reasonbrain.evaluation.worker import EvalWorker

if TYPE_CHECKING:
    from reasonbrain.config import EvalParams

Engine = Literal["ray", "loop"]
Batches = Iterator[dict[str, np.ndarray]]


def _as_batch(items: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
    return {"plan": np.array([i["plan"] for i in items], dtype=object)}


def run_loop(
    items: Sequence[dict[str, Any]], worker_kwargs: dict[str, Any], params: EvalParams
) -> Batches:
    """The plain loop: one worker in this process."""
    worker = EvalWorker(**worker_kwargs)
    for i in range(0, len(items), params.batch_size):
        yield worker(_as_batch(items[i : i + params.batch_size]))


def run_ray(
    items: Sequence[dict[str, Any]], worker_kwargs: dict[str, Any], params: EvalParams
) -> Batches:
    """Ray Data: ``map_batches`` over an actor pool of :class:`EvalWorker`.

    Uses the running Ray cluster (``RAY_ADDRESS`` or an ``ray.init`` already made) or starts a
    local one. Blocks hold about one batch each so results stream back as they finish.
    """
    import ray

    ensure_ray(log_to_driver=False)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    blocks = max(1, min(len(items), math.ceil(len(items) / params.batch_size)))
    ds: Any = ray.data.from_items(list(items), override_num_blocks=blocks)
    ds = ds.map_batches(
        EvalWorker,
        fn_constructor_kwargs=worker_kwargs,
        batch_size=params.batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=params.concurrency),
        num_cpus=params.num_cpus_per_actor,
        num_gpus=params.num_gpus_per_actor or None,
    )
    yield from ds.iter_batches(batch_size=None, batch_format="numpy")


ENGINES: dict[str, Callable[[Sequence[dict[str, Any]], dict[str, Any], EvalParams], Batches]] = {
    "ray": run_ray,
    "loop": run_loop,
}
