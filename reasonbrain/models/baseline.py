"""The ``ip2p`` baseline: InstructPix2Pix (Brooks et al. 2023) on the same diffusion backbone.

The UNet is conditioned on the CLIP text encoder's token features of the instruction alone (no
MLLM, no FRCE, no CME), padded to a fixed length so that a sample's conditioning never depends on
the rest of its batch. Everything else — codec, scheduler, conditioning dropout, guidance — is the
shared :class:`~reasonbrain.models.base.EditModel` machinery, so comparisons isolate reasoning.

In the paper preset it is InstructPix2Pix exactly (``tests/model/test_ip2p_equivalence.py`` checks
it against diffusers' ``StableDiffusionInstructPix2PixPipeline``): the token features go to the
UNet as they are — the text encoder's width must be the UNet's cross-attention width (no
projection is invented) —, encoded without an attention mask, the unconditional branch is the
encoding of ``""`` and the source latent is unscaled (:mod:`reasonbrain.models.diffusion`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from reasonbrain.models.base import Conditioning, EditModel
from reasonbrain.models.config import ReasonBrainConfig
from reasonbrain.models.diffusion import DiffusionBackbone
from reasonbrain.models.encoders import TextEncoder
from reasonbrain.models.processor import ReasonBrainProcessor


class InstructPix2PixModel(EditModel):
    """Text-only conditioning. Build it with ``build_model(params, kind="ip2p")``.

    Args:
        config: architecture (``kind="ip2p"``).
        text_tokenizer: tokenizer of the CLIP text encoder.
        diffusion: the diffusion backbone.
        pretrained: ``{"clip_text": CLIPTextModel}`` when loaded from weights.
    """

    def __init__(
        self,
        config: ReasonBrainConfig,
        text_tokenizer: Any,
        diffusion: DiffusionBackbone,
        pretrained: dict[str, nn.Module] | None = None,
    ) -> None:
        config.check()  # the text width is the UNet's cross-attention width
        super().__init__(config, diffusion, config.max_text_tokens)
        self.tokenizer = text_tokenizer
        self.text_tokenizer = text_tokenizer
        self.processor = ReasonBrainProcessor.from_model_config(config, text_tokenizer, text_tokenizer)
        self.text_encoder = TextEncoder(
            config.text,
            text_tokenizer,
            config.max_text_tokens,
            model=(pretrained or {}).get("clip_text"),
            use_attention_mask=config.text_attention_mask,
        )

    def condition(
        self, src: torch.Tensor, inputs: dict[str, Any], *, inference: bool = False
    ) -> Conditioning:
        """Instruction token features ``[B, max_text_tokens, cond_dim]`` from the processor's
        ``text_input_ids`` / ``text_attention_mask``."""
        tokens, _, _ = self.text_encoder(inputs["text_input_ids"], inputs["text_attention_mask"])
        return Conditioning(tokens, None, ["" for _ in range(tokens.shape[0])])

    def null_condition(self, batch_size: int) -> torch.Tensor:
        """The learned null sequence, or (``null_text="empty_prompt"``) the encoding of ``""``."""
        if self.config.null_text == "empty_prompt":
            tokens, _, _ = self.text_encoder(*self.text_encoder.tokenize([""]))
            return tokens.expand(batch_size, -1, -1)
        return super().null_condition(batch_size)
