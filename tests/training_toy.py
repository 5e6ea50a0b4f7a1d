"""A small, real torch editor that satisfies the training protocol (for the Ray Train tests).

It is deliberately cheap (a few thousand parameters) so that the tests exercise the training
machinery — DDP, checkpoints, restarts, resume, storage — in seconds; the ReasonBrain model itself
is trained by ``reasonbrain train`` / the benchmarks. It has one frozen layer (weight-decay
exclusion), parameter kinds like the real model, optional per-step noise (RNG reproducibility) and
the same ``save_pretrained``/``from_pretrained`` directory contract (config JSON + safetensors).
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn


@dataclass
class ToyOutput:
    """Forward output: total loss and its two logged terms."""

    loss: torch.Tensor
    loss_mllm: torch.Tensor
    loss_dm: torch.Tensor

    def log_terms(self) -> dict[str, torch.Tensor]:
        """The logged terms, by name (as ``EditModelOutput.log_terms``)."""
        return {"loss": self.loss, "loss_mllm": self.loss_mllm, "loss_dm": self.loss_dm}


class ToyEditor(nn.Module):
    """``tgt ≈ src + conv(src, instruction embedding)``; ``noise`` adds RNG draws per step."""

    def __init__(self, width: int = 8, vocab: int = 64, noise: float = 0.0) -> None:
        super().__init__()
        self.config = {"width": width, "vocab": vocab, "noise": noise}
        self.embed = nn.Embedding(vocab, width)
        self.frozen_proj = nn.Linear(width, width)
        self.frozen_proj.requires_grad_(False)
        self.conv_in = nn.Conv2d(3, width, 3, padding=1)
        self.norm = nn.GroupNorm(1, width)
        self.conv_out = nn.Conv2d(width, 3, 3, padding=1)

    def _ids(self, texts: list[str]) -> torch.Tensor:
        rows = [
            [zlib.crc32(w.encode()) % self.config["vocab"] for w in t.split()[:8]] for t in texts
        ]
        width = max(len(r) for r in rows)
        return torch.tensor([r + [0] * (width - len(r)) for r in rows])

    def forward(self, batch: dict[str, Any]) -> ToyOutput:
        src, tgt = batch["src"], batch["tgt"]
        e = self.frozen_proj(self.embed(self._ids(list(batch["instruction"]))).mean(1))
        h = F.silu(self.norm(self.conv_in(src) + e[:, :, None, None]))
        pred = src + self.conv_out(h)
        if self.config["noise"]:
            pred = pred + self.config["noise"] * torch.randn_like(pred)
        loss = F.mse_loss(pred, tgt)
        return ToyOutput(loss, torch.zeros(()), loss.detach())

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Kinds like the real model's (frozen parameters omitted)."""
        new = [p for p in self.embed.parameters() if p.requires_grad]
        diff = [
            p
            for m in (self.conv_in, self.norm, self.conv_out)
            for p in m.parameters()
            if p.requires_grad
        ]
        return {"new_modules": new, "diffusion": diff}

    def save_pretrained(self, directory: str | Path) -> Path:
        """config.json + model.safetensors (every tensor, frozen ones included)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.json").write_text(json.dumps(self.config))
        save_file(
            {k: v.contiguous() for k, v in self.state_dict().items()}, d / "model.safetensors"
        )
        return d

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> ToyEditor:
        """Inverse of :meth:`save_pretrained` (strict: missing/unexpected keys raise)."""
        d = Path(directory)
        model = cls(**json.loads((d / "config.json").read_text()))
        model.load_state_dict(load_file(d / "model.safetensors"), strict=True)
        return model


def toy_spec(noise: float = 0.0) -> Any:
    """A :class:`~reasonbrain.training.protocol.ModelSpec` for :class:`ToyEditor`."""
    import functools

    from reasonbrain.training.protocol import ModelSpec

    return ModelSpec(
        build=functools.partial(ToyEditor, noise=noise),
        load=ToyEditor.from_pretrained,
        name="toy",
    )


class InjectedFailure(RuntimeError):
    """Raised by :class:`FailingToyEditor`."""


class FailingToyEditor(ToyEditor):
    """A :class:`ToyEditor` whose training forward raises once at a given step, on one rank.

    Fault injection for the Ray Train tests lives here, in a wrapped model spec, not in the
    training loop. The step is counted by a buffer (``train_steps``) that is saved in checkpoints
    with the weights, so a restarted or resumed run knows where it is; a marker file makes the
    failure happen once per test.
    """

    def __init__(
        self,
        width: int = 8,
        vocab: int = 64,
        noise: float = 0.0,
        *,
        fail_at: int = 0,
        fail_rank: int = 0,
        marker: str = "",
    ) -> None:
        super().__init__(width, vocab, noise)
        self.fail_at, self.fail_rank, self.marker = fail_at, fail_rank, marker
        self.train_steps: torch.Tensor
        self.register_buffer("train_steps", torch.zeros((), dtype=torch.long))

    def forward(self, batch: dict[str, Any]) -> ToyOutput:
        if self.training:
            self.train_steps += 1
            rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
            done = Path(self.marker)
            due = int(self.train_steps) == self.fail_at and rank == self.fail_rank
            if due and self.marker and not done.exists():
                done.parent.mkdir(parents=True, exist_ok=True)
                done.write_text(str(self.fail_at))
                raise InjectedFailure(f"injected failure at step {self.fail_at} on rank {rank}")
        return super().forward(batch)


@dataclass(frozen=True)
class _FailingLoad:
    fail_at: int
    marker: str
    fail_rank: int = 0

    def __call__(self, directory: Path) -> FailingToyEditor:
        d = Path(directory)
        cfg = json.loads((d / "config.json").read_text())
        model = FailingToyEditor(
            **cfg, fail_at=self.fail_at, fail_rank=self.fail_rank, marker=self.marker
        )
        model.load_state_dict(load_file(d / "model.safetensors"), strict=True)
        return model


def failing_spec(noise: float, *, fail_at: int, marker: Path, fail_rank: int = 0) -> Any:
    """The toy spec whose model raises once at training step ``fail_at`` (1-based) on
    ``fail_rank`` (``marker`` records that it did)."""
    import functools

    from reasonbrain.training.protocol import ModelSpec

    return ModelSpec(
        build=functools.partial(FailingToyEditor, noise=noise, fail_at=fail_at, marker=str(marker)),
        load=_FailingLoad(fail_at, str(marker), fail_rank),
        name="toy",
    )
