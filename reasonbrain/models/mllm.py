"""The MLLM: LLaVA with FRCE cues as soft tokens and r learnable ``[IMG_i]`` tokens (DESIGN §4.3).

MLLMInput fed to the language model, one row per edit (tokens from
:class:`~reasonbrain.models.processor.ReasonBrainProcessor`; padding between cues and body)::

    [BOS] <image>×n_img  <cue>×n_cue  pad…  instruction…  [rationale…]  [IMG_0] … [IMG_{r-1}]

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
- Inference decodes the rationale greedily with a KV cache (:meth:`ReasoningMLLM.reason`): every
  row ends at the last column, so each step feeds one token per row.
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

    # ---------------------------------------------------------------------------- sequence
    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        """LLaVA's projected vision features ``[B, n_img, d]`` for ``[-1, 1]`` images."""
        pixels = clip_preprocess(images, self.vision_size)
        pixels = pixels.to(self.llava.get_input_embeddings().weight.dtype)
        feats = self.llava.model.get_image_features(pixel_values=pixels).pooler_output
        return torch.stack(list(feats)) if isinstance(feats, (list, tuple)) else feats

    @property
    def cue_start(self) -> int:
        """Where the FRCE cue tokens go: after ``[BOS]`` and the ``<image>`` tokens."""
        return 1 + self.n_image_tokens

    def embed_ids(self, ids: torch.Tensor) -> torch.Tensor:
        """Token embeddings ``[..., d]``: LLaVA's table for the base vocabulary, ``new_embed`` for
        the ``[IMG_i]`` tokens."""
        is_new = ids >= self.base_vocab_size
        base = self.llava.get_input_embeddings()(ids.clamp(max=self.base_vocab_size - 1))
        new = self.new_embed((ids - self.base_vocab_size).clamp(min=0))
        return torch.where(is_new[..., None], new.to(base.dtype), base)

    def assemble(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        image_feats: torch.Tensor,
        cues: torch.Tensor | None,
        cue_mask: torch.Tensor | None,
    ) -> MLLMInput:
        """The processor's token batch with vision features and cues: see :class:`MLLMInput`."""
        x = self.embed_ids(input_ids)
        img_pos = input_ids == self.image_token_id
        x = x.masked_scatter(img_pos[..., None], image_feats.to(x.dtype))
        attention = attention_mask.bool()
        real = attention
        ids = input_ids
        if cues is not None:
            if cue_mask is None or self.cue_proj is None:
                raise ValueError("cues given but the MLLM has no cue projection (or no cue mask)")
            s, (b, n) = self.cue_start, cues.shape[:2]
            ones = torch.ones(b, n, dtype=torch.bool, device=attention.device)
            x = torch.cat([x[:, :s], self.cue_proj(cues).to(x.dtype), x[:, s:]], dim=1)
            attention = torch.cat([attention[:, :s], cue_mask.bool(), attention[:, s:]], dim=1)
            real = torch.cat([real[:, :s], ones, real[:, s:]], dim=1)
            ids = torch.cat(
                [ids[:, :s], torch.full_like(ones, self.pad_id, dtype=ids.dtype), ids[:, s:]], 1
            )
        return MLLMInput(x, attention, real, ids)

    def hidden_states(
        self,
        embeds: torch.Tensor,
        attention: torch.Tensor,
        position_ids: torch.Tensor,
        cache: Any = None,
    ) -> torch.Tensor:
        """Last-layer hidden states ``[B, T, d]`` (``attention`` covers cached + new columns)."""
        out = self.llava.model.language_model(
            inputs_embeds=embeds,
            attention_mask=attention.long(),
            position_ids=position_ids,
            cache=cache,
            use_cache=cache is not None,
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

    def mllm_loss(
        self, ids: torch.Tensor, target: torch.Tensor, real: torch.Tensor, h: torch.Tensor
    ) -> torch.Tensor:
        """Next-token cross-entropy over exactly the ``target`` positions, each predicted from the
        hidden state of the previous *real* token (padding sits between prefix and body)."""
        t = ids.shape[1]
        arange = torch.arange(t, device=ids.device).expand_as(ids)
        last_real = torch.cummax(torch.where(real, arange, -1), dim=1).values
        prev = torch.cat([torch.full_like(last_real[:, :1], -1), last_real[:, :-1]], dim=1)
        target = target & (prev >= 0)
        b_idx, t_idx = target.nonzero(as_tuple=True)
        logits = self.logits(h[b_idx, prev[b_idx, t_idx]]).float()
        return F.cross_entropy(logits, ids[b_idx, t_idx])

    # ---------------------------------------------------------------------------- forward
    def forward(
        self,
        images: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        target_mask: torch.Tensor,
        cues: torch.Tensor | None,
        cue_mask: torch.Tensor | None,
    ) -> MLLMOutput:
        """Teacher-forced pass over a processor batch: V and L_MLLM (rationale + ``[IMG_i]``)."""
        seq = self.assemble(input_ids, attention_mask, self.image_features(images), cues, cue_mask)
        h = self.hidden_states(seq.embeds, seq.attention, seq.position_ids)
        target = target_mask.bool()
        if cues is not None:
            s, n = self.cue_start, cues.shape[1]
            gap = torch.zeros(target.shape[0], n, dtype=torch.bool, device=target.device)
            target = torch.cat([target[:, :s], gap, target[:, s:]], dim=1)
        loss = self.mllm_loss(seq.ids, target, seq.real, h)
        return MLLMOutput(self.gather_img_states(seq.ids, h), loss)

    def _banned(self, device: torch.device) -> torch.Tensor:
        """Tokens a rationale may not contain (only ``[IMG_0]`` or ``[EOS]`` may end it)."""
        banned = torch.zeros(self.base_vocab_size + len(self.img_ids), dtype=torch.bool)
        banned[self.base_vocab_size + 1 :] = True
        special = {self.pad_id, self.bos_id, self.image_token_id}
        special |= set(getattr(self.tokenizer, "all_special_ids", []))
        for s in special - {self.eos_id}:
            if 0 <= s < self.base_vocab_size:
                banned[s] = True
        return banned.to(device)

    @torch.no_grad()
    def reason(
        self,
        images: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        cues: torch.Tensor | None,
        cue_mask: torch.Tensor | None,
        decode_rationale: bool,
        *,
        use_cache: bool = True,
    ) -> tuple[torch.Tensor, list[list[int]]]:
        """Inference: greedily decode a rationale (optional), then append ``[IMG_i]`` → V.

        ``input_ids`` is a processor batch made with ``inference=True`` (prompt only). Decoding
        stops for a row when it predicts ``[IMG_0]`` or ``[EOS]``, or after
        ``max_rationale_tokens``. With ``use_cache`` (the default) the prompt is encoded once and
        each step feeds one token per row against the KV cache (rows end at the same column, so
        one step serves the whole batch; a finished row feeds a masked pad). ``use_cache=False``
        re-encodes every row from scratch at every step — the reference implementation (the
        pre-cache algorithm), kept as the oracle the cached path is tested against.

        Returns:
            V ``[B, r, d]`` and the decoded rationale token ids of each row.
        """
        seq = self.assemble(input_ids, attention_mask, self.image_features(images), cues, cue_mask)
        steps = self.max_rationale_tokens if decode_rationale else 0
        if not use_cache:
            return self._reason_uncached(seq, steps)
        b, r = seq.embeds.shape[0], len(self.img_ids)
        dev = seq.embeds.device
        img = self.img_ids[None].expand(b, -1)
        next_pos = seq.real.long().sum(1)  # position id of each row's next token
        generated = torch.full((b, max(steps, 1)), self.pad_id, dtype=torch.long, device=dev)
        n_generated = torch.zeros(b, dtype=torch.long, device=dev)
        pending = torch.full((b, 0), self.pad_id, dtype=torch.long, device=dev)
        pending_mask = torch.zeros(b, 0, dtype=torch.bool, device=dev)
        cache: Any = None
        attention = seq.attention
        if steps > 0:
            from transformers import DynamicCache

            cache = DynamicCache(config=self.llava.config.text_config)
            banned = self._banned(dev)
            stop_ids = torch.tensor([int(self.img_ids[0]), self.eos_id], device=dev)
            done = torch.zeros(b, dtype=torch.bool, device=dev)
            h = self.hidden_states(seq.embeds, attention, seq.position_ids, cache)
            for step in range(steps):
                if step:
                    attention = torch.cat([attention, pending_mask], dim=1)
                    h = self.hidden_states(
                        self.embed_ids(pending), attention, next_pos[:, None], cache
                    )
                    next_pos = next_pos + pending_mask[:, 0].long()
                logits = self.logits(h[:, -1]).float().masked_fill(banned, float("-inf"))
                choice = logits.argmax(-1)
                stop = torch.isin(choice, stop_ids)
                take = ~done & ~stop
                done = done | stop
                generated[:, step] = torch.where(take, choice, self.pad_id)
                n_generated += take.long()
                pending, pending_mask = (
                    torch.where(take, choice, self.pad_id)[:, None],
                    take[:, None],
                )
                if bool(done.all()):
                    break
        # the last decoded token (if any row took one) and the [IMG_i] tokens, in one pass
        chunk = torch.cat([pending, img], dim=1)
        attention = torch.cat([attention, pending_mask, torch.ones_like(img, dtype=torch.bool)], 1)
        offsets = torch.arange(r, device=dev)[None] + pending_mask.long().sum(1, keepdim=True)
        position_ids = torch.cat(
            [next_pos[:, None].expand(-1, pending.shape[1]), next_pos[:, None] + offsets], 1
        )
        if cache is None:  # no rationale: prompt and [IMG_i] in one pass, no cache needed
            embeds = torch.cat([seq.embeds, self.embed_ids(chunk)], dim=1)
            h = self.hidden_states(
                embeds, attention, torch.cat([seq.position_ids, position_ids], 1)
            )
        else:
            h = self.hidden_states(self.embed_ids(chunk), attention, position_ids, cache)
        guidance = self.gather_img_states(chunk, h[:, -chunk.shape[1] :])
        rows = [generated[i, : int(n)].tolist() for i, n in enumerate(n_generated)]
        return guidance, rows

    def _reason_uncached(self, seq: MLLMInput, steps: int) -> tuple[torch.Tensor, list[list[int]]]:
        """The reference decoder: every step re-encodes each row (its real tokens, right-padded,
        positions 0…n-1) and reads the logits at its last token."""
        b = seq.embeds.shape[0]
        prompts = [seq.embeds[i][seq.real[i]] for i in range(b)]
        prompt_att = [seq.attention[i][seq.real[i]] for i in range(b)]
        generated: list[list[int]] = [[] for _ in range(b)]
        banned = self._banned(seq.embeds.device)

        def run(extra: list[list[int]]) -> tuple[torch.Tensor, list[int], torch.Tensor]:
            embeds, atts, ids = [], [], []
            for i in range(b):
                tail = torch.tensor(extra[i], dtype=torch.long, device=seq.embeds.device)
                embeds.append(torch.cat([prompts[i], self.embed_ids(tail)]))
                atts.append(torch.cat([prompt_att[i], torch.ones_like(tail, dtype=torch.bool)]))
                ids.append(
                    torch.cat(
                        [torch.full((len(prompts[i]),), self.pad_id, device=tail.device), tail]
                    )
                )
            lengths = [len(e) for e in embeds]
            t = max(lengths)
            x = seq.embeds.new_zeros(b, t, seq.embeds.shape[-1])
            att = torch.zeros(b, t, dtype=torch.bool, device=x.device)
            id_pad = torch.full((b, t), self.pad_id, dtype=torch.long, device=x.device)
            for i in range(b):
                x[i, : lengths[i]], att[i, : lengths[i]], id_pad[i, : lengths[i]] = (
                    embeds[i],
                    atts[i],
                    ids[i],
                )
            pos = torch.arange(t, device=x.device)[None].expand(b, -1)
            return self.hidden_states(x, att, pos), lengths, id_pad

        done = [False] * b
        for _ in range(steps):
            h, lengths, _ = run(generated)
            last = torch.tensor(lengths, device=h.device) - 1
            logits = (
                self.logits(h[torch.arange(b), last]).float().masked_fill(banned, float("-inf"))
            )
            for i, t in enumerate(logits.argmax(-1).tolist()):
                if done[i]:
                    continue
                if t in (int(self.img_ids[0]), self.eos_id):
                    done[i] = True
                else:
                    generated[i].append(t)
            if all(done):
                break
        img = self.img_ids.tolist()
        h, _, ids = run([g + img for g in generated])
        return self.gather_img_states(ids, h), generated


@dataclass
class MLLMInput:
    """An assembled MLLM input: embeddings and masks after inserting vision features and cues."""

    embeds: torch.Tensor  # [B, T, d]
    attention: torch.Tensor  # [B, T] bool — what may be attended to (cue padding masked)
    real: torch.Tensor  # [B, T] bool — positions that exist (every cue slot; no text padding)
    ids: torch.Tensor  # [B, T] long — token ids (pad at cue slots), for [IMG_i] lookup

    @property
    def position_ids(self) -> torch.Tensor:
        """Rotary positions that skip the padding: the same as for the unpadded row."""
        return (self.real.long().cumsum(1) - 1).clamp(min=0)
