"""E_I and E_T: the CLIP image and text encoders (DESIGN §4.1; paper §3.1 "Encoders").

- :class:`ImageEncoder` runs a ``CLIPVisionModel`` and concatenates the patch tokens of several
  layers (the paper's "multi-scale" features), projected to the FRCE width.
- :class:`TextEncoder` runs a ``CLIPTextModel`` and returns per-token features (for the CME text
  branch) and pooled phrase embeddings (for the ID controller's object phrases).

The image encoder takes ``[-1, 1]`` images and does its own CLIP normalisation; the text encoder
takes token ids from :class:`~reasonbrain.models.processor.ReasonBrainProcessor` (tokenisation
never runs inside the model's forward). The same code serves the tiny (random-init) and paper
(pretrained ViT-L/14) worlds. A pretrained tower
may be frozen in another dtype (bf16) than the trainable layers around it (fp32): inputs are cast
to the tower's dtype and its features handed on in fp32.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def clip_preprocess(images: torch.Tensor, size: int) -> torch.Tensor:
    """``[-1, 1]`` images ``[B, 3, H, W]`` → CLIP-normalised pixels at ``size`` × ``size``."""
    x = (images.float() + 1.0) / 2.0
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
    mean = x.new_tensor(CLIP_MEAN)[None, :, None, None]
    std = x.new_tensor(CLIP_STD)[None, :, None, None]
    return (x - mean) / std


class ImageEncoder(nn.Module):
    """CLIP vision tower giving multi-layer patch tokens ``[B, P, out_dim]`` (no CLS token).

    Args:
        vision_config: a ``CLIPVisionConfig`` dict.
        feature_layers: indices into ``hidden_states`` (0 = embeddings, -1 = last layer).
        out_dim: projection width (the FRCE width).
        model: an already-loaded ``CLIPVisionModel`` (paper preset); built from the config if None.
    """

    def __init__(
        self,
        vision_config: dict[str, Any],
        feature_layers: list[int],
        out_dim: int,
        model: nn.Module | None = None,
    ) -> None:
        super().__init__()
        from transformers import CLIPVisionConfig, CLIPVisionModel

        cfg: Any = CLIPVisionConfig(**vision_config)
        self.clip: Any = model if model is not None else CLIPVisionModel(cfg)
        self.image_size = cfg.image_size
        self.grid = cfg.image_size // cfg.patch_size
        self.feature_layers = list(feature_layers)
        self.proj = nn.Linear(cfg.hidden_size * len(feature_layers), out_dim)

    @property
    def num_patches(self) -> int:
        """Number of patch tokens P (= grid²)."""
        return self.grid * self.grid

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``[-1, 1]`` images ``[B, 3, H, W]`` → patch tokens ``[B, P, out_dim]``."""
        pixels = clip_preprocess(images, self.image_size).to(next(self.clip.parameters()).dtype)
        out = self.clip(pixel_values=pixels, output_hidden_states=True)
        feats = [out.hidden_states[i][:, 1:] for i in self.feature_layers]  # drop CLS
        return self.proj(torch.cat(feats, dim=-1).to(self.proj.weight.dtype))


class TextEncoder(nn.Module):
    """CLIP text tower for instruction tokens and object phrases.

    Args:
        text_config: a ``CLIPTextConfig`` dict (its ``eos_token_id`` locates the pooled token).
        tokenizer: the tokenizer of these ids (the processor holds it; kept for reference).
        max_tokens: the processor pads/truncates instructions and phrases to this many tokens.
        model: an already-loaded ``CLIPTextModel`` (paper preset); built from the config if None.
        use_attention_mask: pass the padding mask to the encoder. Stable Diffusion and
            InstructPix2Pix encode the padded prompt *without* one (every padding position's
            feature then differs), so the paper preset sets it False; the returned ``mask`` is
            the padding mask either way (for attention over the tokens downstream).
    """

    def __init__(
        self,
        text_config: dict[str, Any],
        tokenizer: Any,
        max_tokens: int,
        model: nn.Module | None = None,
        use_attention_mask: bool = True,
    ) -> None:
        super().__init__()
        from transformers import CLIPTextConfig, CLIPTextModel

        cfg: Any = CLIPTextConfig(**text_config)
        self.clip: Any = model if model is not None else CLIPTextModel(cfg)
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.hidden_size = cfg.hidden_size
        self.use_attention_mask = use_attention_mask

    def tokenize(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids and padding mask ``[N, max_tokens]`` of ``texts``, padded as diffusers'
        ``encode_prompt`` pads (``padding="max_length"``). For set-up work only (e.g. the
        encoding of ``""``); batches are tokenised by the processor, outside ``forward``."""
        enc = self.tokenizer(
            texts,
            padding="max_length",
            truncation=True,
            max_length=self.max_tokens,
            return_tensors="pt",
        )
        return enc["input_ids"], enc["attention_mask"].bool()

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode token ids ``[N, L]`` (from the processor, padded to ``max_tokens``).

        Returns:
            ``tokens`` ``[N, L, hidden]``, ``mask`` ``[N, L]`` bool, ``pooled`` ``[N, hidden]``.
        """
        device = next(self.clip.parameters()).device
        if input_ids.shape[0] == 0:
            z = torch.zeros(0, input_ids.shape[1], self.hidden_size, device=device)
            return z, torch.zeros(0, input_ids.shape[1], dtype=torch.bool, device=device), z[:, 0]
        ids, mask = input_ids.to(device), attention_mask.to(device)
        out = self.clip(
            input_ids=ids, attention_mask=mask.long() if self.use_attention_mask else None
        )
        return out.last_hidden_state.float(), mask.bool(), out.pooler_output.float()
