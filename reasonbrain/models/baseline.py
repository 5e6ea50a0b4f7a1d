"""The ``ip2p`` baseline: InstructPix2Pix (Brooks et al. 2023) on the same diffusion backbone.

The UNet is conditioned on the CLIP text encoder's token features of the instruction alone (no
MLLM, no FRCE, no CME), padded to a fixed length so that a sample's conditioning never depends on
the rest of its batch. Everything else — codec, scheduler, conditioning dropout, guidance — is the
shared :class:`~reasonbrain.models.base.EditModel` machinery, so comparisons isolate reasoning.

**ip2p + grounding cue** (``model.kind: ip2p`` with ``model.ip2p_spatial_cue: true``, tiny
preset): the fair baseline for ReasonBrain's grounding cue (an addition of ours, see
:mod:`reasonbrain.models.grounding`). The same :class:`~reasonbrain.models.grounding.GroundingHead`
scores the patch tokens of an image encoder (the same multi-layer CLIP tower and projection as
ReasonBrain's E_I) against the pooled CLIP tokens of the instruction's object phrases (the same
extractor, through the processor), its map is the same extra UNet input channel, and it is
trained with the same mask BCE — but there is no reasoning path: no FRCE, no ID controller, no
MLLM, no CME, and the UNet's cross-attention still reads the instruction tokens alone. The gap
between this baseline and ReasonBrain is what the reasoning path adds; the gap to plain ``ip2p``
is what the cue adds to a text-only editor.

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
from reasonbrain.models.encoders import ImageEncoder, TextEncoder
from reasonbrain.models.grounding import GroundingHead
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
        self.processor = ReasonBrainProcessor.from_model_config(
            config, text_tokenizer, text_tokenizer
        )
        self.text_encoder = TextEncoder(
            config.text,
            text_tokenizer,
            config.max_text_tokens,
            model=(pretrained or {}).get("clip_text"),
            use_attention_mask=config.text_attention_mask,
        )
        # the grounding cue (config.spatial_cue): ReasonBrain's E_I, phrase projection and head
        self.image_encoder: ImageEncoder | None = None
        self.phrase_proj: nn.Linear | None = None
        self.grounding: GroundingHead | None = None
        if config.spatial_cue:
            self.image_encoder = ImageEncoder(
                config.vision, config.feature_layers, config.frce_dim, model=None
            )
            self.phrase_proj = nn.Linear(self.text_encoder.hidden_size, config.frce_dim)
            self.grounding = GroundingHead(config.frce_dim)

    def condition(
        self, src: torch.Tensor, inputs: dict[str, Any], *, inference: bool = False
    ) -> Conditioning:
        """Instruction token features ``[B, max_text_tokens, cond_dim]`` from the processor's
        ``text_input_ids`` / ``text_attention_mask`` (and, with the grounding cue, the grounding
        logits of the object phrases over the image's patch tokens)."""
        tokens, _, _ = self.text_encoder(inputs["text_input_ids"], inputs["text_attention_mask"])
        rationales = ["" for _ in range(tokens.shape[0])]
        if self.grounding is None:
            return Conditioning(tokens, None, rationales)
        assert self.image_encoder is not None and self.phrase_proj is not None
        patches = self.image_encoder(src.to(self.device))
        present = inputs["object_mask"].to(self.device).bool()
        ids = inputs["object_input_ids"].to(self.device)[present]
        attention = inputs["object_attention_mask"].to(self.device)[present]
        _, _, pooled = self.text_encoder(ids, attention)  # one pooled E_T token per phrase
        proj = self.phrase_proj(pooled)
        phrases = proj.new_zeros(*present.shape, proj.shape[-1])
        phrases[present] = proj
        logits = self.grounding(patches, phrases, present)
        return Conditioning(tokens, None, rationales, logits, present.any(dim=1))

    def null_condition(self, batch_size: int) -> torch.Tensor:
        """The learned null sequence, or (``null_text="empty_prompt"``) the encoding of ``""``."""
        if self.config.null_text == "empty_prompt":
            tokens, _, _ = self.text_encoder(*self.text_encoder.tokenize([""]))
            return tokens.expand(batch_size, -1, -1)
        return super().null_condition(batch_size)
