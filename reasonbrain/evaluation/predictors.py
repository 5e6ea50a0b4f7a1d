"""What produces the edits being evaluated: a small predictor interface.

A predictor maps a batch of (source image, instruction, seed) to (edited image, rationale). The
seed is per sample (derived from the sample id and the eval seed, :func:`sample_seed`), so an
output never depends on which batch or actor the sample landed in.

- :class:`IdentityPredictor` (``--model identity``): output = source. The lower bound every report
  shows: it scores 0 reasoning accuracy on ReasonSynth (it *is* the ``no_change`` outcome).
- :class:`PipelinePredictor` (``--model DIR``): a saved model directory (ReasonBrain, its ablations
  or the ``ip2p`` baseline) run through ``reasonbrain.inference.ReasonBrainPipeline``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from PIL import Image

from reasonbrain.errors import ConfigError

if TYPE_CHECKING:
    from reasonbrain.config import EvalParams

IDENTITY = "identity"


def sample_seed(sample_id: str, eval_seed: int) -> int:
    """Deterministic 63-bit seed from (eval seed, sample id): independent of batching/order."""
    digest = hashlib.sha256(f"{eval_seed}:{sample_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


class Predictor(Protocol):
    """Produces edits for a batch."""

    name: str

    def predict(
        self, images: list[Image.Image], instructions: list[str], seeds: list[int]
    ) -> list[tuple[Image.Image, str | None]]:
        """One ``(edited image, rationale or None)`` per input, in order."""
        ...

    def describe(self) -> dict[str, Any]:
        """What to record about the predictor (path, preset, fingerprint …)."""
        ...


class IdentityPredictor:
    """Output = source (the identity baseline)."""

    name = IDENTITY

    def predict(
        self, images: list[Image.Image], instructions: list[str], seeds: list[int]
    ) -> list[tuple[Image.Image, str | None]]:
        """Return each source image unchanged."""
        return [(im.convert("RGB").copy(), None) for im in images]

    def describe(self) -> dict[str, Any]:
        """The identity baseline has no weights."""
        return {"name": IDENTITY, "kind": "baseline", "description": "output = source"}


class PipelinePredictor:
    """A saved model directory run through ``ReasonBrainPipeline`` (loaded once per worker)."""

    def __init__(self, path: Path | str, params: EvalParams, device: str = "cpu") -> None:
        import importlib

        pipeline_cls = importlib.import_module("reasonbrain.inference").ReasonBrainPipeline
        self.path = Path(path)
        self.ref = str(path)
        self.name = self.path.name
        self.params = params
        self.device = device
        self.pipe = pipeline_cls.from_pretrained(self.ref)
        if device != "cpu":
            self.pipe.model.to(device)

    def predict(
        self, images: list[Image.Image], instructions: list[str], seeds: list[int]
    ) -> list[tuple[Image.Image, str | None]]:
        """Edit the batch with one seeded generator per sample.

        Each sample's initial noise comes from its own generator (the pipeline accepts a list,
        as diffusers pipelines do), so an output is a function of its own seed, whatever batch
        it lands in (up to float rounding of batched kernels).
        """
        import torch

        out = self.pipe(
            image=[im.convert("RGB") for im in images],
            prompt=list(instructions),
            num_inference_steps=self.params.num_inference_steps,
            guidance_scale=self.params.guidance_scale,
            image_guidance_scale=self.params.image_guidance_scale,
            generator=[torch.Generator(device="cpu").manual_seed(s) for s in seeds],
        )
        rationales = list(getattr(out, "rationales", None) or [None] * len(images))
        return [(img, r or None) for img, r in zip(out.images, rationales, strict=True)]

    def describe(self) -> dict[str, Any]:
        """Path and the model config's fingerprint."""
        cfg = self.path / "config.json"
        fp = hashlib.sha256(cfg.read_bytes()).hexdigest()[:12] if cfg.is_file() else None
        return {"name": self.name, "path": str(self.path.resolve()), "config_sha": fp}


def check_model_spec(spec: str) -> str:
    """Validate ``--model``: ``identity``, ``registry://NAME@ALIAS`` or an existing directory.

    Raises:
        ConfigError: neither.
    """
    if spec == IDENTITY or spec.startswith("registry://"):
        return spec
    p = Path(spec)
    if not p.is_dir():
        raise ConfigError(
            "model directory not found",
            where=spec,
            fix="pass a saved model directory (save_pretrained) or `identity`",
        )
    return str(p.resolve())


def load_predictor(spec: str, params: EvalParams, device: str = "cpu") -> Predictor:
    """Build the predictor ``spec`` names (see :func:`check_model_spec`)."""
    spec = check_model_spec(spec)
    if spec == IDENTITY:
        return IdentityPredictor()
    return PipelinePredictor(spec, params, device)
