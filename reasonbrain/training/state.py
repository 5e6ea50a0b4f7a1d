"""``TrainState``: what a worker trains and restores — model, optimiser, scheduler, EMA, step.

:meth:`TrainState.restore` builds a worker's state from the run's initial model or from a
checkpoint; :meth:`TrainState.save` writes one. Two checkpoint formats, by ``train.strategy``
(:mod:`~reasonbrain.training.checkpoint` lists the common files)::

    DDP                                     FSDP (sharded: no rank ever holds the whole model)
    model/          save_pretrained         base_model/   the run's initial model (architecture,
    model_ema/      EMA weights (final)                   tokenizer, frozen-part sources)
    train_state.pt  optimiser, scheduler,   sharded/      torch.distributed.checkpoint: trained
                    EMA, RNG, step                        tensors + optimiser state, one file per
                                                          rank (+ .metadata)
                                            train_state.pt  scheduler, RNG, step

DDP ranks hold identical replicas, so rank 0 writes the checkpoint alone. FSDP ranks each write
their own shards into the same checkpoint directory (Ray Train uploads every rank's files); a
restore reads the shards it needs, even on another number of ranks (DCP reshards). The model in
``save_pretrained`` form is assembled from the shards by the driver when it exports the run
(:func:`~reasonbrain.training.trainer.export_checkpoint`), never by a training rank.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reasonbrain.config import TrainParams
from reasonbrain.errors import CheckpointError, ConfigError
from reasonbrain.training.checkpoint import (
    LOG_FILE,
    MODEL_DIR,
    capture_rng,
    load_train_state,
    restore_rng,
    save_train_state,
)
from reasonbrain.training.distributed import is_sharded, wrap_model
from reasonbrain.training.metrics import read_log, write_log
from reasonbrain.training.optim import build_optimizer, build_scheduler
from reasonbrain.training.protocol import ModelSpec, load_model, save_model

EMA_MODEL_DIR = "model_ema"
BASE_MODEL_DIR = "base_model"
SHARDED_DIR = "sharded"
SAMPLES_DIR = "samples"


@dataclass
class TrainState:
    """A worker's training state.

    Attributes:
        model: the model (under FSDP: sharded in place; its ``forward`` is the training call).
        wrapped: what the step calls: ``model``, or DDP around it.
        optimizer, scheduler: AdamW over the parameter groups and its LR schedule.
        ema: EMA of the trained weights (``train.ema_decay > 0``; DDP only).
        step: optimiser steps completed.
        log: the step log rows up to ``step``.
        base_model: the initial model's directory (FSDP checkpoints carry it).
        checkpoint_keys: state-dict keys a checkpoint holds (frozen pretrained weights are
            reloaded from their sources, not saved).
    """

    model: nn.Module
    wrapped: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    ema: Any
    step: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)
    base_model: Path | None = None
    checkpoint_keys: list[str] = field(default_factory=list)

    @property
    def trainable(self) -> list[nn.Parameter]:
        """The parameters the optimiser updates."""
        return [p for g in self.optimizer.param_groups for p in g["params"]]

    @property
    def sharded(self) -> bool:
        """Whether the model is FSDP-sharded."""
        return is_sharded(self.model)

    # ------------------------------------------------------------------------ restore
    @classmethod
    def restore(
        cls,
        spec: ModelSpec,
        tp: TrainParams,
        *,
        device: torch.device,
        world: int,
        work: Path,
        checkpoint: Path | None,
        init_model: Path | None,
        dtype: torch.dtype,
    ) -> TrainState:
        """The state of a fresh run (``init_model``) or of ``checkpoint``, wrapped for ``world``
        ranks with ``tp.strategy``.

        Raises:
            CheckpointError: the checkpoint is unreadable or was written with another strategy.
            ConfigError: gradient checkpointing asked of a model that cannot do it.
        """
        fsdp = tp.strategy == "fsdp"
        state: dict[str, Any] | None = None
        log: list[dict[str, Any]] = []
        if checkpoint is not None:
            written = "fsdp" if (checkpoint / SHARDED_DIR).is_dir() else "ddp"
            if written != tp.strategy:
                raise CheckpointError(
                    f"the checkpoint was written with train.strategy={written}",
                    where=str(checkpoint),
                    fix=f"resume it with train.strategy={written}",
                )
            state = load_train_state(checkpoint)
            log = [r for r in read_log(checkpoint / LOG_FILE) if int(r["step"]) <= state["step"]]
            model_dir = checkpoint / (BASE_MODEL_DIR if fsdp else MODEL_DIR)
        else:
            assert init_model is not None, "a fresh run needs the initial model"
            model_dir = init_model
        base = None
        if fsdp:  # later checkpoints carry the same base model: keep a local copy
            base = work / BASE_MODEL_DIR
            if base != model_dir:
                shutil.copytree(model_dir, base, dirs_exist_ok=True)
        model = load_model(spec, model_dir, dtype=dtype).to(device)
        keys = _checkpoint_keys(model)
        if tp.gradient_checkpointing:
            enable_gradient_checkpointing(model)
        wrapped = wrap_model(model, tp.strategy, device, world)
        optimizer = build_optimizer(model, tp)
        scheduler = build_scheduler(optimizer, tp)
        ema = None
        if tp.ema_decay > 0:
            from diffusers.training_utils import EMAModel

            trainable = [p for g in optimizer.param_groups for p in g["params"]]
            ema = EMAModel(trainable, decay=tp.ema_decay, foreach=True)
        out = cls(model, wrapped, optimizer, scheduler, ema, 0, log, base, keys)
        if state is not None and checkpoint is not None:
            out._load(state, checkpoint)
        return out

    def _load(self, state: dict[str, Any], checkpoint: Path) -> None:
        if self.sharded:
            import torch.distributed.checkpoint as dcp

            blob = self._sharded_state()
            dcp.load(blob, checkpoint_id=str(checkpoint / SHARDED_DIR))
            self._set_sharded_state(blob)
        else:
            self.optimizer.load_state_dict(state["optimizer"])
            if self.ema is not None and state.get("ema") is not None:
                self.ema.load_state_dict(state["ema"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = int(state["step"])
        restore_rng(state["rng"])

    # ---------------------------------------------------------------------- sharded
    def _sharded_state(self) -> dict[str, Any]:
        from torch.distributed.checkpoint.state_dict import (
            get_model_state_dict,
            get_optimizer_state_dict,
        )

        model_sd = get_model_state_dict(self.model)
        wanted = set(self.checkpoint_keys)
        return {
            "model": {k: v for k, v in model_sd.items() if k in wanted},
            "optimizer": get_optimizer_state_dict(self.model, self.optimizer),
        }

    def _set_sharded_state(self, blob: dict[str, Any]) -> None:
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            set_model_state_dict,
            set_optimizer_state_dict,
        )

        set_model_state_dict(self.model, blob["model"], options=StateDictOptions(strict=False))
        set_optimizer_state_dict(self.model, self.optimizer, blob["optimizer"])

    # ------------------------------------------------------------------------- save
    def save(
        self,
        directory: Path,
        *,
        rank: int,
        final: bool,
        card: dict[str, Any],
        summary: dict[str, Any],
        samples: Path | None = None,
    ) -> bool:
        """Write this rank's part of a checkpoint into ``directory``.

        Returns:
            Whether this rank wrote anything (the directory must then be reported).
        """
        if self.sharded:
            import torch.distributed.checkpoint as dcp

            dcp.save(self._sharded_state(), checkpoint_id=str(directory / SHARDED_DIR))
        elif rank != 0:
            return False
        if rank != 0:
            return True
        train_state: dict[str, Any] = {
            "step": self.step,
            "data_position": summary.get("data_position"),
            "scheduler": self.scheduler.state_dict(),
            "rng": capture_rng(),
        }
        if self.sharded:
            assert self.base_model is not None
            shutil.copytree(self.base_model, directory / BASE_MODEL_DIR)
        else:
            save_model(self.model, directory / MODEL_DIR, **card)
            if self.ema is not None and final:
                self.ema.store(self.trainable)
                self.ema.copy_to(self.trainable)
                save_model(self.model, directory / EMA_MODEL_DIR, **card)
                self.ema.restore(self.trainable)
            train_state["optimizer"] = self.optimizer.state_dict()
            train_state["ema"] = self.ema.state_dict() if self.ema is not None else None
        save_train_state(directory, train_state, {"step": self.step, "final": final, **summary})
        write_log(directory / LOG_FILE, self.log)
        if samples is not None and samples.is_dir():
            shutil.copytree(samples, directory / SAMPLES_DIR)
        return True


def _checkpoint_keys(model: nn.Module) -> list[str]:
    fn = getattr(model, "checkpoint_state", None)
    keys = fn().keys() if callable(fn) else model.state_dict().keys()
    return sorted(keys)


def enable_gradient_checkpointing(model: nn.Module) -> list[str]:
    """Switch on activation recomputation through the model's own switch.

    Raises:
        ConfigError: the model has none.
    """
    enable = getattr(model, "enable_gradient_checkpointing", None)
    if not callable(enable):
        raise ConfigError(
            "this model does not support gradient checkpointing",
            where="params.yaml train.gradient_checkpointing",
            fix="set it to false",
        )
    done: list[str] = enable() or []
    return done


def consolidate_sharded(spec: ModelSpec, checkpoint: Path, out: Path, **card: Any) -> None:
    """Assemble an FSDP checkpoint's model in ``save_pretrained`` form (on the driver: a single
    process reads every shard; no training rank gathers the model).

    Raises:
        CheckpointError: the shards do not cover the model's checkpoint tensors.
    """
    import torch.distributed.checkpoint as dcp

    # frozen pretrained parts are not saved: the compute dtype does not matter, bf16 halves them
    model = load_model(spec, checkpoint / BASE_MODEL_DIR, dtype=torch.bfloat16)
    current = model.state_dict()
    # DCP fills these tensors in place: they are the model's own parameters and buffers
    blob = {"model": {k: current[k] for k in _checkpoint_keys(model) if k in current}}
    try:
        dcp.load(blob, checkpoint_id=str(checkpoint / SHARDED_DIR), no_dist=True)
    except Exception as err:  # DCP raises several types for missing/corrupt shards
        raise CheckpointError(
            f"cannot read the sharded checkpoint: {err}", where=str(checkpoint / SHARDED_DIR)
        ) from None
    save_model(model, out, **card)
