"""Tokenizers: a locally trained one for the tiny world, and the ``[IMG_i]`` special tokens.

The tiny preset downloads nothing, so its tokenizer is trained here with the ``tokenizers`` library
(BPE, lower-cased, whitespace/punctuation pre-split) on the training instructions, target captions
and object phrases, and wrapped as a ``transformers.PreTrainedTokenizerFast`` so that the rest of
the code treats it exactly like the pretrained LLaVA/CLIP tokenizers of the paper preset. BPE
(rather than a word-level vocabulary) keeps held-out phrasings representable as sub-words.

The ``r`` learnable ``[IMG_i]`` tokens (DESIGN §4.3) are appended *after* the base vocabulary, so
their ids are ``base_vocab_size … base_vocab_size + r - 1`` in both worlds; the MLLM keeps their
embeddings in a separate trainable table.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from typing import Any

PAD, UNK, BOS, EOS, IMAGE = "[PAD]", "[UNK]", "[BOS]", "[EOS]", "<image>"
BASE_SPECIALS = (PAD, UNK, BOS, EOS, IMAGE)

#: A few sentences so that a tiny model can be built without a dataset (tests, benchmarks).
BOOTSTRAP_CORPUS = (
    "What would happen if the red candle on the left burned for hours?",
    "the red candle is a short stub",
    "What if the ice cube were left in the sun?",
    "the ice cube is a puddle of water",
    "Imagine the blue balloon after a week.",
    "Show the green plant a month later.",
)


def img_token_names(r: int) -> list[str]:
    """The names of the ``r`` visual-guidance tokens: ``[IMG_0]`` … ``[IMG_{r-1}]``."""
    return [f"[IMG_{i}]" for i in range(r)]


def train_tokenizer(texts: Iterable[str], vocab_size: int = 1024) -> Any:
    """Train a BPE tokenizer on ``texts`` and wrap it as ``PreTrainedTokenizerFast``.

    Encoding with ``add_special_tokens=True`` gives ``[BOS] … [EOS]`` (what the CLIP text encoder
    expects); the MLLM encodes with ``add_special_tokens=False`` and adds its own ``[BOS]``.

    Args:
        texts: training text (instructions, captions, object phrases).
        vocab_size: target vocabulary size (specials included).

    Returns:
        A ``transformers.PreTrainedTokenizerFast`` with pad/unk/bos/eos set and ``<image>``.
    """
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=UNK, end_of_word_suffix="</w>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Whitespace(), pre_tokenizers.Punctuation()]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(BASE_SPECIALS),
        initial_alphabet=list(string.ascii_lowercase + string.digits + string.punctuation),
        show_progress=False,
        end_of_word_suffix="</w>",
    )
    tok.train_from_iterator(list(texts) or list(BOOTSTRAP_CORPUS), trainer=trainer)
    bos, eos = tok.token_to_id(BOS), tok.token_to_id(EOS)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}", special_tokens=[(BOS, bos), (EOS, eos)]
    )
    tok.decoder = decoders.BPEDecoder(suffix="</w>")
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD,
        unk_token=UNK,
        bos_token=BOS,
        eos_token=EOS,
        extra_special_tokens={"image_token": IMAGE},
        model_max_length=512,
    )


def add_img_tokens(tokenizer: Any, r: int) -> list[int]:
    """Append the ``[IMG_i]`` tokens (idempotent) and return their ids, which must be contiguous
    and start at the base vocabulary size.

    Raises:
        ValueError: when the tokenizer already holds other added tokens after its base vocabulary.
    """
    names = img_token_names(r)
    base = len(tokenizer) - sum(1 for n in names if n in tokenizer.get_vocab())
    tokenizer.add_special_tokens({"additional_special_tokens": names})
    ids = tokenizer.convert_tokens_to_ids(names)
    if ids != list(range(base, base + r)):
        raise ValueError(f"[IMG] token ids {ids[:3]}… are not contiguous from {base}")
    return list(ids)
