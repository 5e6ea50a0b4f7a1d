"""The model's own configuration: every width, count and switch that defines the architecture.

:class:`ReasonBrainConfig` is what ``save_pretrained`` writes as ``config.json`` and what
``from_pretrained`` rebuilds the network from. The presets (``reasonbrain.models.presets``) fill it
from ``params.yaml``; the sub-model configs (CLIP, LLaVA, UNet, VAE, SAM) are stored as the plain
dicts their libraries serialise, so a saved model never depends on preset code staying the same.

One width is declared per interface (DESIGN §4, "width mismatches" trap), and
:meth:`ReasonBrainConfig.check` verifies that the sub-configs agree with them before any layer is
built, raising :class:`~reasonbrain.errors.ConfigError` naming both sides of a mismatch.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from reasonbrain.errors import ConfigError

CONFIG_VERSION = 1


class ReasonBrainConfig(BaseModel):
    """Architecture of a ReasonBrain model (or of the ``ip2p`` baseline).

    Widths: ``frce_dim`` (FRCE tokens R_V, R_T), ``llm_dim`` (the MLLM hidden size, from
    ``llava``), ``qformer_dim`` (QFormer hidden size), ``cond_dim`` (UNet cross-attention width;
    the QFormer output, CME and null conditioning all use it).
    """

    model_config = ConfigDict(extra="forbid")

    config_version: int = CONFIG_VERSION
    kind: Literal["reasonbrain", "ip2p"] = "reasonbrain"
    preset: str = "tiny"
    image_size: int = 64

    # ablations (DESIGN §4.8); all off = MLLM → QFormer → diffusion baseline
    use_patch_branch: bool = True
    use_region_branch: bool = True
    use_id_controller: bool = True
    use_cme: bool = True
    use_rationale: bool = True

    # widths
    frce_dim: int = 64
    cond_dim: int = 64
    qformer_dim: int = 64

    # encoders
    vision: dict[str, Any] = Field(default_factory=dict, description="CLIPVisionConfig dict")
    text: dict[str, Any] = Field(default_factory=dict, description="CLIPTextConfig dict")
    feature_layers: list[int] = Field(default_factory=lambda: [-2, -1])
    max_text_tokens: int = 32
    text_attention_mask: bool = Field(
        True,
        description="pass the padding mask to the CLIP text encoder (tiny); SD/IP2P encode the "
        "77-token prompt without one, so the paper preset passes none",
    )

    # FRCE
    frce_heads: int = 2
    patch_layers: int = 1
    region_layers: int = 1
    id_layers: int = 1
    max_regions: int = 8
    max_objects: int = 4
    proposer: Literal["color", "sam"] = "color"
    proposer_min_area: float = Field(0.004, description="smallest region, fraction of the image")
    sam: dict[str, Any] | None = None

    # MLLM
    llava: dict[str, Any] = Field(default_factory=dict, description="LlavaConfig dict")
    base_vocab_size: int = 0
    num_img_tokens: int = 8
    max_instruction_tokens: int = 40
    max_rationale_tokens: int = 16
    lora_rank: int = 0
    lora_alpha: int = 16
    lora_targets: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"]
    )

    # QFormer
    qformer_layers: int = 2
    qformer_heads: int = 2
    num_queries: int = 16

    # CME
    cme_blocks: int = 1
    cme_queries: int = 8
    cme_heads: int = 2

    # diffusion
    unet: dict[str, Any] = Field(default_factory=dict, description="UNet2DConditionModel config")
    scheduler: dict[str, Any] = Field(
        default_factory=dict,
        description="noise schedule: the diffusion repo's own scheduler/ config (paper) or the "
        "preset's; training builds DDPMScheduler.from_config, sampling DDIMScheduler.from_config",
    )
    codec: Literal["pixel_unshuffle", "vae"] = "pixel_unshuffle"
    codec_factor: int = 2
    vae: dict[str, Any] | None = None
    vae_scaling_factor: float = 0.18215
    source_latent: Literal["scaled", "unscaled"] = Field(
        "scaled",
        description="source-image latent concatenated to the UNet input: InstructPix2Pix uses the "
        "unscaled VAE posterior mode (paper preset); the noisy target latent is always scaled",
    )
    null_text: Literal["learned", "empty_prompt"] = Field(
        "learned",
        description="unconditional text branch: a learned sequence (zeros at init), or the text "
        'encoder\'s encoding of "" as in InstructPix2Pix (ip2p: exactly that; reasonbrain: '
        "a learned sequence initialised from it)",
    )
    spatial_cue: bool = Field(
        False,
        description="grounding head → one extra UNet input channel (tiny preset; ReasonBrain, or "
        "the ip2p baseline with its own image encoder for the patch tokens)",
    )
    loss_weight_ground: float = 1.0
    edit_loss_weight: float = Field(
        0.0,
        description="L_DM weight 1 + w at latent positions where target and source differ "
        "(reasonbrain.models.diffusion.edit_weight_map); 0 = plain MSE",
    )
    dm_loss: Literal["mse", "l1"] = Field(
        "mse", description="L_DM's distance (reasonbrain.models.diffusion.DiffusionBackbone.loss)"
    )
    timestep_logit_mean: float | None = Field(
        None, description="L_DM timesteps: null = uniform; a number = logit-normal with this mean"
    )
    timestep_logit_std: float = Field(1.0, gt=0, description="std of the logit-normal timesteps")
    source_residual: bool = Field(
        False, description="x0 = source latent + UNet output (prediction_type=sample only)"
    )

    # training
    cond_drop_text: float = 0.05
    cond_drop_image: float = 0.05
    cond_drop_both: float = 0.05
    loss_weight_mllm: float = 1.0
    loss_weight_dm: float = 1.0

    # inference defaults
    guidance_scale: float = 2.0
    image_guidance_scale: float = 1.5
    object_phrases: list[str] = Field(
        default_factory=list, description="phrases the object extractor matches at inference"
    )

    # pretrained parts: component -> hub id or local path ({} in tiny: nothing is pretrained)
    sources: dict[str, str] = Field(default_factory=dict)

    # ------------------------------------------------------------------------ derived
    @property
    def has_visual_cues(self) -> bool:
        """Whether R_V exists (patch and/or region branch on)."""
        return self.kind == "reasonbrain" and (self.use_patch_branch or self.use_region_branch)

    @property
    def llm_dim(self) -> int:
        """Hidden size of the MLLM's language model."""
        return int(self.llava.get("text_config", {}).get("hidden_size", 0))

    @property
    def latent_channels(self) -> int:
        """Channels of the diffusion latent (UNet output channels)."""
        return int(self.unet.get("out_channels", 0))

    def check(self) -> None:
        """Verify the interfaces agree before anything is built.

        Raises:
            ConfigError: naming the two sides of any mismatch or an impossible switch combination.
        """

        def bad(what: str, fix: str) -> ConfigError:
            return ConfigError(what, where=f"model config ({self.preset})", fix=fix)

        unet_cross = self.unet.get("cross_attention_dim")
        if isinstance(unet_cross, (list, tuple)):  # per-block widths: one conditioning width only
            unet_cross = unet_cross[0] if len(set(unet_cross)) == 1 else unet_cross
        if unet_cross != self.cond_dim:
            raise bad(
                f"UNet cross_attention_dim {unet_cross} != conditioning width cond_dim "
                f"{self.cond_dim}",
                "make the QFormer/CME output width equal to the UNet's cross-attention width",
            )
        prediction = self.scheduler.get("prediction_type", "epsilon")
        if self.source_residual and prediction != "sample":
            raise bad(
                f"source_residual predicts x0 as source + residual, but prediction_type is "
                f"{prediction!r}",
                "set model.prediction_type=sample or model.source_residual=false",
            )
        lat = self.latent_channels
        extra = int(self.spatial_cue)
        if self.unet.get("in_channels") != 2 * lat + extra:
            raise bad(
                f"UNet in_channels {self.unet.get('in_channels')} != 2 × latent channels {lat}"
                + (" + 1 spatial cue" if extra else ""),
                "the source latent (and the spatial cue) are concatenated to the noisy latent",
            )
        if self.codec == "pixel_unshuffle" and lat != 3 * self.codec_factor**2:
            raise bad(
                f"latent channels {lat} != 3 × codec_factor² ({3 * self.codec_factor**2})",
                "set the UNet out_channels to what the space-to-depth codec produces",
            )
        if self.codec == "vae" and (self.vae or {}).get("latent_channels") != lat:
            raise bad(
                f"VAE latent_channels {(self.vae or {}).get('latent_channels')} != UNet "
                f"out_channels {lat}",
                "use the UNet that matches the VAE",
            )
        for name, dim, heads in (
            ("frce_dim", self.frce_dim, self.frce_heads),
            ("cond_dim", self.cond_dim, self.cme_heads),
            ("qformer_dim", self.qformer_dim, self.qformer_heads),
        ):
            if dim % heads:
                raise bad(f"{name} {dim} is not divisible by {heads} heads", "change the heads")
        text_pos = self.text.get("max_position_embeddings", 0)
        if self.max_text_tokens > text_pos:
            raise bad(
                f"max_text_tokens {self.max_text_tokens} > text encoder positions {text_pos}",
                "lower max_text_tokens",
            )
        rates = (self.cond_drop_text, self.cond_drop_image, self.cond_drop_both)
        if min(rates) < 0 or sum(rates) > 1:
            raise bad(f"conditioning-dropout rates {rates} must be >= 0 and sum to <= 1", "fix")
        if self.codec == "vae":
            vae_factor = 2 ** (len((self.vae or {}).get("block_out_channels", [0])) - 1)
            grid = vae_factor * 2 ** (len(self.unet.get("down_block_types", [0])) - 1)
            if self.image_size % grid:
                raise bad(
                    f"image_size {self.image_size} is not a multiple of {grid} (the VAE's factor "
                    f"{vae_factor} × the UNet's downsamplings)",
                    f"set model.image_size to a multiple of {grid}",
                )
        if self.source_latent == "unscaled" and self.codec != "vae":
            raise bad(
                "source_latent=unscaled needs the VAE codec (it undoes the VAE scaling factor)",
                "set source_latent=scaled",
            )
        if self.kind == "ip2p":
            if self.spatial_cue and not self.vision:
                raise bad(
                    "the ip2p baseline's grounding cue needs an image encoder (no vision config)",
                    "build the config with a preset, or set spatial_cue=false",
                )
            text_width = self.text.get("hidden_size")
            if text_width != self.cond_dim:
                raise bad(
                    f"text encoder width {text_width} != UNet cross-attention width "
                    f"{self.cond_dim}: ip2p conditions the UNet on the text tokens directly",
                    "use the text encoder the UNet was trained with (the diffusion repo's "
                    "text_encoder/)",
                )
            return
        if not self.llava:
            raise bad("no MLLM (llava) config", "build the config with a preset")
        if self.use_id_controller and not self.has_visual_cues:
            raise bad(
                "use_id_controller needs R_V (patch or region branch on)",
                "turn on use_patch_branch or use_region_branch, or turn off use_id_controller",
            )
        if self.use_cme and not (self.has_visual_cues or self.use_id_controller):
            raise bad(
                "use_cme needs FRCE cues (R_V or R_T) to attend to",
                "turn on an FRCE branch or turn off use_cme",
            )
        for i, p in enumerate(self.feature_layers):
            n = int(self.vision.get("num_hidden_layers", 0))
            if not -n - 1 <= p <= n:
                raise bad(f"feature_layers[{i}]={p} outside the {n}-layer vision tower", "fix it")
        if self.base_vocab_size <= 0:
            raise bad("base_vocab_size unset", "build the config with a preset and a tokenizer")
        if self.spatial_cue and not (
            self.kind == "reasonbrain" and self.use_patch_branch and self.use_id_controller
        ):
            raise bad(
                "spatial_cue needs the ReasonBrain patch branch and the ID controller",
                "set model.spatial_cue=false for this ablation or baseline",
            )
