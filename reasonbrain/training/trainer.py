"""``train()``: the library call behind ``reasonbrain train``.

It builds the initial model once on the driver (same weights and tokenizer on every rank), starts
(or connects to) Ray, runs a Ray Train V2 ``TorchTrainer`` with the loop in
:mod:`~reasonbrain.training.loop`, and exports the last checkpoint into the output directory::

    <out>/model/          the trained model (save_pretrained format; EMA weights when enabled)
    <out>/train_log.jsonl the step log;  <out>/plots/*.csv  DVC plots;  <out>/metrics.json
    <out>/samples/        sample edits from the validation passes (source | edit | target)
    <out>/run.json        run name, checkpoint URI, params hash

Compute: local Ray started in-process by default (all CPUs of this machine), or the cluster named
by ``RAY_ADDRESS``. Data: a dataset directory every worker can read, or ``s3://bucket/prefix``
(pre-loaded into each worker, or streamed with Ray Data: ``train.preload``). Checkpoint storage:
``storage`` (a directory or ``s3://bucket/prefix``), default ``<REASONBRAIN_HOME>/checkpoints``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reasonbrain.compute import ensure_ray
from reasonbrain.config import Params, get_settings
from reasonbrain.data.staging import staged_dir
from reasonbrain.errors import ConfigError, DatasetError
from reasonbrain.training.checkpoint import (
    LOG_FILE,
    MODEL_DIR,
    latest_run,
    list_runs,
    new_run_name,
    resolve_storage,
)
from reasonbrain.training.datasource import DataLocation
from reasonbrain.training.loop import LoopJob, dir_to_files
from reasonbrain.training.metrics import LiveProgress, read_log, write_outputs
from reasonbrain.training.protocol import ModelSpec, reasonbrain_spec, save_model
from reasonbrain.training.state import (
    EMA_MODEL_DIR,
    SAMPLES_DIR,
    SHARDED_DIR,
    consolidate_sharded,
)


@dataclass
class TrainResult:
    """What a finished run produced.

    Attributes:
        run_name: the Ray Train run name (``<kind>-<preset>-<hash>-<timestamp>``).
        run_uri: the run directory in checkpoint storage.
        checkpoint_uri: the last checkpoint.
        out_dir: the output directory; ``model_dir`` the trained model inside it.
        metrics: summary figures (see :func:`~reasonbrain.training.metrics.summarise`).
        seconds: wall-clock time of the fit, including worker start-up.
    """

    run_name: str
    run_uri: str
    checkpoint_uri: str
    out_dir: Path
    model_dir: Path
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        d = asdict(self)
        d["out_dir"], d["model_dir"] = str(self.out_dir), str(self.model_dir)
        return d


def _check_data(data: DataLocation) -> None:
    if not data.has_split("train"):
        raise DatasetError(
            "no train.jsonl in the dataset location",
            where=data.uri,
            fix="run `reasonbrain data generate` (or `data import`) first, or fix --data",
        )


def check_train_params(params: Params, *, local: bool) -> None:
    """Refuse training params that cannot run (before any worker starts).

    Raises:
        ConfigError: the batch does not split over workers × accumulation; a local machine has
            too few CPUs (or no GPU) for the workers; streaming leaves Ray Data no CPU; EMA with
            FSDP.
    """
    tp = params.train
    if tp.batch_size % (tp.workers * tp.grad_accum_steps):
        raise ConfigError(
            f"train.batch_size {tp.batch_size} is not divisible by workers × grad_accum_steps "
            f"({tp.workers} × {tp.grad_accum_steps})",
            where="params.yaml train",
            fix="choose a batch size that is a multiple of workers × grad_accum_steps",
        )
    if tp.strategy == "fsdp" and tp.ema_decay > 0:
        raise ConfigError(
            "train.ema_decay > 0 is not supported with train.strategy=fsdp (the EMA would be a "
            "full replica per rank)",
            where="params.yaml train",
            fix="set train.ema_decay=0 or train.strategy=ddp",
        )
    if not local:
        return
    have = os.cpu_count() or 1
    if tp.workers * tp.cpus_per_worker > have and not tp.use_gpu:
        raise ConfigError(
            f"train.workers × train.cpus_per_worker = {tp.workers} × {tp.cpus_per_worker} "
            f"CPUs, but this machine has {have} (Ray would wait forever)",
            where="params.yaml train",
            fix=f"use at most {have} CPUs in total, or set RAY_ADDRESS to a cluster",
        )
    if not tp.preload and tp.workers * tp.cpus_per_worker + tp.data_cpus > have:
        raise ConfigError(
            f"streaming the data needs {tp.data_cpus:g} CPU for Ray Data besides the workers' "
            f"{tp.workers} × {tp.cpus_per_worker}, but this machine has {have} (it would hang)",
            where="params.yaml train",
            fix="lower train.cpus_per_worker, or set train.preload=true",
        )
    if tp.use_gpu:
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(
                "train.use_gpu is true but this machine has no CUDA GPU (Ray would wait "
                "forever for one)",
                where="params train.use_gpu",
                fix="set train.use_gpu=false (and train.workers/cpus_per_worker to fit), or "
                "set RAY_ADDRESS to a GPU cluster",
            )


def _has_checkpoint(storage_uri: str, storage: Any, run: str) -> bool:
    from pyarrow import fs

    filesystem = storage.filesystem or fs.LocalFileSystem()
    try:
        infos = filesystem.get_file_info(
            fs.FileSelector(f"{storage.path}/{run}", allow_not_found=True)
        )
    except OSError:
        return False
    return any(Path(i.path).name.startswith("checkpoint_") for i in infos)


def train(
    params: Params,
    data_dir: Path | str,
    out_dir: Path | str,
    *,
    storage: str | Path | None = None,
    resume: bool = False,
    run_name: str | None = None,
    spec: ModelSpec | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train a model with Ray Train and export it to ``out_dir``.

    Args:
        params: the run's params (``model`` and ``train`` sections are used).
        data_dir: the dataset (Reason50K layout): a directory every worker can read, or
            ``s3://bucket/prefix``.
        out_dir: where the trained model, logs and plots go (created; ``model/`` replaced).
        storage: checkpoint storage (directory or ``s3://bucket/prefix``).
        resume: continue the newest run with the same params (or ``run_name``) from its latest
            checkpoint instead of starting a new run.
        run_name: an explicit run name (resumes that run if it exists in ``storage``).
        spec: the model to train (default: ReasonBrain / ip2p from ``params.model``).
        progress: show a progress bar (local Ray only).

    Raises:
        DatasetError: no training split at ``data_dir``.
        CheckpointError: ``resume`` and no run with these params exists.
        ConfigError: inconsistent training params.
        ray.train.TrainingFailedError: the workers failed more than ``train.max_failures`` times.
    """
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from reasonbrain.training.loop import train_loop_per_worker

    data = DataLocation.parse(data_dir)
    out_dir = Path(out_dir).resolve()
    _check_data(data)
    tp = params.train
    local = not os.environ.get("RAY_ADDRESS")
    check_train_params(params, local=local)
    store = resolve_storage(storage or (get_settings().home / "checkpoints"))
    if run_name is None:
        run_name = latest_run(store, params) if resume else new_run_name(params)
    elif resume and run_name not in list_runs(store):
        from reasonbrain.errors import CheckpointError

        raise CheckpointError(f"no run named {run_name!r} to resume", where=store.uri)
    spec = spec or reasonbrain_spec(params.model, data)
    out_dir.mkdir(parents=True, exist_ok=True)

    ensure_ray()
    import ray
    import torch

    init_ref = None
    if not _has_checkpoint(store.uri, store, run_name):
        torch.manual_seed(tp.seed)
        model = spec.build()
        with tempfile.TemporaryDirectory(prefix="rb-init-") as tmp:
            save_model(model, Path(tmp) / "model")
            init_ref = ray.put(dir_to_files(Path(tmp) / "model"))
        del model

    live_log = out_dir / ".live" / f"{run_name}.jsonl" if local else None
    job = LoopJob(
        params=params,
        data=data,
        spec=spec,
        init_model=init_ref,
        run_name=run_name,
        n_records=len(data.records("train")),
        live_log=str(live_log) if live_log else None,
    )
    datasets: dict[str, Any] = {}
    dataset_config = None
    if not tp.preload:
        from reasonbrain.training.stream import RankStream, StreamPlan, ingest_config, shard_name

        plan = StreamPlan(
            location=data,
            image_size=params.model.image_size,
            seed=tp.seed,
            batch_size=tp.batch_size,
            world_size=tp.workers,
            accum=tp.grad_accum_steps,
            max_steps=tp.max_steps,
            data_cpus=tp.data_cpus,
        )
        datasets = {shard_name(r): RankStream(plan, r, store, run_name) for r in range(tp.workers)}
        dataset_config = ingest_config()
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"job": job},
        scaling_config=ScalingConfig(
            num_workers=tp.workers,
            use_gpu=tp.use_gpu,
            resources_per_worker={"CPU": tp.cpus_per_worker},
            placement_strategy=tp.placement_strategy,
        ),
        run_config=RunConfig(
            name=run_name,
            storage_path=store.path,
            storage_filesystem=store.filesystem,
            failure_config=FailureConfig(max_failures=tp.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=tp.keep_checkpoints),
        ),
        datasets=datasets or None,
        **({"dataset_config": dataset_config} if dataset_config is not None else {}),
    )
    t0 = time.perf_counter()
    desc = f"train {spec.name}"
    with LiveProgress(live_log or Path(os.devnull), tp.max_steps, desc, progress and local):
        result = trainer.fit()
    seconds = time.perf_counter() - t0
    if result.checkpoint is None:  # pragma: no cover - the loop always reports a checkpoint
        raise DatasetError("training finished without a checkpoint", where=store.run_uri(run_name))
    card = {"params_hash": params.section_hash("model", "train")}
    summary = export_checkpoint(result.checkpoint, out_dir, spec=spec, card=card)
    ckpt_uri = f"{store.run_uri(run_name)}/{Path(result.checkpoint.path).name}"
    res = TrainResult(
        run_name=run_name,
        run_uri=store.run_uri(run_name),
        checkpoint_uri=ckpt_uri,
        out_dir=out_dir,
        model_dir=out_dir / MODEL_DIR,
        metrics=summary,
        seconds=seconds,
    )
    info = {**res.to_dict(), "params_hash": params.section_hash("model", "train")}
    (out_dir / "run.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    if live_log is not None:
        shutil.rmtree(live_log.parent, ignore_errors=True)
    return res


def export_checkpoint(
    checkpoint: Any, out_dir: Path, *, spec: ModelSpec, card: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Copy a checkpoint's model (EMA weights if present), log and samples into ``out_dir``;
    an FSDP checkpoint's shards are assembled into the model here, in this one process."""
    with checkpoint.as_directory() as d:
        ckpt = Path(d)
        with staged_dir(out_dir / MODEL_DIR, force=True) as tmp:
            if (ckpt / SHARDED_DIR).is_dir():
                consolidate_sharded(spec, ckpt, Path(tmp), **(card or {}))
            else:
                src = ckpt / EMA_MODEL_DIR if (ckpt / EMA_MODEL_DIR).is_dir() else ckpt / MODEL_DIR
                shutil.copytree(src, tmp, dirs_exist_ok=True)
        with staged_dir(out_dir / SAMPLES_DIR, force=True) as tmp:  # always exists (DVC out)
            if (ckpt / SAMPLES_DIR).is_dir():
                shutil.copytree(ckpt / SAMPLES_DIR, tmp, dirs_exist_ok=True)
        rows = read_log(ckpt / LOG_FILE)
    return write_outputs(out_dir, rows)
