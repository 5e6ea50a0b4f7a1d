"""Tiny random-initialised checkpoints in the *real* on-disk formats of the paper preset's parts.

Nothing can be downloaded here, yet the paper code path must run for real: these writers produce
directories laid out exactly like the published repositories, with the real libraries'
``save_pretrained``, only far smaller (random weights, sizes that are not the paper's):

- ``llava/`` — like ``llava-hf/llava-1.5-7b-hf``: ``LlavaForConditionalGeneration`` (a Llama
  language model + a CLIP vision tower) and its processor; the tokenizer is a Llama-style BPE
  (byte fallback, ``▁`` word marks) trained here with ``tokenizers``, with ``<image>`` and
  ``<pad>`` added after the base vocabulary as llava-hf does. ``dtype="float16"`` writes the
  weights in fp16, as the LLaVA-1.5 release ships them.
- ``ip2p/`` — like ``timbrooks/instruct-pix2pix``: a diffusers pipeline repo (``model_index.json``,
  ``unet/`` with 8 input channels, ``vae/``, ``text_encoder/``, ``tokenizer/`` — a CLIP BPE trained
  here —, ``scheduler/`` with the repo's Euler-ancestral config).
- ``clip/`` — like ``openai/clip-vit-large-patch14``: a ``CLIPModel`` + image processor + tokenizer.
- ``sam/`` — like ``facebook/sam-vit-huge``: a ``SamModel``.

:data:`TINY_SIZES` holds two different tiny sizes, so tests prove that widths, patch grids and
cross-attention widths are read from the files rather than hard-coded. Used by the paper-preset
tests (``tests/model/paper_fixtures.py``) and ``benchmarks/paper_step.py --tiny``.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Text the tiny tokenizers are trained on (instruction-like sentences and object phrases).
CORPUS = (
    "What would happen if the red candle on the left burned for hours?",
    "What if the blue balloon were left in the sun?",
    "Imagine the green plant a month later.",
    "the red candle is a short stub",
    "the blue balloon is shrivelled",
    "What would happen if the ice cube were left on the table?",
    "Turn the yellow box into a puddle of water.",
    "make it snow; add a small orange cat next to the purple vase",
)


@dataclass(frozen=True)
class TinySizes:
    """Widths of one family of tiny checkpoints (all differ from the paper's)."""

    llm_hidden: int = 64
    llm_layers: int = 2
    llm_heads: int = 4
    vision_hidden: int = 32
    vision_layers: int = 3
    vision_heads: int = 2
    vision_image: int = 56
    vision_patch: int = 14
    text_hidden: int = 32
    text_layers: int = 2
    text_heads: int = 2
    unet_channels: tuple[int, int] = (32, 64)
    unet_cross: int = 32
    vae_channels: tuple[int, int, int, int] = (8, 8, 16, 16)
    sam_hidden: int = 32
    sam_image: int = 64


#: Two tiny families: ``a`` (the default) and ``b`` (every width and grid different).
TINY_SIZES: dict[str, TinySizes] = {
    "a": TinySizes(),
    "b": TinySizes(
        llm_hidden=96,
        llm_layers=1,
        llm_heads=6,
        vision_hidden=48,
        vision_layers=4,
        vision_heads=4,
        vision_image=64,
        vision_patch=16,
        text_hidden=48,
        text_layers=1,
        text_heads=4,
        unet_channels=(32, 32),
        unet_cross=48,
        vae_channels=(8, 16, 16, 16),
        sam_hidden=48,
        sam_image=32,
    ),
}


# ------------------------------------------------------------------------------ tokenizers
def _llama_tokenizer(vocab_size: int = 320) -> Any:
    """A Llama-style BPE (``<unk> <s> </s>``, 256 byte-fallback tokens, ``▁`` word marks)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaTokenizer

    specials = ["<unk>", "<s>", "</s>", *[f"<0x{i:02X}>" for i in range(256)]]
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    trainer = trainers.BpeTrainer(
        vocab_size=len(specials) + vocab_size,
        special_tokens=specials,
        initial_alphabet=list(string.ascii_letters + string.digits + string.punctuation + "▁"),
        show_progress=False,
    )
    tok.train_from_iterator(list(CORPUS), trainer=trainer)
    vocab = tok.get_vocab()
    merges = json.loads(tok.to_str())["model"]["merges"]
    return LlamaTokenizer(vocab=vocab, merges=[tuple(m) for m in merges], add_bos_token=True)


def _clip_tokenizer(vocab_size: int = 600) -> Any:
    """A CLIP-style byte-level BPE (``</w>`` word ends), trained on :data:`CORPUS`."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import CLIPTokenizer

    bos, eos = "<|startoftext|>", "<|endoftext|>"
    tok = Tokenizer(models.BPE(end_of_word_suffix="</w>", continuing_subword_prefix=""))
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(
                Regex(r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""),
                behavior="removed",
                invert=True,
            ),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[bos, eos],
        initial_alphabet=alphabet,
        end_of_word_suffix="</w>",
        show_progress=False,
    )
    tok.train_from_iterator(list(CORPUS), trainer=trainer)
    vocab = dict(tok.get_vocab())
    # like CLIP's own vocabulary: every byte symbol exists alone and as a word end
    for sym in sorted(alphabet):
        for s in (sym, sym + "</w>"):
            vocab.setdefault(s, len(vocab))
    merges: Any = [tuple(m) for m in json.loads(tok.to_str())["model"]["merges"]]
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77, pad_token=eos)


def _image_processor(size: int) -> Any:
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    return CLIPImageProcessorPil(
        size={"shortest_edge": size}, crop_size={"height": size, "width": size}
    )


def _round_up(n: int, k: int) -> int:
    return (n + k - 1) // k * k


def _save_dtype(model: Any, dtype: str) -> Any:
    import torch

    return model.to(getattr(torch, dtype))


# ------------------------------------------------------------------------------ writers
def save_tiny_llava(
    path: Path, sizes: TinySizes | None = None, *, dtype: str = "float32", seed: int = 0
) -> Path:
    """A ``llava-hf``-style directory: model, Llama tokenizer with ``<image>``/``<pad>``,
    processor (image processor + chat template)."""
    import torch
    from transformers import (
        AddedToken,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    s = sizes or TinySizes()
    tok = _llama_tokenizer()
    tok.add_tokens([AddedToken("<image>", special=True, normalized=False)], special_tokens=True)
    tok.add_special_tokens({"pad_token": "<pad>"})
    cfg = LlavaConfig(
        text_config={
            "model_type": "llama",
            "vocab_size": _round_up(len(tok), 64),  # llava-hf pads 32002 → 32064
            "hidden_size": s.llm_hidden,
            "intermediate_size": 2 * s.llm_hidden,
            "num_hidden_layers": s.llm_layers,
            "num_attention_heads": s.llm_heads,
            "num_key_value_heads": s.llm_heads,
            "max_position_embeddings": 512,
            "rms_norm_eps": 1e-5,
            "bos_token_id": tok.bos_token_id,
            "eos_token_id": tok.eos_token_id,
            "pad_token_id": tok.pad_token_id,
            "tie_word_embeddings": False,
        },
        vision_config={
            "model_type": "clip_vision_model",
            "hidden_size": s.vision_hidden,
            "intermediate_size": 4 * s.vision_hidden,
            "num_hidden_layers": s.vision_layers,
            "num_attention_heads": s.vision_heads,
            "image_size": s.vision_image,
            "patch_size": s.vision_patch,
            "projection_dim": s.vision_hidden,
            "hidden_act": "quick_gelu",
        },
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        image_seq_length=(s.vision_image // s.vision_patch) ** 2,
        projector_hidden_act="gelu",
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = _save_dtype(LlavaForConditionalGeneration(cfg), dtype)
    model.save_pretrained(path)
    template = (
        "{% for m in messages %}{{ m['role'].upper() }}: "
        "{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>\n"
        "{% else %}{{ c['text'] }}{% endif %}{% endfor %}\n{% endfor %}"
        "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
    )
    LlavaProcessor(
        image_processor=_image_processor(s.vision_image),
        tokenizer=tok,
        patch_size=s.vision_patch,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=template,
    ).save_pretrained(path)
    return path


def save_tiny_ip2p(
    path: Path, sizes: TinySizes | None = None, *, dtype: str = "float32", seed: int = 0
) -> Path:
    """An InstructPix2Pix-style diffusers repo written by the pipeline's ``save_pretrained``."""
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerAncestralDiscreteScheduler,
        StableDiffusionInstructPix2PixPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    s = sizes or TinySizes()
    tok = _clip_tokenizer()
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=32,
        in_channels=8,
        out_channels=4,
        # attention only at the coarser level: CPU tests at 256 px (32×32 latents) stay fast
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=s.unet_channels,
        layers_per_block=1,
        cross_attention_dim=s.unet_cross,
        attention_head_dim=8,
        norm_num_groups=8,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=s.vae_channels,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=256,
    )
    text = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tok),
            hidden_size=s.text_hidden,
            intermediate_size=4 * s.text_hidden,
            num_hidden_layers=s.text_layers,
            num_attention_heads=s.text_heads,
            max_position_embeddings=77,
            projection_dim=s.text_hidden,
            hidden_act="quick_gelu",
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        )
    )
    # the published repo's scheduler (its steps_offset/set_alpha_to_one matter to DDIM)
    scheduler: Any = EulerAncestralDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        steps_offset=1,
        prediction_type="epsilon",
    )
    scheduler.register_to_config(clip_sample=False, set_alpha_to_one=False, skip_prk_steps=True)
    pipe: Any = StableDiffusionInstructPix2PixPipeline(
        vae=_save_dtype(vae, dtype),
        text_encoder=_save_dtype(text, dtype),
        tokenizer=tok,
        unet=_save_dtype(unet, dtype),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(path)
    return path


def save_tiny_clip(
    path: Path, sizes: TinySizes | None = None, *, dtype: str = "float32", seed: int = 0
) -> Path:
    """An ``openai/clip-vit-*``-style directory: ``CLIPModel``, image processor, tokenizer."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    s = sizes or TinySizes()
    tok = _clip_tokenizer()
    cfg = CLIPConfig(
        text_config={
            "vocab_size": len(tok),
            "hidden_size": s.text_hidden,
            "intermediate_size": 4 * s.text_hidden,
            "num_hidden_layers": s.text_layers,
            "num_attention_heads": s.text_heads,
            "max_position_embeddings": 77,
            "hidden_act": "quick_gelu",
            "bos_token_id": tok.bos_token_id,
            "eos_token_id": tok.eos_token_id,
            "pad_token_id": tok.pad_token_id,
        },
        vision_config={
            "hidden_size": s.vision_hidden,
            "intermediate_size": 4 * s.vision_hidden,
            "num_hidden_layers": s.vision_layers,
            "num_attention_heads": s.vision_heads,
            "image_size": s.vision_image,
            "patch_size": s.vision_patch,
            "hidden_act": "quick_gelu",
        },
        projection_dim=s.text_hidden,
    )
    torch.manual_seed(seed + 1)
    _save_dtype(CLIPModel(cfg), dtype).save_pretrained(path)
    _image_processor(s.vision_image).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def save_tiny_sam(
    path: Path, sizes: TinySizes | None = None, *, dtype: str = "float32", seed: int = 0
) -> Path:
    """A ``facebook/sam-vit-*``-style directory (``SamModel``)."""
    import torch
    from transformers import SamConfig, SamModel

    s = sizes or TinySizes()
    h = s.sam_hidden
    cfg = SamConfig(
        vision_config={
            "hidden_size": h,
            "output_channels": h,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": s.sam_image,
            "patch_size": 16,
            "window_size": 2,
            "global_attn_indexes": [1],
            "num_pos_feats": h // 2,
            "mlp_dim": 2 * h,
        },
        prompt_encoder_config={
            "hidden_size": h,
            "image_size": s.sam_image,
            "patch_size": 16,
            "mask_input_channels": 4,
        },
        mask_decoder_config={
            "hidden_size": h,
            "mlp_dim": 2 * h,
            "num_attention_heads": 2,
            "iou_head_hidden_dim": h,
        },
    )
    torch.manual_seed(seed + 2)
    _save_dtype(SamModel(cfg), dtype).save_pretrained(path)
    return path


def save_tiny_paper_weights(
    root: Path, sizes: TinySizes | str = "a", *, dtype: str = "float32", seed: int = 0
) -> dict[str, Path]:
    """All four parts under ``root`` (``llava/``, ``ip2p/``, ``clip/``, ``sam/``).

    Returns:
        ``{"llava": …, "diffusion": …, "clip": …, "sam": …}`` — the ``model.weights`` entries.
    """
    s = TINY_SIZES[sizes] if isinstance(sizes, str) else sizes
    root.mkdir(parents=True, exist_ok=True)
    return {
        "llava": save_tiny_llava(root / "llava", s, dtype=dtype, seed=seed),
        "diffusion": save_tiny_ip2p(root / "ip2p", s, dtype=dtype, seed=seed),
        "clip": save_tiny_clip(root / "clip", s, dtype=dtype, seed=seed),
        "sam": save_tiny_sam(root / "sam", s, dtype=dtype, seed=seed),
    }
