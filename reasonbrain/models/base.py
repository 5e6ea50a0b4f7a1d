"""What every editing model shares: conditioning dropout, the training step API, save/load.

:class:`EditModel` is the base of :class:`~reasonbrain.models.reasonbrain.ReasonBrainModel` and
of the ``ip2p`` baseline. A subclass only says how to turn (source image, instruction, objects)
into a conditioning sequence ``[B, L, cond_dim]`` (:meth:`EditModel.condition`).

Training API (used by the Ray training loop)::

    out = model(batch)          # collate_edits(items, processor=model.processor): tensors only
    out.loss.backward()         # = w_mllm · out.loss_mllm + w_dm · out.loss_dm
    model.parameter_groups()    # {"new_modules": [...], "lora": [...], "diffusion": [...]}

Conditioning dropout (DESIGN §4.6): per sample, with probability ``cond_drop_text`` the text/cue
conditioning is replaced by the null conditioning (learned, or the encoding of ``""`` —
``config.null_text``), with ``cond_drop_image`` the source latent is zeroed, and with
``cond_drop_both`` both. These are exactly the three branches that
InstructPix2Pix-style guidance evaluates at inference, so each is a trained unconditional branch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reasonbrain.models.config import ReasonBrainConfig
from reasonbrain.models.diffusion import DiffusionBackbone, edit_weight_map
from reasonbrain.models.grounding import cue_map, grounding_loss


@dataclass
class Conditioning:
    """Output of the reasoning path for a batch."""

    cond: torch.Tensor  # [B, L, cond_dim]
    loss_mllm: torch.Tensor | None = None
    rationales: list[str] = field(default_factory=list)
    #: grounding logits [B, 1, g, g] (models with a spatial cue; reasonbrain.models.grounding)
    ground_logits: torch.Tensor | None = None
    #: [B] bool — samples whose instruction names an object (set with ``ground_logits``)
    ground_valid: torch.Tensor | None = None


@dataclass
class EditModelOutput:
    """Losses of one training forward pass."""

    loss: torch.Tensor
    loss_mllm: torch.Tensor
    loss_dm: torch.Tensor
    drop_text: torch.Tensor  # [B] bool — which samples had text/cues dropped
    drop_image: torch.Tensor  # [B] bool — which samples had the source image dropped
    loss_ground: torch.Tensor | None = None  # grounding BCE (models with a spatial cue)

    def log_terms(self) -> dict[str, torch.Tensor]:
        """The loss and its terms by name, for the training log (absent terms are left out)."""
        terms = {"loss": self.loss, "loss_mllm": self.loss_mllm, "loss_dm": self.loss_dm}
        if self.loss_ground is not None:
            terms["loss_ground"] = self.loss_ground
        return terms


class EditModel(nn.Module):
    """Base class (see the module docstring).

    Args:
        config: the architecture.
        diffusion: the diffusion backbone.
        cond_len: length L of the conditioning sequence (for the null conditioning).
    """

    def __init__(self, config: ReasonBrainConfig, diffusion: DiffusionBackbone, cond_len: int):
        super().__init__()
        self.config = config
        self.diffusion: Any = diffusion
        #: the learned unconditional sequence (absent when ip2p uses the encoding of "")
        self.null_cond: nn.Parameter | None = None
        if not (config.kind == "ip2p" and config.null_text == "empty_prompt"):
            self.null_cond = nn.Parameter(torch.zeros(1, cond_len, config.cond_dim))
        self.tokenizer: Any = None
        self.text_tokenizer: Any = None
        #: text/images → tensors (reasonbrain.models.processor); set by the subclass
        self.processor: Any = None
        #: state-dict key prefixes of frozen pretrained parts (not saved; reloaded from sources)
        self.frozen_pretrained_prefixes: list[str] = []
        #: config.json "meta" of a loaded model (params hash, data version, metrics)
        self.meta: dict[str, Any] = {}

    # ------------------------------------------------------------------ reasoning path
    def condition(
        self, src: torch.Tensor, inputs: dict[str, Any], *, inference: bool = False
    ) -> Conditioning:
        """Conditioning sequence for a batch; ``inputs`` holds the processor's tensors
        (subclasses implement)."""
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        """Where the model's parameters live."""
        return next(self.parameters()).device

    def null_condition(self, batch_size: int) -> torch.Tensor:
        """The unconditional sequence ``[B, L, cond_dim]`` (used by dropout and CFG)."""
        assert self.null_cond is not None  # subclasses without one override this method
        return self.null_cond.expand(batch_size, -1, -1)

    # ------------------------------------------------------------------ training
    def sample_dropout(
        self, batch_size: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw per-sample dropout decisions: ``(drop_text [B], drop_image [B])`` bool."""
        c = self.config
        u = torch.rand(batch_size, generator=generator)
        t, i, b = c.cond_drop_text, c.cond_drop_image, c.cond_drop_both
        text_only = u < t
        image_only = (u >= t) & (u < t + i)
        both = (u >= t + i) & (u < t + i + b)
        return text_only | both, image_only | both

    def forward(
        self, batch: dict[str, Any], generator: torch.Generator | None = None
    ) -> EditModelOutput:
        """One training forward pass over a collated batch (see the module docstring)."""
        device = self.device
        src = batch["src"].to(device)
        tgt = batch["tgt"].to(device)
        missing = [k for k in self.processor.input_keys if k not in batch]
        if missing:
            raise ValueError(
                f"batch lacks the processor's tensors {missing}: collate it with "
                "collate_edits(items, processor=model.processor)"
            )
        conditioning = self.condition(src, batch)
        with torch.no_grad():  # IP2P: unscaled source latent, scaled target latent
            src_lat = self.diffusion.codec.encode_source(src)
            tgt_lat = self.diffusion.codec.encode(tgt)
        weight = None
        if self.config.edit_loss_weight > 0:  # from the undropped source (see edit_weight_map)
            weight = edit_weight_map(src_lat, tgt_lat, self.config.edit_loss_weight)
        drop_text, drop_image = self.sample_dropout(src.shape[0], generator)
        drop_text, drop_image = drop_text.to(device), drop_image.to(device)
        cond = conditioning.cond
        cond = torch.where(
            drop_text[:, None, None], self.null_condition(cond.shape[0]).to(cond.dtype), cond
        )
        src_lat = src_lat * (~drop_image)[:, None, None, None].to(src_lat.dtype)
        spatial = loss_ground = None
        if conditioning.ground_logits is not None:
            spatial = cue_map(conditioning.ground_logits, src_lat.shape[-1])
            spatial = spatial * (~drop_text)[:, None, None, None].to(spatial.dtype)
            assert conditioning.ground_valid is not None  # set together with ground_logits
            if "mask" in batch:  # batches without masks (e.g. hand-built ones) train no grounding
                loss_ground = grounding_loss(
                    conditioning.ground_logits,
                    batch["mask"].to(device),
                    batch["has_mask"].to(device) & conditioning.ground_valid,
                )
        loss_dm = self.diffusion.loss(
            tgt_lat,
            src_lat,
            cond,
            generator=None,
            spatial=spatial,
            weight=weight,
            distance=self.config.dm_loss,
            timestep_logit=self._timestep_logit(),
        )
        loss_mllm = conditioning.loss_mllm
        if loss_mllm is None:
            loss_mllm = torch.zeros((), device=device)
        c = self.config
        loss = c.loss_weight_mllm * loss_mllm + c.loss_weight_dm * loss_dm
        if loss_ground is not None:
            loss = loss + c.loss_weight_ground * loss_ground
            loss_ground = loss_ground.detach()
        return EditModelOutput(
            loss, loss_mllm.detach(), loss_dm.detach(), drop_text, drop_image, loss_ground
        )

    def _timestep_logit(self) -> tuple[float, float] | None:
        c = self.config
        if c.timestep_logit_mean is None:
            return None
        return (c.timestep_logit_mean, c.timestep_logit_std)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters by kind, for per-group learning rates.

        Returns:
            ``{"new_modules": …, "lora": …, "diffusion": …}`` (each a list; frozen ones omitted).
        """
        groups: dict[str, list[nn.Parameter]] = {"new_modules": [], "lora": [], "diffusion": []}
        for name, p in self.named_parameters():
            if not p.requires_grad:
                continue
            if "lora_" in name:
                groups["lora"].append(p)
            elif name.startswith("diffusion."):
                groups["diffusion"].append(p)
            else:
                groups["new_modules"].append(p)
        return groups

    def enable_gradient_checkpointing(self) -> list[str]:
        """Recompute activations in the backward pass instead of keeping them (less memory, one
        more forward of each block): the library switches of the transformers models (LLaVA's
        language and vision towers, the CLIP towers) and of the diffusers UNet. Frozen towers
        keep no activations anyway; checkpointing them costs nothing. Non-reentrant
        checkpointing, so frozen inputs need no ``requires_grad`` trick and gradients are the same.

        Returns:
            The names of the modules switched on.
        """
        from diffusers.models.modeling_utils import ModelMixin
        from transformers import PreTrainedModel

        done: list[str] = []
        for name, module in self.named_modules():
            if any(name.startswith(d + ".") for d in done):
                continue  # the outer model's switch covers it
            if isinstance(module, PreTrainedModel) and module.supports_gradient_checkpointing:
                module.activation_checkpointing_enable({"use_reentrant": False})
                done.append(name)
            elif isinstance(module, ModelMixin) and module._supports_gradient_checkpointing:
                module.enable_gradient_checkpointing()
                done.append(name)
        return done

    # ------------------------------------------------------------------ persistence
    def checkpoint_state(self) -> dict[str, torch.Tensor]:
        """Every tensor a checkpoint must hold: all state except frozen pretrained weights."""
        return {
            k: v
            for k, v in self.state_dict().items()
            if "lora_" in k or not k.startswith(tuple(self.frozen_pretrained_prefixes))
        }

    def save_pretrained(
        self,
        directory: str | Path,
        *,
        params_hash: str | None = None,
        data_version: str | None = None,
        metrics: dict[str, float] | None = None,
    ) -> Path:
        """Write config, weights (safetensors), tokenizers and a model card atomically."""
        from reasonbrain.models.checkpoint import save_pretrained

        return save_pretrained(
            self, directory, params_hash=params_hash, data_version=data_version, metrics=metrics
        )

    @classmethod
    def from_pretrained(cls, ref: str | Path) -> EditModel:
        """Load a model saved with :meth:`save_pretrained` (a directory or ``registry://`` ref)."""
        from reasonbrain.models.checkpoint import from_pretrained

        return from_pretrained(ref)
