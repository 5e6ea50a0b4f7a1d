"""Presets: ``tiny`` (built from configs, trains on a CPU) and ``paper`` (pretrained parts).

``params.yaml`` ``model.preset`` selects one; :func:`build_model` is the one entry point::

    model = build_model(params.model, corpus=instructions_and_captions, objects=object_phrases)

- **tiny**: ``image_size`` × ``image_size`` images (32 by default); CLIP towers, LLaVA (tiny Llama +
  tiny CLIP vision, an 8×8 patch grid), QFormer, CME and a diffusers UNet all built from config
  objects — nothing downloaded. The tokenizer is trained on ``corpus``. Diffusion runs on a
  space-to-depth latent of half the image side × 12 channels, attention only at its two coarser
  levels, predicting x0 as source + residual (see :mod:`reasonbrain.models.diffusion`), with
  the grounding cue as one more UNet input channel (``model.spatial_cue``,
  :mod:`reasonbrain.models.grounding`).
- **paper**: LLaVA-1.5-7B (LoRA r=8, α=16), InstructPix2Pix's SD-1.5 UNet + VAE + text encoder +
  scheduler, CLIP ViT-L/14, SAM ViT-H; 32 ``[IMG]`` tokens, a 6-layer QFormer with 77 queries, CME
  with 5 blocks per branch. :func:`paper_config` *derives* the architecture from the loaded
  checkpoints' configs (:class:`PaperParts`: hidden sizes, patch grids, cross-attention width,
  noise schedule), so LLaVA-1.5-13B or another SD-1.5 IP2P repo work without code changes; the
  published configs (:data:`PUBLISHED_PARTS`) build the wiring on the ``meta`` device
  (:func:`build_paper_on_meta`). ``params.paper.yaml`` is the recipe; ``reasonbrain.config``
  refuses what cannot work with it (``model.spatial_cue``/``source_residual``: the pretrained UNet
  keeps its 8 input channels and its own prediction target).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from reasonbrain.config import ModelParams, Settings, get_settings
from reasonbrain.errors import ConfigError
from reasonbrain.models.base import EditModel
from reasonbrain.models.config import ReasonBrainConfig
from reasonbrain.models.tokenizer import add_img_tokens, train_tokenizer
from reasonbrain.models.weights import PretrainedParts, load_pretrained

_ABLATIONS = ("use_patch_branch", "use_region_branch", "use_id_controller", "use_cme")


#: the tiny UNet's width per resolution and depth when model.unet_channels /
#: model.unet_layers_per_block are null
TINY_UNET_CHANNELS: tuple[int, ...] = (32, 64, 128)
TINY_UNET_LAYERS_PER_BLOCK = 1


def _common(params: ModelParams) -> dict[str, Any]:
    return {
        "kind": params.kind,
        "preset": params.preset,
        "image_size": params.image_size,
        **{k: getattr(params, k) for k in _ABLATIONS},
        "use_rationale": params.use_rationale,
        "source_residual": params.source_residual,
        "cond_drop_text": params.cond_drop_text,
        "cond_drop_image": params.cond_drop_image,
        "cond_drop_both": params.cond_drop_both,
        "loss_weight_mllm": params.loss_weight_mllm,
        "loss_weight_dm": params.loss_weight_dm,
        "edit_loss_weight": params.edit_loss_weight,
        "dm_loss": params.dm_loss,
        "timestep_logit_mean": params.timestep_logit_mean,
        "timestep_logit_std": params.timestep_logit_std,
        "null_text": params.null_text,
    }


def _scheduler(prediction_type: str) -> dict[str, Any]:
    return {
        "num_train_timesteps": 1000,
        "beta_schedule": "squaredcos_cap_v2",
        "prediction_type": prediction_type,
        "clip_sample": False,
    }


# ------------------------------------------------------------------------------------ tiny
def tiny_unet_config(params: ModelParams, spatial: bool) -> dict[str, Any]:
    """The tiny denoiser: a diffusers ``UNet2DConditionModel`` config over the 2× space-to-depth
    latent (12 channels at half the image side), cross-attending to a 64-wide conditioning
    sequence at its two coarser levels; ``spatial`` adds the grounding cue's input channel."""
    latent = 3 * 4
    unet: dict[str, Any] = {
        "sample_size": params.image_size // 2,
        "in_channels": 2 * latent + int(spatial),
        "out_channels": latent,
        "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
        "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
        "block_out_channels": list(params.unet_channels or TINY_UNET_CHANNELS),
        "layers_per_block": params.unet_layers_per_block or TINY_UNET_LAYERS_PER_BLOCK,
        "cross_attention_dim": 64,
        "attention_head_dim": 4,
        "norm_num_groups": 32,
    }
    if params.pooled_cond_embedding:  # diffusers' TextTimeEmbedding: attention-pooled condition
        unet |= {"addition_embed_type": "text", "addition_embed_type_num_heads": 4}
    return unet


def tiny_config(
    params: ModelParams, tokenizer: Any, objects: Sequence[str] = ()
) -> ReasonBrainConfig:
    """The tiny architecture for ``params`` (``tokenizer`` must already hold the ``[IMG_i]``)."""
    size = params.image_size
    if size % 16:
        raise ConfigError(
            f"tiny preset needs image_size divisible by 16, got {size}", where="model.image_size"
        )
    r = 8
    vocab = len(tokenizer)
    base_vocab = vocab - r
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    vision = {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "image_size": size,
        "patch_size": size // 8,
        "projection_dim": 64,
    }
    text = {
        "vocab_size": base_vocab,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "max_position_embeddings": 48,
        "projection_dim": 64,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    llava = {
        "text_config": {
            "model_type": "llama",
            "vocab_size": base_vocab,
            "hidden_size": 128,
            "intermediate_size": 256,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 4,
            "max_position_embeddings": 512,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
            "tie_word_embeddings": False,
        },
        "vision_config": {"model_type": "clip_vision_model", **vision},
        "image_token_id": image_id,
        "vision_feature_layer": -1,
        "vision_feature_select_strategy": "default",
        "image_seq_length": 64,
        "projector_hidden_act": "gelu",
    }
    # the grounding head needs patch tokens and phrase tokens (off for the ablations without
    # them); the ip2p baseline gets it only when asked (model.ip2p_spatial_cue)
    spatial = (
        params.spatial_cue
        and params.kind == "reasonbrain"
        and params.use_patch_branch
        and params.use_id_controller
    ) or (params.kind == "ip2p" and params.ip2p_spatial_cue)
    unet = tiny_unet_config(params, spatial)
    return ReasonBrainConfig(
        **_common(params),
        frce_dim=64,
        cond_dim=64,
        qformer_dim=64,
        vision=vision,
        text=text,
        feature_layers=[-2, -1],
        max_text_tokens=32,
        frce_heads=2,
        max_regions=8,
        max_objects=4,
        proposer="color",
        llava=llava,
        base_vocab_size=base_vocab,
        num_img_tokens=r,
        max_instruction_tokens=40,
        max_rationale_tokens=16,
        lora_rank=0,
        qformer_layers=2,
        qformer_heads=2,
        num_queries=16,
        cme_blocks=1,
        cme_queries=8,
        cme_heads=2,
        unet=unet,
        spatial_cue=spatial,
        image_guidance_scale=1.0,  # see params.yaml eval.image_guidance_scale
        loss_weight_ground=params.loss_weight_ground,
        scheduler=_scheduler(params.prediction_type or "sample"),
        codec="pixel_unshuffle",
        codec_factor=2,
        object_phrases=sorted({o.strip().lower() for o in objects if o.strip()}),
    )


# ------------------------------------------------------------------------------------ paper
@dataclass(frozen=True)
class PaperParts:
    """The sub-configs the paper architecture is derived from: the loaded checkpoints' own
    configs (:func:`parts_from_pretrained`), or the published ones (:data:`PUBLISHED_PARTS`, for
    wiring checks on the ``meta`` device). Plain dicts, as the libraries serialise them."""

    llava: dict[str, Any]
    vision: dict[str, Any]
    text: dict[str, Any]
    unet: dict[str, Any]
    vae: dict[str, Any]
    sam: dict[str, Any]
    scheduler: dict[str, Any]
    base_vocab_size: int


_CLIP_L_VISION = {
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "image_size": 224,
    "patch_size": 14,
    "projection_dim": 768,
    "hidden_act": "quick_gelu",
}

#: The published configs: llava-hf/llava-1.5-7b-hf, timbrooks/instruct-pix2pix (UNet, VAE, text
#: encoder = CLIP ViT-L/14's, scheduler), openai/clip-vit-large-patch14, facebook/sam-vit-huge.
PUBLISHED_PARTS = PaperParts(
    llava={
        "text_config": {
            "model_type": "llama",
            "vocab_size": 32064,
            "hidden_size": 4096,
            "intermediate_size": 11008,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 32,
            "max_position_embeddings": 4096,
            "rms_norm_eps": 1e-5,
            "tie_word_embeddings": False,
        },
        "vision_config": {"model_type": "clip_vision_model", **_CLIP_L_VISION, "image_size": 336},
        "image_token_id": 32000,
        "vision_feature_layer": -2,
        "vision_feature_select_strategy": "default",
        "image_seq_length": 576,
        "projector_hidden_act": "gelu",
    },
    vision=dict(_CLIP_L_VISION),
    text={
        "vocab_size": 49408,
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "max_position_embeddings": 77,
        "projection_dim": 768,
        "hidden_act": "quick_gelu",
        "bos_token_id": 49406,
        "eos_token_id": 49407,
        "pad_token_id": 49407,
    },
    unet={
        "sample_size": 64,
        "in_channels": 8,
        "out_channels": 4,
        "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
        "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
        "block_out_channels": [320, 640, 1280, 1280],
        "layers_per_block": 2,
        "cross_attention_dim": 768,
        "attention_head_dim": 8,
    },
    vae={
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ["DownEncoderBlock2D"] * 4,
        "up_block_types": ["UpDecoderBlock2D"] * 4,
        "block_out_channels": [128, 256, 512, 512],
        "layers_per_block": 2,
        "latent_channels": 4,
        "sample_size": 512,
        "scaling_factor": 0.18215,
    },
    sam={
        "vision_config": {
            "hidden_size": 1280,
            "num_hidden_layers": 32,
            "num_attention_heads": 16,
            "global_attn_indexes": [7, 15, 23, 31],
        }
    },
    scheduler={
        "num_train_timesteps": 1000,
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "prediction_type": "epsilon",
        "steps_offset": 1,
        "set_alpha_to_one": False,
        "clip_sample": False,
        "skip_prk_steps": True,
    },
    base_vocab_size=32002,
)

#: Keys of serialised configs that describe a file, not an architecture.
_FILE_KEYS = {
    "dtype",
    "torch_dtype",
    "transformers_version",
    "architectures",
    "use_cache",
    "id2label",
    "label2id",
}


def _clean(d: Any) -> Any:
    if isinstance(d, dict):
        return {
            k: _clean(v)
            for k, v in d.items()
            if not (isinstance(k, str) and (k.startswith("_") or k in _FILE_KEYS))
        }
    return d


def parts_from_pretrained(pre: PretrainedParts, tokenizer: Any) -> PaperParts:
    """The sub-configs of the loaded checkpoints (widths, grids, schedule are read, not assumed)."""
    m = pre.modules

    def hf(name: str) -> dict[str, Any]:
        return dict(_clean(m[name].config.to_dict())) if name in m else {}

    def dm(name: str) -> dict[str, Any]:
        return dict(_clean(dict(m[name].config))) if name in m else {}

    return PaperParts(
        llava=hf("llava"),
        vision=hf("clip_vision"),
        text=hf("clip_text"),
        unet=dm("unet"),
        vae=dm("vae"),
        sam=hf("sam"),
        scheduler=dict(pre.scheduler),
        base_vocab_size=0 if tokenizer is None else len(tokenizer),
    )


def _heads(width: int, preferred: int, min_head_dim: int = 8) -> int:
    """The most heads ≤ ``preferred`` dividing ``width`` with heads of ≥ ``min_head_dim``
    channels (the paper's 16/12 heads at widths 1024/768; fewer for tiny checkpoints)."""
    for h in range(min(preferred, width), 0, -1):
        if width % h == 0 and width // h >= min(min_head_dim, width):
            return h
    return 1


def _paper_sources(params: ModelParams) -> dict[str, str]:
    from reasonbrain.models.weights import PAPER_SOURCES

    w = params.weights
    given = {"llava": w.llava, "diffusion": w.diffusion, "clip": w.clip, "sam": w.sam}
    return {k: str(given[k] or PAPER_SOURCES[k]) for k in PAPER_SOURCES}


def paper_config(
    params: ModelParams, parts: PaperParts = PUBLISHED_PARTS, sources: dict[str, str] | None = None
) -> ReasonBrainConfig:
    """The paper architecture, its widths read from ``parts`` (the loaded checkpoints' configs).

    Fixed by the paper: 32 ``[IMG]`` tokens, a 6-layer QFormer, CME with 5 blocks per branch,
    2-layer FRCE branches, LoRA on the language model. Read from the checkpoints: the FRCE width
    (the CLIP vision width: 1024 for ViT-L/14), the conditioning width and QFormer width (the
    UNet's cross-attention width: 768 for SD-1.5), the number of QFormer queries and text tokens
    (the text encoder's positions: 77), the multi-scale layers (a third and two thirds of the
    vision tower, and its last layer: 8, 16, -1 for 24 layers), the noise schedule and the VAE
    scaling factor. InstructPix2Pix-exact conditioning (unscaled source latent, no text attention
    mask, the null text = encoding of ``""``; see :mod:`reasonbrain.models.baseline`).
    """
    unet = dict(parts.unet)
    cross = unet.get("cross_attention_dim", 768)
    cond = int(cross[0] if isinstance(cross, (list, tuple)) else cross)
    text_len = int(parts.text.get("max_position_embeddings", 77))
    n_vision = int(parts.vision.get("num_hidden_layers", 24))
    feature_layers = [*sorted({n_vision // 3, 2 * n_vision // 3} - {0}), -1]
    frce = int(parts.vision.get("hidden_size", 1024))
    scheduler = dict(parts.scheduler)
    if params.prediction_type is not None:  # an explicit choice overrides the repo's target
        scheduler["prediction_type"] = params.prediction_type
    vae = dict(parts.vae)
    return ReasonBrainConfig(
        # the pretrained IP2P UNet keeps its 8 input channels and its own prediction target
        **{**_common(params), "source_residual": False},
        frce_dim=frce,
        cond_dim=cond,
        qformer_dim=cond,
        vision=dict(parts.vision),
        text=dict(parts.text),
        feature_layers=feature_layers,
        max_text_tokens=text_len,
        text_attention_mask=False,
        frce_heads=_heads(frce, 16),
        patch_layers=2,
        region_layers=2,
        id_layers=2,
        max_regions=16,
        max_objects=8,
        proposer="sam",
        sam=dict(parts.sam),
        llava=dict(parts.llava),
        base_vocab_size=parts.base_vocab_size,
        num_img_tokens=32,
        max_instruction_tokens=128,
        max_rationale_tokens=48,
        lora_rank=params.lora_rank,
        lora_alpha=params.lora_alpha,
        qformer_layers=6,
        qformer_heads=_heads(cond, 12),
        num_queries=text_len,
        cme_blocks=5,
        cme_queries=32,
        cme_heads=_heads(cond, 12),
        unet=unet,
        scheduler=scheduler,
        codec="vae",
        vae=vae,
        vae_scaling_factor=float(vae.get("scaling_factor", 0.18215)),
        source_latent="unscaled",
        guidance_scale=7.5,
        image_guidance_scale=1.5,
        sources=dict(sources or _paper_sources(params)),
    )


# ------------------------------------------------------------------------------------ build
def _codec(cfg: ReasonBrainConfig, vae: Any) -> nn.Module:
    from reasonbrain.models.diffusion import SpaceToDepthCodec, VaeCodec

    if cfg.codec == "pixel_unshuffle":
        return SpaceToDepthCodec(cfg.codec_factor)
    if vae is None:
        from diffusers import AutoencoderKL

        vae = AutoencoderKL.from_config(cfg.vae or {})
    vae.requires_grad_(False)
    return VaeCodec(vae, cfg.vae_scaling_factor, unscaled_source=cfg.source_latent == "unscaled")


def load_paper_parts(
    cfg: ReasonBrainConfig,
    settings: Settings,
    *,
    dtype: Any,
    skip: Sequence[str] = (),
    tokenizers: bool = True,
) -> PretrainedParts:
    """Load the pretrained parts ``cfg.sources`` names (see :mod:`reasonbrain.models.weights`)."""
    return load_pretrained(
        cfg.sources,
        kind=cfg.kind,
        use_region_branch=cfg.use_region_branch,
        settings=settings,
        dtype=dtype,
        skip=skip,
        tokenizers=tokenizers,
    )


def model_from_config(
    cfg: ReasonBrainConfig,
    tokenizer: Any,
    text_tokenizer: Any,
    *,
    pretrained: dict[str, nn.Module] | None = None,
) -> EditModel:
    """Construct the network described by ``cfg`` (random init except ``pretrained`` parts).

    Trainable parameters end up in fp32 whatever dtype a library created them in (PEFT makes
    LoRA weights in the base layer's dtype):
    :func:`~reasonbrain.models.precision.fp32_master_weights`.
    """
    from reasonbrain.models.baseline import InstructPix2PixModel
    from reasonbrain.models.diffusion import DiffusionBackbone
    from reasonbrain.models.precision import fp32_master_weights
    from reasonbrain.models.reasonbrain import ReasonBrainModel

    cfg.check()
    pre = dict(pretrained or {})
    diffusion = DiffusionBackbone(
        cfg.unet,
        cfg.scheduler,
        _codec(cfg, pre.pop("vae", None)),
        unet=pre.pop("unet", None),
        source_residual=cfg.source_residual,
    )
    model: EditModel
    if cfg.kind == "ip2p":
        model = InstructPix2PixModel(cfg, text_tokenizer, diffusion, pretrained=pre)
    else:
        proposer = None
        if cfg.use_region_branch and cfg.proposer == "sam":
            from transformers import SamConfig, SamModel

            from reasonbrain.models.region_proposer import SamProposer

            sam = pre.pop("sam", None) or SamModel(SamConfig(**(cfg.sam or {})))
            sam.requires_grad_(False)
            home = get_settings().home
            proposer = SamProposer(sam, cfg.max_regions, cache_dir=home / "cache" / "regions")
        model = ReasonBrainModel(cfg, tokenizer, text_tokenizer, diffusion, pre, proposer)
    if cfg.sources:
        model.frozen_pretrained_prefixes = [
            "image_encoder.clip.",
            "text_encoder.clip.",
            "mllm.llava.",
            "diffusion.codec.",
            "proposer.sam.",
        ]
    fp32_master_weights(model)
    return model


def _init_null_from_empty_prompt(model: EditModel, text_encoder: nn.Module, tok: Any) -> None:
    """``null_text="empty_prompt"`` for ReasonBrain: its conditioning is not a text-token
    sequence, so the null stays a learned sequence, initialised from the text encoder's encoding
    of ``""`` (the last position repeated to the conditioning length; cut to it when longer)."""
    import torch

    from reasonbrain.models.encoders import TextEncoder

    if model.null_cond is None:
        return
    c = model.config
    enc = TextEncoder(c.text, tok, c.max_text_tokens, model=text_encoder, use_attention_mask=False)
    with torch.no_grad():
        tokens, _, _ = enc(*enc.tokenize([""]))  # [1, T, width]
        if tokens.shape[-1] != c.cond_dim:
            return  # another width: the zero init stays
        length = model.null_cond.shape[1]
        rows = tokens[0, :length]
        if rows.shape[0] < length:
            rows = torch.cat([rows, rows[-1:].expand(length - rows.shape[0], -1)])
        model.null_cond.copy_(rows[None].to(model.null_cond.dtype))


def build_model(
    params: ModelParams | None = None,
    *,
    corpus: Iterable[str] = (),
    objects: Sequence[str] = (),
    settings: Settings | None = None,
    dtype: Any = None,
) -> EditModel:
    """Build a fresh model from ``params.yaml``'s ``model`` section.

    Args:
        params: the model params (defaults when None).
        corpus: text the tiny tokenizer is trained on (instructions, captions, objects); a few
            built-in sentences when empty.
        objects: object phrases the inference-time extractor should recognise.
        settings: where local weights live and whether the network may be used (paper preset).
        dtype: the compute dtype of frozen pretrained parts (paper preset; default fp32, see
            :mod:`reasonbrain.models.precision`).

    Raises:
        ConfigError: an impossible combination of switches or widths.
        MissingWeightsError: paper preset whose weights are not available.
    """
    import torch

    params = params or ModelParams()
    if params.preset == "tiny":
        texts = list(corpus) + list(objects)
        tok = train_tokenizer(texts, params.tokenizer_vocab_size)
        add_img_tokens(tok, 8)
        cfg = tiny_config(params, tok, objects)
        return model_from_config(cfg, tok, tok)
    settings = settings or get_settings()
    sources = _paper_sources(params)
    pre = load_pretrained(
        sources,
        kind=params.kind,
        use_region_branch=params.use_region_branch,
        settings=settings,
        dtype=dtype or torch.float32,
    )
    tok = pre.tokenizer  # LLaVA's, before the [IMG_i] tokens: its length is the base vocabulary
    cfg = paper_config(params, parts_from_pretrained(pre, tok), sources)
    if tok is not None:
        add_img_tokens(tok, cfg.num_img_tokens)
        phrases = sorted({o.strip().lower() for o in objects if o.strip()})
        cfg = cfg.model_copy(update={"object_phrases": phrases})
    text_encoder = pre.modules.get("clip_text")
    model = model_from_config(cfg, tok, pre.text_tokenizer, pretrained=pre.modules)
    if cfg.kind == "reasonbrain" and cfg.null_text == "empty_prompt" and text_encoder is not None:
        _init_null_from_empty_prompt(model, text_encoder, pre.text_tokenizer)
    return model


def build_paper_on_meta(params: ModelParams | None = None) -> EditModel:
    """The paper architecture on the ``meta`` device (no memory, no weights) for wiring checks,
    from the published configs (:data:`PUBLISHED_PARTS`)."""
    import types

    import torch

    params = params or ModelParams(preset="paper")
    cfg = paper_config(params, PUBLISHED_PARTS)
    tok = types.SimpleNamespace(bos_token_id=1, eos_token_id=2, pad_token_id=32001)
    with torch.device("meta"):
        model = model_from_config(cfg, tok, tok)
    return model


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """Parameter count per top-level component (and ``total``), e.g. for model cards."""
    counts: dict[str, int] = {}
    for name, p in model.named_parameters():
        top = name.split(".")[0]
        if top == "mllm":
            top = "mllm." + name.split(".")[1]
        elif top == "diffusion":
            top = "diffusion." + name.split(".")[1]
        counts[top] = counts.get(top, 0) + p.numel()
    counts["total"] = sum(v for k, v in counts.items())
    return counts
