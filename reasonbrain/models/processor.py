"""ReasonBrainProcessor: text and images → the tensors the model's ``forward`` takes.

The transformers/diffusers convention (``LlavaProcessor``, the IP2P training script's dataset
transform): everything that is not a tensor operation happens here, once per sample and outside the
DDP-wrapped forward — tokenisation for the MLLM and the CLIP text tower, object-phrase extraction
(:mod:`reasonbrain.models.objects`, the same in training and inference), truncation, padding,
attention masks, and image → pixel tensor. The training batches (``collate_edits(…,
processor=…)``) and the inference pipeline use the same instance, built from the model's config and
tokenizers and saved with the model (``processor_config.json`` + ``tokenizer/`` +
``text_tokenizer/``).

MLLM sequence (DESIGN §4.3)::

    input_ids = [BOS] <image>×n_img | pad … instruction [rationale] [IMG_0 … IMG_{r-1}]
                \\__ fixed prefix __/  \\__ body, LEFT-padded to the batch's longest __/

The model inserts its FRCE cue tokens between the prefix and the body. Padding sits *between* them
(masked out of attention; position ids skip it), so every row ends at the last column — what
batched incremental decoding with a KV cache needs — while the prefix stays at fixed positions.
Training rows carry the rationale (when the model uses one) and the ``[IMG_i]`` tokens, with
``target_mask`` marking what L_MLLM predicts; inference rows stop after the instruction (the model
decodes the rationale and appends ``[IMG_i]`` itself).

Batch keys (all tensors; only those the model uses are produced)::

    input_ids, attention_mask, target_mask      [B, T]   MLLM (reasonbrain)
    text_input_ids, text_attention_mask         [B, Lt]  CLIP tokens of the instruction
    object_input_ids, object_attention_mask     [B, M, Lt] CLIP tokens of each object phrase
    object_mask                                 [B, M]   which phrase slots are real
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from reasonbrain.models.objects import extract_objects

PROCESSOR_CONFIG = "processor_config.json"
TOKENIZER_DIR = "tokenizer"
TEXT_TOKENIZER_DIR = "text_tokenizer"


@dataclass(frozen=True)
class ProcessorConfig:
    """What the processor needs to know about its model (``processor_config.json``)."""

    kind: str
    image_size: int
    max_instruction_tokens: int
    max_rationale_tokens: int
    max_text_tokens: int
    max_objects: int
    use_rationale: bool
    #: which inputs the model reads
    mllm: bool
    text: bool
    objects: bool
    n_image_tokens: int = 0
    image_token_id: int = 0
    img_token_ids: list[int] = field(default_factory=list)
    extractor: str = "pattern-np/1"

    @classmethod
    def from_model_config(cls, cfg: Any) -> ProcessorConfig:
        """Derive it from a ``ReasonBrainConfig``."""
        rb = cfg.kind == "reasonbrain"
        n_img = 0
        image_token_id = 0
        if rb:
            from transformers import LlavaConfig

            # through LlavaConfig: a config saved by transformers may spell keys differently
            # (e.g. ``image_token_index``) or leave defaults out
            llava: Any = LlavaConfig(**cfg.llava)
            vision = llava.vision_config
            n_img = (int(vision.image_size) // int(vision.patch_size)) ** 2
            if llava.vision_feature_select_strategy != "default":
                n_img += 1
            image_token_id = int(llava.image_token_id)
        has_rt = rb and cfg.use_id_controller
        return cls(
            kind=cfg.kind,
            image_size=cfg.image_size,
            max_instruction_tokens=cfg.max_instruction_tokens,
            max_rationale_tokens=cfg.max_rationale_tokens,
            max_text_tokens=cfg.max_text_tokens,
            max_objects=cfg.max_objects,
            use_rationale=cfg.use_rationale,
            mllm=rb,
            text=(not rb) or (has_rt and cfg.use_cme),
            objects=has_rt or (cfg.kind == "ip2p" and cfg.spatial_cue),  # phrases to ground
            n_image_tokens=n_img,
            image_token_id=image_token_id,
            img_token_ids=list(range(cfg.base_vocab_size, cfg.base_vocab_size + cfg.num_img_tokens))
            if rb
            else [],
        )


@dataclass
class TextFeatures:
    """One sample's token ids, before padding (what a dataset can cache per record)."""

    instruction_ids: list[int]
    rationale_ids: list[int]
    text_ids: list[int]
    objects: list[str]
    object_ids: list[list[int]]


class ReasonBrainProcessor:
    """Tokenisers + object extractor + image preprocessing for one model.

    Args:
        config: see :class:`ProcessorConfig`.
        tokenizer: the MLLM tokenizer (``[IMG_i]`` added); unused by ``ip2p``.
        text_tokenizer: the CLIP text tokenizer.
    """

    def __init__(self, config: ProcessorConfig, tokenizer: Any, text_tokenizer: Any) -> None:
        self.config = config
        self.tokenizer = tokenizer
        self.text_tokenizer = text_tokenizer
        if config.mllm:
            self.bos_id = int(tokenizer.bos_token_id)
            pad = tokenizer.pad_token_id
            self.pad_id = int(pad if pad is not None else 0)
            self.prefix = [self.bos_id] + [config.image_token_id] * config.n_image_tokens
        else:
            self.bos_id = self.pad_id = 0
            self.prefix = []

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_model_config(
        cls, cfg: Any, tokenizer: Any, text_tokenizer: Any
    ) -> ReasonBrainProcessor:
        """The processor for a ``ReasonBrainConfig`` and its tokenizers."""
        return cls(ProcessorConfig.from_model_config(cfg), tokenizer, text_tokenizer)

    def save_pretrained(self, directory: str | Path) -> None:
        """Write ``processor_config.json`` and both tokenizers into ``directory``."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / PROCESSOR_CONFIG).write_text(
            json.dumps(asdict(self.config), indent=2, sort_keys=True), encoding="utf-8"
        )
        if self.tokenizer is not None:
            self.tokenizer.save_pretrained(str(d / TOKENIZER_DIR))
        self.text_tokenizer.save_pretrained(str(d / TEXT_TOKENIZER_DIR))

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> ReasonBrainProcessor:
        """Load a processor saved with the model. A model directory written before processors
        existed (no ``processor_config.json``) gets one derived from its ``config.json``.

        Raises:
            CheckpointError: the directory lacks its tokenizers or configs.
        """
        from transformers import PreTrainedTokenizerFast

        from reasonbrain.errors import CheckpointError

        d = Path(directory)

        def tok(sub: str) -> Any:
            if not (d / sub).is_dir():
                raise CheckpointError(f"{sub}/ missing", where=str(d), fix="re-save the model")
            return PreTrainedTokenizerFast.from_pretrained(str(d / sub))

        text_tokenizer = tok(TEXT_TOKENIZER_DIR)
        tokenizer = tok(TOKENIZER_DIR) if (d / TOKENIZER_DIR).is_dir() else text_tokenizer
        if (d / PROCESSOR_CONFIG).is_file():
            try:
                raw = json.loads((d / PROCESSOR_CONFIG).read_text(encoding="utf-8"))
                config = ProcessorConfig(**raw)
            except (json.JSONDecodeError, TypeError) as err:
                raise CheckpointError(
                    f"invalid processor config: {err}", where=str(d / PROCESSOR_CONFIG)
                ) from None
            return cls(config, tokenizer, text_tokenizer)
        from reasonbrain.models.checkpoint import load_config

        cfg, _ = load_config(d)
        return cls.from_model_config(cfg, tokenizer, text_tokenizer)

    @property
    def input_keys(self) -> list[str]:
        """The training-batch keys this processor adds (what the model's forward reads)."""
        keys = ["input_ids", "attention_mask", "target_mask"] if self.config.mllm else []
        if self.config.text:
            keys += ["text_input_ids", "text_attention_mask"]
        if self.config.objects:
            keys += ["object_input_ids", "object_attention_mask", "object_mask"]
        return keys

    # ------------------------------------------------------------------ per sample
    def encode(
        self, instruction: str, rationale: str | None = None, objects: Sequence[str] | None = None
    ) -> TextFeatures:
        """Tokenise one sample. ``objects`` overrides the extractor (callers that know them)."""
        c = self.config
        instr: list[int] = []
        rat: list[int] = []
        if c.mllm:
            instr = self._mllm_ids(instruction)[: c.max_instruction_tokens]
            if rationale and c.use_rationale:
                rat = self._mllm_ids(rationale)[: c.max_rationale_tokens]
        text = self._clip_ids(instruction) if c.text else []
        phrases: list[str] = []
        phrase_ids: list[list[int]] = []
        if c.objects:
            if objects is None:
                phrases = extract_objects(instruction, c.max_objects)
            else:
                phrases = [o.strip().lower() for o in objects if o.strip()][: c.max_objects]
            phrase_ids = [self._clip_ids(p) for p in phrases]
        return TextFeatures(instr, rat, text, phrases, phrase_ids)

    def _mllm_ids(self, text: str) -> list[int]:
        """MLLM token ids of user text; a literal ``<image>`` in it is dropped (the image tokens
        are the processor's to place)."""
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return [int(t) for t in ids if t != self.config.image_token_id]

    def _clip_ids(self, text: str) -> list[int]:
        enc = self.text_tokenizer(text, truncation=True, max_length=self.config.max_text_tokens)
        return list(enc["input_ids"])

    # ------------------------------------------------------------------ batches
    def pad(self, features: Sequence[TextFeatures], *, inference: bool = False) -> dict[str, Any]:
        """Pad a batch of :class:`TextFeatures` into the tensors of the module docstring.

        ``inference=True`` leaves out the rationale and the ``[IMG_i]`` tokens (the model decodes
        and appends them).
        """
        c = self.config
        b = len(features)
        out: dict[str, Any] = {}
        if c.mllm:
            img = [] if inference else list(c.img_token_ids)
            bodies, targets = [], []
            for f in features:
                rat = [] if inference else f.rationale_ids
                bodies.append(f.instruction_ids + rat + img)
                targets.append([False] * len(f.instruction_ids) + [True] * (len(rat) + len(img)))
            n = len(self.prefix)
            length = n + max(len(x) for x in bodies)
            ids = torch.full((b, length), self.pad_id, dtype=torch.long)
            attention = torch.zeros(b, length, dtype=torch.bool)
            target = torch.zeros(b, length, dtype=torch.bool)
            ids[:, :n] = torch.tensor(self.prefix, dtype=torch.long)
            attention[:, :n] = True
            for i, (body, t) in enumerate(zip(bodies, targets, strict=True)):
                if body:
                    ids[i, length - len(body) :] = torch.tensor(body, dtype=torch.long)
                    attention[i, length - len(body) :] = True
                    target[i, length - len(body) :] = torch.tensor(t)
            out.update(input_ids=ids, attention_mask=attention)
            if not inference:
                out["target_mask"] = target
        if c.text:
            out["text_input_ids"], out["text_attention_mask"] = self._pad_clip(
                [f.text_ids for f in features]
            )
        if c.objects:
            m = c.max_objects
            flat = [p for f in features for p in f.object_ids]
            ids, mask = self._pad_clip(flat)
            lt = ids.shape[1]
            obj_ids = torch.full((b, m, lt), self._clip_pad_id(), dtype=torch.long)
            obj_att = torch.zeros(b, m, lt, dtype=torch.bool)
            obj_mask = torch.zeros(b, m, dtype=torch.bool)
            k = 0
            for i, f in enumerate(features):
                n_obj = len(f.object_ids)
                obj_ids[i, :n_obj] = ids[k : k + n_obj]
                obj_att[i, :n_obj] = mask[k : k + n_obj]
                obj_mask[i, :n_obj] = True
                k += n_obj
            out.update(
                object_input_ids=obj_ids, object_attention_mask=obj_att, object_mask=obj_mask
            )
        return out

    def _clip_pad_id(self) -> int:
        pad = self.text_tokenizer.pad_token_id
        return int(pad if pad is not None else 0)

    def _pad_clip(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-pad CLIP token rows to ``max_text_tokens`` (the text tower's fixed length)."""
        lt = self.config.max_text_tokens
        ids = torch.full((len(rows), lt), self._clip_pad_id(), dtype=torch.long)
        mask = torch.zeros(len(rows), lt, dtype=torch.bool)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
            mask[i, : len(r)] = True
        return ids, mask

    def __call__(
        self,
        instructions: Sequence[str],
        rationales: Sequence[str] | None = None,
        *,
        objects: Sequence[Sequence[str]] | None = None,
        inference: bool = False,
    ) -> dict[str, Any]:
        """Tokenise and pad a batch of instructions (and rationales, for training)."""
        rats: Sequence[str | None] = (
            rationales if rationales is not None else [None] * len(instructions)
        )
        objs: Sequence[Sequence[str] | None] = (
            objects if objects is not None else [None] * len(instructions)
        )
        feats = [self.encode(t, r, o) for t, r, o in zip(instructions, rats, objs, strict=True)]
        return self.pad(feats, inference=inference)

    def collate_text(self, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Training tensors for dataset items (``instruction``/``target_caption`` fields, and
        ``text_features`` when a dataset cached them); used by ``collate_edits``."""
        feats = [
            it.get("text_features")
            or self.encode(it["instruction"], it.get("target_caption") or None)
            for it in items
        ]
        return self.pad(feats)

    # ------------------------------------------------------------------ images
    def preprocess_images(self, images: Sequence[Image.Image | torch.Tensor]) -> torch.Tensor:
        """Images (PIL, or ``[3, H, W]`` tensors in ``[-1, 1]``) → ``[B, 3, S, S]`` in ``[-1, 1]``
        at the model's working size (bicubic, as the dataset loader resizes)."""
        s = self.config.image_size
        out = []
        for image in images:
            if isinstance(image, torch.Tensor):
                x = image.float()
                if x.shape[-1] != s or x.shape[-2] != s:
                    x = torch.nn.functional.interpolate(x[None], size=(s, s), mode="bicubic")[0]
                out.append(x.clamp(-1, 1))
                continue
            rgb = image.convert("RGB")
            if rgb.size != (s, s):
                rgb = rgb.resize((s, s), Image.Resampling.BICUBIC)
            arr = np.asarray(rgb, dtype=np.uint8).copy()
            out.append(torch.from_numpy(arr).permute(2, 0, 1).float().div(127.5).sub(1.0))
        return torch.stack(out)

    def decode_rationales(self, ids: Sequence[Sequence[int]]) -> list[str]:
        """Token ids of decoded rationales → text."""
        if not self.config.mllm:
            return ["" for _ in ids]
        return [self.tokenizer.decode(list(r), skip_special_tokens=True).strip() for r in ids]
