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
- **paper**: LLaVA-1.5-7B (LoRA r=8, α=16), InstructPix2Pix's SD-1.5 UNet + VAE, CLIP ViT-L/14,
  SAM ViT-H; 32 ``[IMG]`` tokens, a 6-layer QFormer with 77 queries, CME with 5 blocks per branch.
  :func:`paper_config` holds the architectures as config objects so the wiring can be built on the
  ``meta`` device (:func:`build_paper_on_meta`) without any weights. It follows the paper:
  ``model.spatial_cue`` and ``model.source_residual`` are ignored (the pretrained UNet keeps
  its 8 input channels and its own prediction target).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from torch import nn

from reasonbrain.config import ModelParams, Settings, get_settings
from reasonbrain.errors import ConfigError
from reasonbrain.models.base import EditModel
from reasonbrain.models.config import ReasonBrainConfig
from reasonbrain.models.tokenizer import add_img_tokens, train_tokenizer

_ABLATIONS = ("use_patch_branch", "use_region_branch", "use_id_controller", "use_cme")


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
    }


def _scheduler(prediction_type: str) -> dict[str, Any]:
    return {
        "num_train_timesteps": 1000,
        "beta_schedule": "squaredcos_cap_v2",
        "prediction_type": prediction_type,
        "clip_sample": False,
    }


# ------------------------------------------------------------------------------------ tiny
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
    latent = 3 * 4
    # the grounding head needs patch tokens and phrase tokens (off for ip2p and those ablations)
    spatial = (
        params.spatial_cue
        and params.kind == "reasonbrain"
        and params.use_patch_branch
        and params.use_id_controller
    )
    unet = {
        "sample_size": size // 2,
        "in_channels": 2 * latent + int(spatial),
        "out_channels": latent,
        "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
        "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
        "block_out_channels": [32, 64, 128],
        "layers_per_block": 1,
        "cross_attention_dim": 64,
        "attention_head_dim": 4,
        "norm_num_groups": 32,
    }
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
        scheduler=_scheduler(params.prediction_type),
        codec="pixel_unshuffle",
        codec_factor=2,
        object_phrases=sorted({o.strip().lower() for o in objects if o.strip()}),
    )


# ------------------------------------------------------------------------------------ paper
def paper_config(params: ModelParams, base_vocab_size: int = 32002) -> ReasonBrainConfig:
    """The paper architecture (LLaVA-1.5-7B, SD-1.5 IP2P UNet/VAE, CLIP ViT-L/14, SAM ViT-H).

    ``base_vocab_size`` is the LLaVA tokenizer's length before the ``[IMG_i]`` tokens (32002 for
    ``llava-hf/llava-1.5-7b-hf``); the sub-configs mirror the published checkpoints.
    """
    w = params.weights
    sources = {
        "llava": w.llava or "llava-hf/llava-1.5-7b-hf",
        "diffusion": w.diffusion or "timbrooks/instruct-pix2pix",
        "clip": w.clip or "openai/clip-vit-large-patch14",
        "sam": w.sam or "facebook/sam-vit-huge",
    }
    clip_vision = {
        "hidden_size": 1024,
        "intermediate_size": 4096,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "image_size": 224,
        "patch_size": 14,
        "projection_dim": 768,
        "hidden_act": "quick_gelu",
    }
    text = {
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
    }
    llava = {
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
        "vision_config": {
            "model_type": "clip_vision_model",
            **clip_vision,
            "image_size": 336,
        },
        "image_token_id": 32000,
        "vision_feature_layer": -2,
        "vision_feature_select_strategy": "default",
        "image_seq_length": 576,
        "projector_hidden_act": "gelu",
    }
    unet = {
        "sample_size": params.image_size // 8,
        "in_channels": 8,
        "out_channels": 4,
        "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
        "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
        "block_out_channels": [320, 640, 1280, 1280],
        "layers_per_block": 2,
        "cross_attention_dim": 768,
        "attention_head_dim": 8,
    }
    vae = {
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ["DownEncoderBlock2D"] * 4,
        "up_block_types": ["UpDecoderBlock2D"] * 4,
        "block_out_channels": [128, 256, 512, 512],
        "layers_per_block": 2,
        "latent_channels": 4,
        "sample_size": 512,
    }
    sam = {
        "vision_config": {
            "hidden_size": 1280,
            "num_hidden_layers": 32,
            "num_attention_heads": 16,
            "global_attn_indexes": [7, 15, 23, 31],
        }
    }
    return ReasonBrainConfig(
        # the paper's pretrained IP2P UNet predicts noise from scratch: no source residual
        **{**_common(params), "source_residual": False},
        frce_dim=1024,
        cond_dim=768,
        qformer_dim=768,
        vision=clip_vision,
        text=text,
        feature_layers=[8, 16, -1],
        max_text_tokens=77,
        frce_heads=16,
        patch_layers=2,
        region_layers=2,
        id_layers=2,
        max_regions=16,
        max_objects=8,
        proposer="sam",
        sam=sam,
        llava=llava,
        base_vocab_size=base_vocab_size,
        num_img_tokens=32,
        max_instruction_tokens=128,
        max_rationale_tokens=48,
        lora_rank=params.lora_rank,
        lora_alpha=params.lora_alpha,
        qformer_layers=6,
        qformer_heads=12,
        num_queries=77,
        cme_blocks=5,
        cme_queries=32,
        cme_heads=12,
        unet=unet,
        scheduler={
            **_scheduler("epsilon"),
            "beta_schedule": "scaled_linear",
            "beta_start": 0.00085,
            "beta_end": 0.012,
        },
        codec="vae",
        vae=vae,
        vae_scaling_factor=0.18215,
        guidance_scale=7.5,
        image_guidance_scale=1.5,
        sources=sources,
    )


# ------------------------------------------------------------------------------------ build
def _codec(cfg: ReasonBrainConfig, vae: Any) -> nn.Module:
    from reasonbrain.models.diffusion import SpaceToDepthCodec, VaeCodec

    if cfg.codec == "pixel_unshuffle":
        return SpaceToDepthCodec(cfg.codec_factor)
    if vae is None:
        from diffusers import AutoencoderKL

        vae = AutoencoderKL(**(cfg.vae or {}))
    vae.requires_grad_(False)
    return VaeCodec(vae, cfg.vae_scaling_factor)


def _load_pretrained(
    cfg: ReasonBrainConfig, settings: Settings
) -> tuple[dict[str, nn.Module], Any, Any]:
    """Load every pretrained part named in ``cfg.sources`` (frozen except where trained)."""
    from reasonbrain.models.weights import load_component, resolve_source

    allow = settings.allow_network
    src = {k: resolve_source(v, settings.weights_dir) for k, v in cfg.sources.items()}
    out: dict[str, nn.Module] = {}
    from transformers import AutoTokenizer, CLIPTextModel

    text_tok = load_component(
        "clip", src["clip"], AutoTokenizer.from_pretrained, allow_network=allow
    )
    out["clip_text"] = load_component(
        "clip", src["clip"], CLIPTextModel.from_pretrained, allow_network=allow
    )
    from diffusers import AutoencoderKL, UNet2DConditionModel

    out["unet"] = load_component(
        "diffusion",
        src["diffusion"],
        UNet2DConditionModel.from_pretrained,
        allow_network=allow,
        subfolder="unet",
    )
    out["vae"] = load_component(
        "diffusion",
        src["diffusion"],
        AutoencoderKL.from_pretrained,
        allow_network=allow,
        subfolder="vae",
    )
    tok = None
    if cfg.kind == "reasonbrain":
        from transformers import CLIPVisionModel, LlavaForConditionalGeneration, SamModel

        tok = load_component(
            "llava", src["llava"], AutoTokenizer.from_pretrained, allow_network=allow
        )
        add_img_tokens(tok, cfg.num_img_tokens)
        out["llava"] = load_component(
            "llava",
            src["llava"],
            LlavaForConditionalGeneration.from_pretrained,
            allow_network=allow,
        )
        out["clip_vision"] = load_component(
            "clip", src["clip"], CLIPVisionModel.from_pretrained, allow_network=allow
        )
        if cfg.use_region_branch:
            out["sam"] = load_component(
                "sam", src["sam"], SamModel.from_pretrained, allow_network=allow
            )
    for name in ("clip_text", "clip_vision", "vae", "sam"):
        if name in out:
            out[name].requires_grad_(False)
    return out, tok, text_tok


def model_from_config(
    cfg: ReasonBrainConfig,
    tokenizer: Any,
    text_tokenizer: Any,
    *,
    pretrained: dict[str, nn.Module] | None = None,
) -> EditModel:
    """Construct the network described by ``cfg`` (random init except ``pretrained`` parts)."""
    from reasonbrain.models.baseline import InstructPix2PixModel
    from reasonbrain.models.diffusion import DiffusionBackbone
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
            proposer = SamProposer(sam, cfg.max_regions)
        model = ReasonBrainModel(cfg, tokenizer, text_tokenizer, diffusion, pre, proposer)
    if cfg.sources:
        model.frozen_pretrained_prefixes = [
            p
            for p in (
                "image_encoder.clip.",
                "text_encoder.clip.",
                "mllm.llava.",
                "diffusion.codec.",
                "proposer.sam.",
            )
        ]
    return model


def build_model(
    params: ModelParams | None = None,
    *,
    corpus: Iterable[str] = (),
    objects: Sequence[str] = (),
    settings: Settings | None = None,
) -> EditModel:
    """Build a fresh model from ``params.yaml``'s ``model`` section.

    Args:
        params: the model params (defaults when None).
        corpus: text the tiny tokenizer is trained on (instructions, captions, objects); a few
            built-in sentences when empty.
        objects: object phrases the inference-time extractor should recognise.
        settings: where local weights live and whether the network may be used (paper preset).

    Raises:
        ConfigError: an impossible combination of switches or widths.
        MissingWeightsError: paper preset whose weights are not available.
    """
    params = params or ModelParams()
    if params.preset == "tiny":
        texts = list(corpus) + list(objects)
        tok = train_tokenizer(texts, params.tokenizer_vocab_size)
        add_img_tokens(tok, 8)
        cfg = tiny_config(params, tok, objects)
        return model_from_config(cfg, tok, tok)
    settings = settings or get_settings()
    cfg = paper_config(params)
    pre, tok, text_tok = _load_pretrained(cfg, settings)
    if tok is not None:
        cfg = cfg.model_copy(
            update={
                "base_vocab_size": len(tok) - cfg.num_img_tokens,
                "object_phrases": sorted({o.strip().lower() for o in objects if o.strip()}),
            }
        )
    return model_from_config(cfg, tok, text_tok, pretrained=pre)


def build_paper_on_meta(params: ModelParams | None = None) -> EditModel:
    """The paper architecture on the ``meta`` device (no memory, no weights) for wiring checks."""
    import types

    import torch

    params = params or ModelParams(preset="paper")
    cfg = paper_config(params)
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
