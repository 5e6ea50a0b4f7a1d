"""The per-worker loop Ray Train runs on every rank: restore, then step, validate, checkpoint.

The pieces: :class:`~reasonbrain.training.state.TrainState` (restore/save),
:func:`~reasonbrain.training.step.train_step`, :func:`~reasonbrain.training.step.eval_step`, and the
rank's batches — pre-loaded (:class:`~reasonbrain.training.data.PreloadedBatches`) or streamed by
Ray Data (:class:`~reasonbrain.training.stream.StreamedBatches`). Rank 0 keeps the step log, saves
sample edits and writes the checkpoint (every rank writes its shards under FSDP); every rank
reports it (``ray.train.report`` is a barrier).
"""

from __future__ import annotations

import functools
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from reasonbrain.config import Params
from reasonbrain.training.data import BatchSource, PreloadedBatches, PreloadedSplit
from reasonbrain.training.datasource import DataLocation
from reasonbrain.training.failures import failure_note
from reasonbrain.training.metrics import now, write_log
from reasonbrain.training.protocol import ModelSpec
from reasonbrain.training.state import SAMPLES_DIR, TrainState
from reasonbrain.training.step import StepContext, eval_step, train_step


@dataclass(frozen=True)
class LoopJob:
    """Everything a worker needs (pickled into ``train_loop_config``).

    Attributes:
        params: the run's params.
        data: the dataset (a directory every worker can read, or an S3 prefix).
        spec: how to load the model.
        init_model: Ray object ref of the initial model's files ``{relative path: bytes}`` (used
            when the run has no checkpoint yet).
        run_name: the Ray Train run name.
        n_records: size of the training split.
        live_log: a local path rank 0 mirrors the step log to (progress bar), or ``None``.
    """

    params: Params
    data: DataLocation
    spec: ModelSpec
    init_model: Any
    run_name: str
    n_records: int
    live_log: str | None = None


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Ray Train entry point: ``config = {"job": LoopJob}``; a failure carries a note saying
    where it was raised (:func:`failure_note`)."""
    try:
        _train(config["job"])
    except Exception as err:
        note = failure_note(err)
        if note:
            err.add_note(note)
        raise


def _train(job: LoopJob) -> None:
    import ray.train
    import ray.train.torch

    from reasonbrain.models.precision import frozen_dtype

    tp = job.params.train
    rc = ray.train.get_context()
    ctx = StepContext(tp, rc.get_world_rank(), rc.get_world_size(), ray.train.torch.get_device())
    if ctx.device.type == "cpu":
        torch.set_num_threads(tp.cpus_per_worker)
    work = Path(tempfile.mkdtemp(prefix="rb-train-"))
    samples = work / SAMPLES_DIR
    samples.mkdir()
    restore = functools.partial(
        TrainState.restore,
        job.spec,
        tp,
        device=ctx.device,
        world=ctx.world,
        work=work,
        dtype=frozen_dtype(tp.precision, ctx.device.type),  # of frozen pretrained parts
    )
    ckpt = ray.train.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d:
            state = restore(checkpoint=Path(d), init_model=None)
            if (Path(d) / SAMPLES_DIR).is_dir():
                shutil.copytree(Path(d) / SAMPLES_DIR, samples, dirs_exist_ok=True)
    else:
        init = _files_to_dir(ray.get(job.init_model), work / "init")
        state = restore(checkpoint=None, init_model=init)

    processor = getattr(state.model, "processor", None)  # text → tensors, outside the forward
    micro = tp.batch_size // (ctx.world * tp.grad_accum_steps)
    data = _batches(job, ctx, processor, micro)
    val = None
    if tp.val_samples > 0 and job.data.has_split("val"):
        split = PreloadedSplit(job.data, "val", job.params.model.image_size, tp.val_samples)
        val = BatchSource(split, processor)

    live = Path(job.live_log) if (job.live_log and ctx.rank == 0) else None
    if live is not None:
        live.parent.mkdir(parents=True, exist_ok=True)
        write_log(live, state.log)
    print_every = max(1, tp.max_steps // 20)
    card = {"params_hash": job.params.section_hash("model", "train")}
    if state.step >= tp.max_steps and ctx.rank == 0:
        print(f"[{job.run_name}] already at step {state.step} >= max_steps {tp.max_steps}")
    state.wrapped.train()
    while state.step < tp.max_steps:
        t0 = now()
        batches = data.step_batches(state.step)
        data_s = now() - t0
        row = {"step": state.step + 1, **train_step(state, batches, ctx)}
        step_s = now() - t0
        row |= {
            "step_s": step_s,
            "samples_per_s": tp.batch_size / step_s if step_s > 0 else 0.0,
            "data_wait_frac": data_s / step_s if step_s > 0 else 0.0,
            "epoch": (state.step * tp.batch_size) / max(1, len(data)),
            "peak_mem_mb": _peak_mem_mb(ctx.device),
        }
        last = state.step == tp.max_steps
        if val is not None and (state.step % tp.val_every == 0 or last):
            scores, sample = eval_step(state, val, ctx, spec=job.spec, micro=micro)
            row |= scores
            if sample is not None:
                _save_grid(samples / f"step_{state.step:08d}.png", *sample)
        if ctx.rank == 0:
            state.log.append(row)
            if live is not None:
                with live.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(row, sort_keys=True) + "\n")
            elif state.step % print_every == 0 or last:
                print(f"[{job.run_name}] step {state.step}/{tp.max_steps} loss {row['loss']:.4f}")
        if state.step % tp.checkpoint_every == 0 or last:
            _report(state, job, ctx, row, final=last, card=card, samples=samples)
    shutil.rmtree(work, ignore_errors=True)


def _batches(job: LoopJob, ctx: StepContext, processor: Any, micro: int) -> Any:
    """This rank's micro-batches: pre-loaded in memory, or its Ray Data stream."""
    tp = job.params.train
    if tp.preload:
        split = PreloadedSplit(job.data, "train", job.params.model.image_size)
        return PreloadedBatches(
            BatchSource(split, processor),
            seed=tp.seed,
            batch_size=tp.batch_size,
            rank=ctx.rank,
            world=ctx.world,
            accum=tp.grad_accum_steps,
        )
    import ray.train

    from reasonbrain.training.stream import StreamedBatches, shard_name

    return StreamedBatches(
        ray.train.get_dataset_shard(shard_name(ctx.rank)),
        micro=micro,
        accum=tp.grad_accum_steps,
        n_records=job.n_records,
        processor=processor,
        prefetch=tp.prefetch_batches,
    )


def _report(
    state: TrainState,
    job: LoopJob,
    ctx: StepContext,
    row: dict[str, Any],
    *,
    final: bool,
    card: dict[str, Any],
    samples: Path,
) -> None:
    """Write this rank's part of the checkpoint and report it (a barrier over the ranks)."""
    import ray.train

    metrics = {"step": state.step, **{k: v for k, v in row.items() if isinstance(v, float)}}
    name = f"checkpoint_{state.step:08d}"
    summary = {
        "data_position": state.step * job.params.train.batch_size,
        "run_name": job.run_name,
        "world_size": ctx.world,
        "strategy": job.params.train.strategy,
        "params": job.params.to_dict(),
    }
    with tempfile.TemporaryDirectory(prefix="rb-ckpt-") as tmp:
        wrote = state.save(
            Path(tmp), rank=ctx.rank, final=final, card=card, summary=summary, samples=samples
        )
        checkpoint = ray.train.Checkpoint.from_directory(tmp) if wrote else None
        ray.train.report(metrics, checkpoint=checkpoint, checkpoint_dir_name=name)


def _files_to_dir(files: dict[str, bytes], directory: Path) -> Path:
    for rel, blob in files.items():
        dest = directory / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(blob)
    return directory


def dir_to_files(directory: Path) -> dict[str, bytes]:
    """All files under ``directory`` as ``{relative path: bytes}``."""
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def _peak_mem_mb(device: torch.device) -> float:
    """Peak memory of this worker: GPU allocations on CUDA, else the process's max RSS."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _save_grid(path: Path, batch: dict[str, Any], images: list[Any]) -> None:
    """Rows of (source | model edit | target) as one PNG."""
    from PIL import Image

    from reasonbrain.data.torch_dataset import to_pil

    rows = []
    for i, edited in enumerate(images):
        trio = [to_pil(batch["src"][i]), edited.convert("RGB"), to_pil(batch["tgt"][i])]
        w, h = trio[0].size
        row = Image.new("RGB", (3 * w, h))
        for j, im in enumerate(trio):
            row.paste(im.resize((w, h)), (j * w, 0))
        rows.append(row)
    if not rows:
        return
    grid = Image.new("RGB", (rows[0].width, rows[0].height * len(rows)))
    for i, r in enumerate(rows):
        grid.paste(r, (0, i * r.height))
    tmp = path.with_name(path.name + ".tmp.png")
    grid.save(tmp)
    tmp.replace(path)
