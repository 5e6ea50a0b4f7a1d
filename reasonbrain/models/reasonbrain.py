"""ReasonBrainModel: FRCE → MLLM → QFormer → CME → diffusion (DESIGN §4; paper Fig. 2).

The reasoning path (:meth:`ReasonBrainModel.condition`) in order:

1. E_I: multi-layer CLIP patch tokens of the source image (if any visual cue is on).
2. Region proposer → masks; VRCB → R_V = [patch branch ; region branch] with type embeddings.
3. ID controller: object phrases (extracted from the instruction by the processor, in training
   and inference alike; E_T pooled) attend to R_V → R_T.
4. MLLM: image + instruction + [R_V; R_T] as soft tokens (+ rationale) + ``[IMG_i]`` → V, L_MLLM
   (at inference the rationale is decoded greedily with a KV cache).
5. QFormer: V → V̂ (N tokens, ``cond_dim``).
6. CME: visual branch (patch tokens ↔ R_V, reading V̂) → R̄_V; text branch (instruction
   tokens ↔ R_T, reading V̂) → R̄_T.
7. Conditioning for the UNet: [V̂ ; R̄_V ; R̄_T].
8. (tiny preset, ``spatial_cue``; an extension, not in the paper) the grounding head scores the
   patch tokens against the object-phrase tokens → a map of where the named object is, one extra
   UNet input channel (:mod:`reasonbrain.models.grounding`).

Ablations remove parts: no patch/region branch → no R_V (and no visual CME branch); no ID
controller → no R_T (and no text CME branch); no CME → conditioning is V̂ alone. All off is the
MLLM → QFormer → diffusion baseline (MGIE/SmartEdit).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from reasonbrain.models.base import Conditioning, EditModel
from reasonbrain.models.cme import CMEBranch
from reasonbrain.models.config import ReasonBrainConfig
from reasonbrain.models.diffusion import DiffusionBackbone
from reasonbrain.models.encoders import ImageEncoder, TextEncoder
from reasonbrain.models.frce import VisualCueBranch
from reasonbrain.models.grounding import GroundingHead
from reasonbrain.models.id_controller import IDController
from reasonbrain.models.mllm import ReasoningMLLM
from reasonbrain.models.processor import ReasonBrainProcessor
from reasonbrain.models.qformer import QFormer
from reasonbrain.models.region_proposer import ColorComponentsProposer, RegionProposer


class ReasonBrainModel(EditModel):
    """The full model. Build it with :func:`reasonbrain.models.presets.build_model`.

    Args:
        config: architecture (checked for width mismatches first).
        tokenizer: MLLM tokenizer with ``[IMG_i]`` added.
        text_tokenizer: tokenizer of the CLIP text encoder.
        diffusion: the diffusion backbone.
        pretrained: already-loaded sub-models by name (``llava``, ``clip_vision``, ``clip_text``,
            ``sam``) for the paper preset; missing ones are built from config.
        proposer: region proposer override (default from the config).
    """

    def __init__(
        self,
        config: ReasonBrainConfig,
        tokenizer: Any,
        text_tokenizer: Any,
        diffusion: DiffusionBackbone,
        pretrained: dict[str, nn.Module] | None = None,
        proposer: RegionProposer | None = None,
    ) -> None:
        config.check()
        c = config
        pre = pretrained or {}
        self.has_rv = c.has_visual_cues
        self.has_rt = c.use_id_controller
        n_visual_cme = c.cme_queries if (c.use_cme and self.has_rv) else 0
        n_text_cme = c.cme_queries if (c.use_cme and self.has_rt) else 0
        super().__init__(c, diffusion, c.num_queries + n_visual_cme + n_text_cme)
        self.tokenizer = tokenizer
        self.text_tokenizer = text_tokenizer
        self.processor = ReasonBrainProcessor.from_model_config(c, tokenizer, text_tokenizer)

        self.image_encoder: ImageEncoder | None = None
        self.visual_branch: VisualCueBranch | None = None
        self.proposer: Any = None
        if self.has_rv:
            self.image_encoder = ImageEncoder(
                c.vision, c.feature_layers, c.frce_dim, model=pre.get("clip_vision")
            )
            self.visual_branch = VisualCueBranch(
                c.frce_dim,
                c.frce_heads,
                self.image_encoder.grid,
                use_patch_branch=c.use_patch_branch,
                use_region_branch=c.use_region_branch,
                patch_layers=c.patch_layers,
                region_layers=c.region_layers,
            )
            if c.use_region_branch:
                self.proposer = proposer or ColorComponentsProposer(
                    c.max_regions, min_area=c.proposer_min_area
                )
        self.text_encoder: TextEncoder | None = None
        self.phrase_proj: nn.Linear | None = None
        self.id_controller: IDController | None = None
        if self.has_rt:
            self.text_encoder = TextEncoder(
                c.text, text_tokenizer, c.max_text_tokens, model=pre.get("clip_text")
            )
            self.phrase_proj = nn.Linear(self.text_encoder.hidden_size, c.frce_dim)
            self.id_controller = IDController(c.frce_dim, c.frce_heads, c.id_layers)
        self.grounding: GroundingHead | None = None
        if c.spatial_cue:
            self.grounding = GroundingHead(c.frce_dim)

        r = c.num_img_tokens
        img_ids = list(range(c.base_vocab_size, c.base_vocab_size + r))
        self.mllm = ReasoningMLLM(
            c.llava,
            tokenizer,
            c.base_vocab_size,
            img_ids,
            c.frce_dim if (self.has_rv or self.has_rt) else 0,
            max_instruction_tokens=c.max_instruction_tokens,
            max_rationale_tokens=c.max_rationale_tokens,
            lora_rank=c.lora_rank,
            lora_alpha=c.lora_alpha,
            lora_targets=c.lora_targets,
            llava=pre.get("llava"),
            freeze="llava" in pre,
        )
        self.qformer = QFormer(
            c.llm_dim, c.qformer_dim, c.cond_dim, c.qformer_layers, c.qformer_heads, c.num_queries
        )
        self.cme_visual: CMEBranch | None = None
        self.cme_text: CMEBranch | None = None
        if n_visual_cme:
            self.cme_visual = CMEBranch(
                c.cond_dim, c.frce_dim, c.frce_dim, c.cme_heads, c.cme_blocks, c.cme_queries
            )
        if n_text_cme:
            assert self.text_encoder is not None
            self.cme_text = CMEBranch(
                c.cond_dim,
                self.text_encoder.hidden_size,
                c.frce_dim,
                c.cme_heads,
                c.cme_blocks,
                c.cme_queries,
            )

    # ---------------------------------------------------------------------- FRCE
    def visual_cues(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Patch tokens ``[B, P, D]`` and R_V ``[B, L_V, D]`` with its mask."""
        assert self.image_encoder is not None and self.visual_branch is not None
        patches = self.image_encoder(src)
        masks = valid = None
        if self.proposer is not None:
            masks, valid = self.proposer.propose(src)
        r_v, r_v_mask = self.visual_branch(patches, masks, valid)
        return patches, r_v, r_v_mask

    def phrase_tokens(
        self, ids: torch.Tensor, attention: torch.Tensor, present: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One pooled E_T token per object phrase: ``[B, M, D]`` and mask ``[B, M]``.

        ``ids``/``attention`` are the processor's ``object_input_ids``/``object_attention_mask``
        ``[B, M, L]``; only the ``present`` slots ``[B, M]`` are encoded.
        """
        assert self.text_encoder is not None and self.phrase_proj is not None
        dev = self.device
        present = present.to(dev).bool()
        _, _, pooled = self.text_encoder(ids.to(dev)[present], attention.to(dev)[present])
        proj = self.phrase_proj(pooled)
        out = proj.new_zeros(*present.shape, proj.shape[-1])
        out[present] = proj
        return out, present

    # ---------------------------------------------------------------------- condition
    def condition(
        self, src: torch.Tensor, inputs: dict[str, Any], *, inference: bool = False
    ) -> Conditioning:
        """The reasoning path (see the module docstring) on a processor batch ``inputs``.

        Training (``inference=False``) teacher-forces the rationale and ``[IMG_i]`` tokens the
        processor appended; inference decodes the rationale (KV cache) and appends ``[IMG_i]``.
        """
        c = self.config
        dev = self.device
        patches = r_v = r_v_mask = r_t = r_t_mask = None
        cues: list[torch.Tensor] = []
        cue_masks: list[torch.Tensor] = []
        if self.has_rv:
            patches, r_v, r_v_mask = self.visual_cues(src)
            cues.append(r_v)
            cue_masks.append(r_v_mask)
        ground_logits = ground_valid = None
        if self.has_rt:
            assert self.id_controller is not None and r_v is not None and r_v_mask is not None
            phrases, phrase_mask = self.phrase_tokens(
                inputs["object_input_ids"], inputs["object_attention_mask"], inputs["object_mask"]
            )
            r_t, r_t_mask = self.id_controller(phrases, phrase_mask, r_v, r_v_mask)
            cues.append(r_t)
            cue_masks.append(r_t_mask)
            if self.grounding is not None:
                assert patches is not None
                ground_logits = self.grounding(patches, phrases, phrase_mask)
                ground_valid = phrase_mask.any(dim=1)
        cue = torch.cat(cues, 1) if cues else None
        cue_mask = torch.cat(cue_masks, 1) if cue_masks else None

        ids = inputs["input_ids"].to(dev)
        attention = inputs["attention_mask"].to(dev)
        loss_mllm: torch.Tensor | None = None
        out_rationales: list[str] = []
        if inference:
            guidance, rationale_ids = self.mllm.reason(
                src, ids, attention, cue, cue_mask, decode_rationale=c.use_rationale
            )
            out_rationales = self.processor.decode_rationales(rationale_ids)
        else:
            target = inputs["target_mask"].to(dev)
            out = self.mllm(src, ids, attention, target, cue, cue_mask)
            guidance, loss_mllm = out.guidance, out.loss
        v_hat = self.qformer(guidance)

        parts = [v_hat]
        if self.cme_visual is not None:
            assert patches is not None and r_v is not None and r_v_mask is not None
            ones = torch.ones(patches.shape[:2], dtype=torch.bool, device=patches.device)
            parts.append(self.cme_visual(patches, ones, v_hat, r_v, r_v_mask))
        if self.cme_text is not None:
            assert self.text_encoder is not None and r_t is not None and r_t_mask is not None
            tokens, token_mask, _ = self.text_encoder(
                inputs["text_input_ids"], inputs["text_attention_mask"]
            )
            parts.append(self.cme_text(tokens, token_mask, v_hat, r_t, r_t_mask))
        return Conditioning(
            torch.cat(parts, dim=1), loss_mllm, out_rationales, ground_logits, ground_valid
        )
