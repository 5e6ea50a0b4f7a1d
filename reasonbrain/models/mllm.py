"""The MLLM: LLaVA with FRCE cues as soft tokens and r learnable ``[IMG_i]`` tokens (DESIGN §4.3).

Sequence fed to the language model, one row per edit (right-padded)::

    [BOS] <image>×n_img  <cue>×n_cue  instruction…  [rationale…]  [IMG_0] … [IMG_{r-1}]

- ``<image>`` positions receive LLaVA's projected vision features (``get_image_features``).
- ``<cue>`` positions receive the FRCE cues (R_V, R_T) through a linear projection; padded cues are
  masked out of attention.
- The ``[IMG_i]`` hidden states (last layer) are the visual guidance V. They are found **by token
  id**, never as "the last r positions" (a DESIGN §4 trap): each row must contain each id once.
- ``[IMG_i]`` embeddings live in their own trainable table (``new_embed``) with their own output
  rows (``new_head``), so the frozen vocabulary of a pretrained LLM never drifts.
- L_MLLM is next-token cross-entropy over exactly the rationale tokens (when enabled) and the
  ``[IMG_i]`` tokens: a position ``t`` is a target iff ``target_mask[t]``; it is predicted from the
  hidden state at ``t - 1``. Logits are computed only there.
- Pretrained LLMs are adapted with LoRA (peft) injected into the **language model only** — the
  vision tower has modules with the same names (``q_proj`` …), so targeting by name alone would
  silently adapt it too (a DESIGN §4 trap).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reasonbrain.models.encoders import clip_preprocess


@dataclass
class TokenBatch:
    """Token ids of a batch of MLLM sequences (right-padded)."""

    ids: torch.Tensor  # [B, T] long
    attention: torch.Tensor  # [B, T] bool (cue padding still True here; masked in embed)
    target_mask: torch.Tensor  # [B, T] bool — positions L_MLLM predicts
    cue_start: int
    n_cue: int


@dataclass
class MLLMOutput:
    """What the MLLM gives the rest of the model."""

    guidance: torch.Tensor  # V: [B, r, d_llm]
    loss: torch.Tensor | None  # L_MLLM (None when no target positions were requested)


class ReasoningMLLM(nn.Module):
    """LLaVA wrapper.

    Args:
        llava_config: a ``LlavaConfig`` dict (text + vision configs).
        tokenizer: the MLLM tokenizer (``[IMG_i]`` already added after the base vocabulary).
        base_vocab_size: ids below this use LLaVA's own embedding table.
        img_token_ids: ids of ``[IMG_0]`` … ``[IMG_{r-1}]`` (contiguous from ``base_vocab_size``).
        cue_dim: width of the FRCE cues (0 = no cues).
        max_instruction_tokens: instructions are truncated to this many tokens.
        max_rationale_tokens: rationales are truncated to (and decoded up to) this many tokens.
        lora_rank: > 0 freezes LLaVA and injects LoRA into its language model.
        lora_alpha: LoRA scaling numerator.
        lora_targets: module names LoRA wraps inside the language model.
        llava: an already-loaded ``LlavaForConditionalGeneration`` (paper preset).
        freeze: freeze every LLaVA weight (pretrained LLaVA without LoRA).
    """

    llava: Any

    def __init__(
        self,
        llava_config: dict[str, Any],
        tokenizer: Any,
        base_vocab_size: int,
        img_token_ids: list[int],
        cue_dim: int,
        *,
        max_instruction_tokens: int,
        max_rationale_tokens: int,
        lora_rank: int = 0,
        lora_alpha: int = 16,
        lora_targets: list[str] | None = None,
        llava: nn.Module | None = None,
        freeze: bool = False,
    ) -> None:
        super().__init__()
        from transformers import LlavaConfig, LlavaForConditionalGeneration

        cfg: Any = LlavaConfig(**llava_config)
        self.llava = llava if llava is not None else LlavaForConditionalGeneration(cfg)
        self.tokenizer = tokenizer
        self.base_vocab_size = base_vocab_size
        self.image_token_id = int(cfg.image_token_id)
        self.bos_id = int(tokenizer.bos_token_id)
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
        self.eos_id = int(tokenizer.eos_token_id)
        if img_token_ids != list(range(base_vocab_size, base_vocab_size + len(img_token_ids))):
            raise ValueError("[IMG] token ids must follow the base vocabulary contiguously")
        self.img_ids: torch.Tensor
        self.register_buffer("img_ids", torch.tensor(img_token_ids), persistent=False)
        self.max_instruction_tokens = max_instruction_tokens
        self.max_rationale_tokens = max_rationale_tokens
        d = cfg.text_config.hidden_size
        self.hidden_size = d
        vcfg = cfg.vision_config
        self.vision_size = int(vcfg.image_size)
        n_img = (vcfg.image_size // vcfg.patch_size) ** 2
        self.n_image_tokens = (
            n_img if cfg.vision_feature_select_strategy == "default" else n_img + 1
        )

        base_emb = self.llava.get_input_embeddings().weight
        r = len(img_token_ids)
        self.new_embed = nn.Embedding(r, d)
        self.new_head = nn.Linear(d, r, bias=False)
        with torch.no_grad():
            if base_emb.device.type != "meta":
                init = base_emb.float().mean(0, keepdim=True) + 0.02 * torch.randn(r, d)
                self.new_embed.weight.copy_(init)
        self.cue_proj = nn.Linear(cue_dim, d) if cue_dim > 0 else None

        if lora_rank > 0 or freeze:
            self.llava.requires_grad_(False)
        if lora_rank > 0:
            from peft import LoraConfig, inject_adapter_in_model

            lora = LoraConfig(
                r=lora_rank,
                lora_alpha=lora_alpha,
                lora_dropout=0.0,
                target_modules=lora_targets or ["q_proj", "k_proj", "v_proj", "o_proj"],
            )
            inject_adapter_in_model(lora, self.llava.model.language_model)
            for name, p in self.llava.model.language_model.named_parameters():
                p.requires_grad_("lora_" in name)

    # ---------------------------------------------------------------------------- tokens
    def build_tokens(
        self,
        instructions: list[str],
        n_cue: int,
        rationales: list[str] | None = None,
        *,
        with_img_tokens: bool = True,
        rationale_is_target: bool = True,
    ) -> TokenBatch:
        """Token ids for a batch (see the module docstring for the layout)."""
        tok = self.tokenizer
        instr = tok(instructions, add_special_tokens=False)["input_ids"]
        rat: list[list[int]] = [[] for _ in instructions]
        if rationales is not None:
            enc = tok(list(rationales), add_special_tokens=False)["input_ids"]
            rat = [list(x)[: self.max_rationale_tokens] for x in enc]
        img = self.img_ids.tolist() if with_img_tokens else []
        head = [self.bos_id] + [self.image_token_id] * self.n_image_tokens + [self.pad_id] * n_cue
        rows, targets = [], []
        for ins, ra in zip(instr, rat, strict=True):
            body = list(ins)[: self.max_instruction_tokens]
            rows.append(head + body + ra + img)
            t = [False] * (len(head) + len(body)) + [rationale_is_target] * len(ra)
            targets.append(t + [True] * len(img))
        length = max(len(r) for r in rows)
        ids = torch.full((len(rows), length), self.pad_id, dtype=torch.long)
        attention = torch.zeros(len(rows), length, dtype=torch.bool)
        target = torch.zeros(len(rows), length, dtype=torch.bool)
        for i, (row, t) in enumerate(zip(rows, targets, strict=True)):
            ids[i, : len(row)] = torch.tensor(row)
            attention[i, : len(row)] = True
            target[i, : len(row)] = torch.tensor(t)
        dev = self.img_ids.device
        return TokenBatch(
            ids.to(dev), attention.to(dev), target.to(dev), 1 + self.n_image_tokens, n_cue
        )

    # ---------------------------------------------------------------------------- embeds
    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        """LLaVA's projected vision features ``[B, n_img, d]`` for ``[-1, 1]`` images."""
        pixels = clip_preprocess(images, self.vision_size)
        pixels = pixels.to(self.llava.get_input_embeddings().weight.dtype)
        feats = self.llava.model.get_image_features(pixel_values=pixels).pooler_output
        return torch.stack(list(feats)) if isinstance(feats, (list, tuple)) else feats

    def embed(
        self,
        tokens: TokenBatch,
        image_feats: torch.Tensor,
        cues: torch.Tensor | None,
        cue_mask: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``inputs_embeds`` ``[B, T, d]`` and the 2-D attention mask for a token batch."""
        ids = tokens.ids
        is_new = ids >= self.base_vocab_size
        base = self.llava.get_input_embeddings()(ids.clamp(max=self.base_vocab_size - 1))
        new = self.new_embed((ids - self.base_vocab_size).clamp(min=0))
        x = torch.where(is_new[..., None], new.to(base.dtype), base)
        img_pos = ids == self.image_token_id
        x = x.masked_scatter(img_pos[..., None], image_feats.to(x.dtype))
        attention = tokens.attention.clone()
        if tokens.n_cue:
            if cues is None or cue_mask is None or self.cue_proj is None:
                raise ValueError("cue slots requested but no cues given")
            s, n = tokens.cue_start, tokens.n_cue
            x = torch.cat([x[:, :s], self.cue_proj(cues).to(x.dtype), x[:, s + n :]], dim=1)
            attention[:, s : s + n] = cue_mask
        return x, attention

    def hidden_states(self, embeds: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        """Last-layer hidden states ``[B, T, d]`` of the language model."""
        out = self.llava.model.language_model(
            inputs_embeds=embeds, attention_mask=attention.long(), use_cache=False
        )
        return out.last_hidden_state

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """Joint-vocabulary logits (base rows + ``[IMG_i]`` rows) for hidden states ``h``."""
        base = self.llava.lm_head(h)[..., : self.base_vocab_size]  # drop padded table rows
        return torch.cat([base, self.new_head(h).to(base.dtype)], dim=-1)

    def gather_img_states(self, ids: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """Hidden states at the ``[IMG_i]`` tokens, found by id: ``[B, r, d]``.

        Raises:
            ValueError: a row does not contain every ``[IMG_i]`` exactly once.
        """
        hits = ids[:, :, None] == self.img_ids[None, None, :]  # [B, T, r]
        counts = hits.sum(1)
        if not bool((counts == 1).all()):
            raise ValueError("every row must contain each [IMG_i] token exactly once")
        pos = hits.float().argmax(1)  # [B, r]
        return h.gather(1, pos[..., None].expand(-1, -1, h.shape[-1]))

    def mllm_loss(self, tokens: TokenBatch, h: torch.Tensor) -> torch.Tensor:
        """Next-token cross-entropy over exactly the ``target_mask`` positions."""
        target = tokens.target_mask.clone()
        target[:, 0] = False
        b_idx, t_idx = target.nonzero(as_tuple=True)
        logits = self.logits(h[b_idx, t_idx - 1]).float()
        return F.cross_entropy(logits, tokens.ids[b_idx, t_idx])

    # ---------------------------------------------------------------------------- forward
    def forward(
        self,
        images: torch.Tensor,
        instructions: list[str],
        cues: torch.Tensor | None,
        cue_mask: torch.Tensor | None,
        rationales: list[str] | None = None,
    ) -> MLLMOutput:
        """Teacher-forced pass: V and L_MLLM (over the rationale, if given, and ``[IMG_i]``)."""
        n_cue = 0 if cues is None else cues.shape[1]
        tokens = self.build_tokens(instructions, n_cue, rationales)
        embeds, attention = self.embed(tokens, self.image_features(images), cues, cue_mask)
        h = self.hidden_states(embeds, attention)
        return MLLMOutput(self.gather_img_states(tokens.ids, h), self.mllm_loss(tokens, h))

    @torch.no_grad()
    def reason(
        self,
        images: torch.Tensor,
        instructions: list[str],
        cues: torch.Tensor | None,
        cue_mask: torch.Tensor | None,
        decode_rationale: bool,
    ) -> tuple[torch.Tensor, list[str]]:
        """Inference: greedily decode a rationale (optional), then append ``[IMG_i]`` → V.

        Decoding stops for a row when it predicts ``[IMG_0]`` or ``[EOS]``, or after
        ``max_rationale_tokens``. Sequences are re-encoded each step (no KV cache): rationales
        are short, and this keeps one code path for every row length.
        """
        n_cue = 0 if cues is None else cues.shape[1]
        feats = self.image_features(images)
        generated: list[list[int]] = [[] for _ in instructions]
        if decode_rationale and self.max_rationale_tokens > 0:
            banned = torch.zeros(self.base_vocab_size + len(self.img_ids), dtype=torch.bool)
            banned[self.base_vocab_size + 1 :] = True  # only [IMG_0] may end a rationale
            special = {self.pad_id, self.bos_id, self.image_token_id}
            special |= set(getattr(self.tokenizer, "all_special_ids", []))
            for s in special - {self.eos_id}:
                if 0 <= s < self.base_vocab_size:
                    banned[s] = True
            banned = banned.to(feats.device)
            done = [False] * len(instructions)
            for _ in range(self.max_rationale_tokens):
                tokens = self._tokens_with_ids(instructions, n_cue, generated)
                embeds, attention = self.embed(tokens, feats, cues, cue_mask)
                h = self.hidden_states(embeds, attention)
                last = tokens.attention.sum(1) - 1  # last real token of each row
                logits = self.logits(h[torch.arange(h.shape[0]), last]).float()
                nxt = logits.masked_fill(banned, float("-inf")).argmax(-1).tolist()
                for i, t in enumerate(nxt):
                    if done[i]:
                        continue
                    if t in (int(self.img_ids[0]), self.eos_id):
                        done[i] = True
                    else:
                        generated[i].append(t)
                if all(done):
                    break
        tokens = self._tokens_with_ids(instructions, n_cue, generated, with_img_tokens=True)
        embeds, attention = self.embed(tokens, feats, cues, cue_mask)
        h = self.hidden_states(embeds, attention)
        rationales = [self.tokenizer.decode(g, skip_special_tokens=True).strip() for g in generated]
        return self.gather_img_states(tokens.ids, h), rationales

    def _tokens_with_ids(
        self,
        instructions: list[str],
        n_cue: int,
        rationale_ids: list[list[int]],
        *,
        with_img_tokens: bool = False,
    ) -> TokenBatch:
        """Like :meth:`build_tokens` but with already-tokenised rationales."""
        base = self.build_tokens(instructions, n_cue, None, with_img_tokens=False)
        lengths = base.attention.sum(1).tolist()
        img = self.img_ids.tolist() if with_img_tokens else []
        rows = [
            base.ids[i, : lengths[i]].tolist() + list(rationale_ids[i]) + img
            for i in range(len(instructions))
        ]
        length = max(len(r) for r in rows)
        ids = torch.full((len(rows), length), self.pad_id, dtype=torch.long)
        attention = torch.zeros(len(rows), length, dtype=torch.bool)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
            attention[i, : len(row)] = True
        dev = self.img_ids.device
        return TokenBatch(
            ids.to(dev),
            attention.to(dev),
            torch.zeros_like(attention).to(dev),
            base.cue_start,
            n_cue,
        )
