"""Tiny fixtures for tests and benchmarks: nothing here is downloaded or pretrained.

- :func:`make_synth_dataset` writes a small dataset in the ReasonSynth layout (``meta`` per
  :class:`~reasonbrain.data.schema.SynthMeta`: family, affected object, mask, counterfactuals,
  holdout) with PIL, independent of the real generator.
- :func:`save_tiny_clip`, :func:`save_tiny_dino`, :func:`save_random_alexnet` and
  :func:`save_tiny_vlm` save randomly initialised encoders with ``save_pretrained`` (plus image
  processors and word-level tokenizers), so every model-based code path runs for real offline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from reasonbrain.data.schema import Record, write_manifest

CATEGORIES = ("physical", "temporal", "causal", "story")
HOLDOUTS = ("seen", "phrasing", "combination")
_WORDS = [
    "a",
    "an",
    "the",
    "what",
    "would",
    "happen",
    "if",
    "this",
    "were",
    "left",
    "in",
    "sun",
    "ice",
    "cube",
    "red",
    "blue",
    "box",
    "yellow",
    "green",
    "square",
    "melted",
    "painted",
    "photo",
    "of",
    "scene",
    "grey",
    "background",
    "object",
    "changed",
    "colour",
    "turned",
    "image",
]


def _scene(size: int, a: tuple[int, int, int], b: tuple[int, int, int]) -> np.ndarray:
    img = np.full((size, size, 3), 128, dtype=np.uint8)
    q = size // 4
    img[q : 2 * q, q // 2 : q // 2 + q] = a  # object A (left)
    img[q : 2 * q, size - q // 2 - q : size - q // 2] = b  # object B (right)
    return img


def make_synth_dataset(root: Path, n: int = 12, size: int = 32, split: str = "test") -> Path:
    """Write ``n`` ReasonSynth-style records to ``root/<split>.jsonl`` (+ images, masks).

    Object A (left, red) is the affected object: the target turns it yellow. Counterfactuals:
    ``no_change`` (= source), ``wrong_object`` (object B turned yellow), ``wrong_change`` (A
    turned green). The mask covers object A. Categories, families and hold-outs cycle.
    """
    root.mkdir(parents=True, exist_ok=True)
    red, blue, yellow, green = (200, 30, 30), (30, 30, 200), (240, 220, 20), (30, 190, 60)
    records = []
    for i in range(n):
        d = root / "images" / f"s{i:03d}"
        d.mkdir(parents=True, exist_ok=True)
        shade = (i * 7) % 40
        a = (red[0] - shade, red[1], red[2])
        imgs = {
            "src": _scene(size, a, blue),
            "tgt": _scene(size, yellow, blue),
            "cf_no_change": _scene(size, a, blue),
            "cf_wrong_object": _scene(size, a, yellow),
            "cf_wrong_change": _scene(size, green, blue),
        }
        for name, arr in imgs.items():
            Image.fromarray(arr).save(d / f"{name}.png")
        mask = np.zeros((size, size), dtype=np.uint8)
        q = size // 4
        mask[q : 2 * q, q // 2 : q // 2 + q] = 255
        Image.fromarray(mask, mode="L").save(d / "mask.png")
        rel = f"images/s{i:03d}"
        records.append(
            Record(
                id=f"s{i:03d}",
                category=CATEGORIES[i % 4],
                src_image=f"{rel}/src.png",
                tgt_image=f"{rel}/tgt.png",
                instruction="What would happen if the red box were left in the sun?",
                objects=["red box"],
                target_caption="a yellow box and a blue box",
                meta={
                    "family": ("melt", "paint")[i % 2],
                    "affected_object": "red box",
                    "mask": f"{rel}/mask.png",
                    "counterfactuals": {
                        k: f"{rel}/cf_{k}.png"
                        for k in ("no_change", "wrong_object", "wrong_change")
                    },
                    "holdout": HOLDOUTS[i % 3],
                    "input_caption": "a red box and a blue box",
                },
            )
        )
    write_manifest(root / f"{split}.jsonl", records)
    return root


def _word_tokenizer(extra_special: tuple[str, ...] = ()) -> object:
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "<bos>", "<eos>", *extra_special]
    vocab = {t: i for i, t in enumerate([*specials, *dict.fromkeys(_WORDS)])}
    tok = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = Whitespace()
    tok.post_processor = TemplateProcessing(
        single="$A <eos>", special_tokens=[("<eos>", vocab["<eos>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        bos_token="<bos>",
        eos_token="<eos>",
        additional_special_tokens=list(extra_special) or None,
    )


def _image_processor(size: int) -> object:
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    return CLIPImageProcessorPil(
        size={"shortest_edge": size}, crop_size={"height": size, "width": size}
    )


def save_tiny_clip(path: Path, image_size: int = 32, seed: int = 0) -> Path:
    """A randomly initialised CLIP (1 layer, width 32) + processor + tokenizer in ``path``."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(seed)
    tok = _word_tokenizer()
    cfg = CLIPConfig(
        text_config={
            "vocab_size": len(tok),  # type: ignore[arg-type]
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 32,
            "eos_token_id": 3,
            "pad_token_id": 0,
            "bos_token_id": 2,
        },
        vision_config={
            "image_size": image_size,
            "patch_size": 8,
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
        },
        projection_dim=16,
    )
    CLIPModel(cfg).save_pretrained(path)
    _image_processor(image_size).save_pretrained(path)  # type: ignore[attr-defined]
    tok.save_pretrained(path)  # type: ignore[attr-defined]
    return path


def save_tiny_dino(path: Path, image_size: int = 32, seed: int = 0) -> Path:
    """A randomly initialised ViT (DINO-style CLS features) + image processor in ``path``."""
    import torch
    from transformers import ViTConfig, ViTModel

    torch.manual_seed(seed)
    cfg = ViTConfig(
        image_size=image_size,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
    )
    ViTModel(cfg).save_pretrained(path)
    _image_processor(image_size).save_pretrained(path)  # type: ignore[attr-defined]
    return path


def save_random_alexnet(path: Path, seed: int = 0) -> Path:
    """Random AlexNet features (torchvision key names) as safetensors, for LPIPS tests."""
    import torch
    from safetensors.torch import save_file

    from reasonbrain.evaluation.lpips import alexnet_features

    torch.manual_seed(seed)
    state = {f"features.{k}": v.contiguous() for k, v in alexnet_features().state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path))
    return path


def save_tiny_vlm(path: Path, image_size: int = 32, seed: int = 0) -> Path:
    """A randomly initialised LLaVA (tiny CLIP vision tower + tiny Llama) with a processor."""
    import torch
    from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

    torch.manual_seed(seed)
    tok = _word_tokenizer(extra_special=("<image>",))
    image_token_id = tok.convert_tokens_to_ids("<image>")  # type: ignore[attr-defined]
    cfg = LlavaConfig(
        vision_config={
            "model_type": "clip_vision_model",
            "image_size": image_size,
            "patch_size": 8,
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "projection_dim": 16,
        },
        text_config={
            "model_type": "llama",
            "vocab_size": len(tok),  # type: ignore[arg-type]
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "max_position_embeddings": 512,
            "pad_token_id": 0,
            "bos_token_id": 2,
            "eos_token_id": 3,
        },
        image_token_index=image_token_id,
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    LlavaForConditionalGeneration(cfg).save_pretrained(path)
    template = (
        "{% for m in messages %}{{ m['role'] }}: "
        "{% for c in m['content'] %}{% if c['type'] == 'image' %}<image> "
        "{% else %}{{ c['text'] }}{% endif %}{% endfor %}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant: {% endif %}"
    )
    LlavaProcessor(
        image_processor=_image_processor(image_size),
        tokenizer=tok,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=template,
    ).save_pretrained(path)
    return path
