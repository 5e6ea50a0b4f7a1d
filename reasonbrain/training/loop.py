"""The per-worker training loop that Ray Train runs on every rank.

Order of one optimiser step (step ``s`` counts completed steps, 0-based here):

1. the global batch of step ``s`` is a pure function of ``(seed, s)`` (:mod:`.data`); each rank
   takes its slice of each micro-batch;
2. before each micro-step every RNG is re-seeded from ``(seed, s, micro, rank)``, so noise,
   timesteps and conditioning dropout are also a pure function of the step — a restarted run
   repeats the uninterrupted run exactly (the RNG states are still saved in checkpoints, for models
   that draw outside the step);
3. forward (bf16 autocast when configured), backward (DDP gradient all-reduce on the last
   micro-step only), gradient clipping, AdamW, the LR schedule, EMA;
4. the loss terms are averaged over ranks for the log; rank 0 logs, validates every
   ``val_every`` steps and, every ``checkpoint_every`` steps and at the end, writes a checkpoint
   that every rank reports (``ray.train.report`` is a barrier).
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reasonbrain.config import Params
from reasonbrain.training.checkpoint import (
    LOG_FILE,
    MODEL_DIR,
    capture_rng,
    load_train_state,
    restore_rng,
    save_train_state,
)
from reasonbrain.training.data import (
    BatchSource,
    global_batch_indices,
    micro_batch_size,
    mix_seed,
    shard_indices,
)
from reasonbrain.training.failures import failure_note
from reasonbrain.training.metrics import now, read_log, write_log
from reasonbrain.training.optim import build_optimizer, build_scheduler
from reasonbrain.training.protocol import ModelSpec, load_model, save_model

SAMPLES_DIR = "samples"
EMA_MODEL_DIR = "model_ema"


@dataclass(frozen=True)
class LoopJob:
    """Everything a worker needs (pickled into ``train_loop_config``).

    Attributes:
        params: the run's params.
        data_dir: dataset directory (must be readable by every worker).
        spec: how to load the model.
        init_model: Ray object ref of the initial model's files ``{relative path: bytes}`` (used
            when the run has no checkpoint yet).
        run_name: the Ray Train run name.
        live_log: a local path rank 0 mirrors the step log to (progress bar), or ``None``.
        fail_at_step: test hook — rank ``fail_rank`` raises once while computing this step.
        fail_marker: file that records that the failure was injected (so it happens once).
        fail_rank: which rank fails.
    """

    params: Params
    data_dir: str
    spec: ModelSpec
    init_model: Any
    run_name: str
    live_log: str | None = None
    fail_at_step: int | None = None
    fail_marker: str | None = None
    fail_rank: int = 0


class InjectedFailure(RuntimeError):
    """Raised by the failure-injection test hook."""


def seed_everything(seed: int) -> None:
    """Seed torch (CPU + CUDA), numpy and ``random``."""
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))
    random.seed(seed)


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


def _autocast(device: torch.device, precision: str) -> AbstractContextManager[Any]:
    from reasonbrain.models.precision import frozen_dtype

    if frozen_dtype(precision, device.type) == torch.bfloat16:  # the same rule as frozen parts
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def _peak_mem_mb(device: torch.device) -> float:
    """Peak memory of this worker: GPU allocations on CUDA, else the process's max RSS."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _scalar(x: Any) -> float:
    return float(x.detach().float()) if isinstance(x, torch.Tensor) else float(x or 0.0)


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Ray Train entry point: ``config = {"job": LoopJob}``; a failure carries a note saying
    where it was raised (:func:`failure_note`)."""
    try:
        _train_loop(config)
    except Exception as err:
        note = failure_note(err)
        if note:
            err.add_note(note)
        raise


def _train_loop(config: dict[str, Any]) -> None:
    import ray
    import ray.train
    import ray.train.torch
    import torch.distributed as dist

    from reasonbrain.data.torch_dataset import EditDataset

    job: LoopJob = config["job"]
    tp, mp = job.params.train, job.params.model
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    device = ray.train.torch.get_device()
    if device.type == "cpu":
        torch.set_num_threads(tp.cpus_per_worker)
    micro = micro_batch_size(tp.batch_size, world, tp.grad_accum_steps)

    source = BatchSource(EditDataset(job.data_dir, "train", mp.image_size, preload=tp.preload))
    val_set = None
    if rank == 0 and tp.val_samples > 0 and (Path(job.data_dir) / "val.jsonl").is_file():
        val_set = EditDataset(
            job.data_dir, "val", mp.image_size, preload=True, limit=tp.val_samples
        )

    # ---------------------------------------------------------------- model + state
    work = Path(tempfile.mkdtemp(prefix="rb-train-"))
    samples_dir = work / SAMPLES_DIR
    samples_dir.mkdir()
    state: dict[str, Any] | None = None
    log_rows: list[dict[str, Any]] = []
    ckpt = ray.train.get_checkpoint()
    # frozen pretrained parts in the compute dtype (reasonbrain.models.precision)
    from reasonbrain.models.precision import frozen_dtype

    dtype = frozen_dtype(tp.precision, device.type)
    if ckpt is not None:
        with ckpt.as_directory() as d:
            model = load_model(job.spec, Path(d) / MODEL_DIR, dtype=dtype)
            state = load_train_state(Path(d))
            log_rows = read_log(Path(d) / LOG_FILE)
            if (Path(d) / SAMPLES_DIR).is_dir():
                shutil.copytree(Path(d) / SAMPLES_DIR, samples_dir, dirs_exist_ok=True)
    else:
        files = ray.get(job.init_model)
        model = load_model(job.spec, _files_to_dir(files, work / "init"), dtype=dtype)
    model.to(device)
    processor = getattr(model, "processor", None)  # text → tensors, outside the DDP forward
    source.processor = processor
    if tp.gradient_checkpointing:
        enable = getattr(model, "enable_gradient_checkpointing", None)
        if not callable(enable):
            from reasonbrain.errors import ConfigError

            raise ConfigError(
                "this model does not support gradient checkpointing",
                where="params.yaml train.gradient_checkpointing",
                fix="set it to false",
            )
        enable()

    optimizer = build_optimizer(model, tp)
    scheduler = build_scheduler(optimizer, tp)
    trainable = [p for g in optimizer.param_groups for p in g["params"]]
    group_names = [str(g["name"]) for g in optimizer.param_groups]
    ema = None
    if tp.ema_decay > 0:
        from diffusers.training_utils import EMAModel

        ema = EMAModel(trainable, decay=tp.ema_decay, foreach=True)
    step = 0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if ema is not None and state.get("ema") is not None:
            ema.load_state_dict(state["ema"])
        step = int(state["step"])
        restore_rng(state["rng"])
    log_rows = [r for r in log_rows if int(r["step"]) <= step]

    strategy_kwargs: dict[str, Any] = (
        {"find_unused_parameters": True} if tp.strategy == "ddp" else {"use_orig_params": True}
    )
    wrapped = ray.train.torch.prepare_model(
        model,
        move_to_device=False,
        parallel_strategy=tp.strategy,
        parallel_strategy_kwargs=strategy_kwargs,
    )

    live = Path(job.live_log) if (job.live_log and rank == 0) else None
    if live is not None:
        live.parent.mkdir(parents=True, exist_ok=True)
        write_log(live, log_rows)
    print_every = max(1, tp.max_steps // 20)
    card = {"params_hash": job.params.section_hash("model", "train")}

    def validate(current: int) -> dict[str, Any]:
        assert val_set is not None
        model.eval()
        losses: list[float] = []
        with torch.no_grad():
            for i, start in enumerate(range(0, len(val_set), max(micro, 1))):
                idx = list(range(start, min(start + max(micro, 1), len(val_set))))
                seed_everything(mix_seed(tp.seed, 0xEA1, i))
                with _autocast(device, tp.precision):
                    out = model(BatchSource(val_set, processor).batch(idx))
                losses.append(_scalar(out.loss) * len(idx))
            extra: dict[str, Any] = {"val_loss": sum(losses) / max(1, len(val_set))}
            n = min(tp.sample_images, len(val_set))
            if n and job.spec.sample is not None:
                batch = BatchSource(val_set, processor).batch(list(range(n)))
                gen = torch.Generator().manual_seed(tp.seed)
                images = job.spec.sample(model, batch, tp.sample_steps, gen)
                if images:
                    _save_grid(samples_dir / f"step_{current:08d}.png", batch, images)
        model.train()
        return extra

    def checkpoint(current: int, row: dict[str, Any], final: bool) -> None:
        metrics = {"step": current, **{k: v for k, v in row.items() if isinstance(v, float)}}
        name = f"checkpoint_{current:08d}"
        if rank != 0:
            ray.train.report(metrics, checkpoint=None, checkpoint_dir_name=name)
            return
        with tempfile.TemporaryDirectory(prefix="rb-ckpt-") as tmp:
            d = Path(tmp)
            save_model(model, d / MODEL_DIR, **card)
            if ema is not None and final:
                ema.store(trainable)
                ema.copy_to(trainable)
                save_model(model, d / EMA_MODEL_DIR, **card)
                ema.restore(trainable)
            train_state = {
                "step": current,
                "data_position": current * tp.batch_size,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "ema": ema.state_dict() if ema is not None else None,
                "rng": capture_rng(),
            }
            summary = {
                "step": current,
                "data_position": current * tp.batch_size,
                "run_name": job.run_name,
                "world_size": world,
                "final": final,
                "params": job.params.to_dict(),
            }
            save_train_state(d, train_state, summary)
            write_log(d / LOG_FILE, log_rows)
            shutil.copytree(samples_dir, d / SAMPLES_DIR)
            ray.train.report(
                metrics,
                checkpoint=ray.train.Checkpoint.from_directory(str(d)),
                checkpoint_dir_name=name,
            )

    # ---------------------------------------------------------------------- loop
    wrapped.train()
    row: dict[str, Any] = {}
    while step < tp.max_steps:
        if (
            job.fail_at_step == step + 1
            and rank == job.fail_rank
            and job.fail_marker
            and not Path(job.fail_marker).exists()
        ):
            Path(job.fail_marker).parent.mkdir(parents=True, exist_ok=True)
            Path(job.fail_marker).write_text(str(step + 1))
            raise InjectedFailure(f"injected failure at step {step + 1} on rank {rank}")
        t0 = now()
        data_s = 0.0
        g_idx = global_batch_indices(len(source), tp.seed, step, tp.batch_size)
        terms = torch.zeros(4, dtype=torch.float64)
        for m in range(tp.grad_accum_steps):
            td = now()
            idx = shard_indices(
                g_idx, rank=rank, world_size=world, micro=m, accum=tp.grad_accum_steps
            )
            batch = source.batch(idx)
            data_s += now() - td
            seed_everything(mix_seed(tp.seed, step, m, rank))
            last = m == tp.grad_accum_steps - 1
            sync: AbstractContextManager[Any] = (
                nullcontext()
                if last or not hasattr(wrapped, "no_sync")
                else getattr(wrapped, "no_sync")()  # noqa: B009 - DDP/FSDP only
            )
            with sync:
                with _autocast(device, tp.precision):
                    out = wrapped(batch)
                    loss = out.loss / tp.grad_accum_steps
                loss.backward()
            terms += (
                torch.tensor(
                    [
                        _scalar(out.loss),
                        _scalar(getattr(out, "loss_mllm", 0.0)),
                        _scalar(getattr(out, "loss_dm", out.loss)),
                        _scalar(getattr(out, "loss_ground", 0.0)),
                    ],
                    dtype=torch.float64,
                )
                / tp.grad_accum_steps
            )
        if tp.grad_clip > 0:
            clip = getattr(wrapped, "clip_grad_norm_", None)
            if callable(clip):
                grad_norm = clip(tp.grad_clip)
            else:
                grad_norm = torch.nn.utils.clip_grad_norm_(trainable, tp.grad_clip)
        else:
            grad_norm = torch.zeros(())
        lrs = [float(g["lr"]) for g in optimizer.param_groups]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if ema is not None:
            ema.step(trainable)
        step += 1
        if world > 1:
            dist.all_reduce(terms)
            terms /= world
        step_s = now() - t0
        row = {
            "step": step,
            "loss": float(terms[0]),
            "loss_mllm": float(terms[1]),
            "loss_dm": float(terms[2]),
            "loss_ground": float(terms[3]),
            "grad_norm": _scalar(grad_norm),
            "step_s": step_s,
            "samples_per_s": tp.batch_size / step_s if step_s > 0 else 0.0,
            "data_wait_frac": data_s / step_s if step_s > 0 else 0.0,
            "epoch": (step * tp.batch_size) / max(1, len(source)),
            "peak_mem_mb": _peak_mem_mb(device),
            **{f"lr/{n}": lr for n, lr in zip(group_names, lrs, strict=True)},
        }
        if rank == 0:
            if val_set is not None and (step % tp.val_every == 0 or step == tp.max_steps):
                row.update(validate(step))
            log_rows.append(row)
            if live is not None:
                with live.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(row, sort_keys=True) + "\n")
            elif step % print_every == 0 or step == tp.max_steps:
                print(f"[{job.run_name}] step {step}/{tp.max_steps} loss {row['loss']:.4f}")
        if step % tp.checkpoint_every == 0 or step == tp.max_steps:
            checkpoint(step, row, final=step == tp.max_steps)
    if state is not None and int(state["step"]) >= tp.max_steps and rank == 0:
        print(f"[{job.run_name}] already at step {step} >= max_steps {tp.max_steps}")
    shutil.rmtree(work, ignore_errors=True)


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
