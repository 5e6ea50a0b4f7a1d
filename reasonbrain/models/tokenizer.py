"""Tokenizers: a locally trained one for the tiny world, and the ``[IMG_i]`` special tokens.

The tiny preset downloads nothing, so its tokenizer is trained here (BPE, lower-cased,
whitespace/punctuation pre-split) on the training instructions, target captions and object phrases,
and wrapped as a ``transformers.PreTrainedTokenizerFast`` so that the rest of the code treats it
exactly like the pretrained LLaVA/CLIP tokenizers of the paper preset. BPE (rather than a
word-level vocabulary) keeps held-out phrasings representable as sub-words.

**Why not the library's trainer.** ``tokenizers``' ``BpeTrainer`` breaks ties between equally
frequent pairs in hash-map order, which is seeded per process (huggingface/tokenizers#1794): the
same corpus gave a different vocabulary in every process (measured: three runs, three vocabularies),
so two trainings of the same params started from different token ids and could never be
bit-identical. :func:`learn_bpe` is a small deterministic BPE trainer (most frequent pair first,
ties broken by the pair's text); its vocabulary and merges feed ``tokenizers.models.BPE``, so
encoding stays the library's fast Rust code, and the normalizer and pre-tokenizer are the library's
too. The learned vocabulary has every alphabet character in both forms (inside a word and
word-final ``x</w>``), so a held-out word never encodes to ``[UNK]`` because its last letter was
never seen at the end of a training word.

The ``r`` learnable ``[IMG_i]`` tokens (DESIGN §4.3) are appended *after* the base vocabulary, so
their ids are ``base_vocab_size … base_vocab_size + r - 1`` in both worlds; the MLLM keeps their
embeddings in a separate trainable table.
"""

from __future__ import annotations

import string
from collections import Counter, defaultdict
from collections.abc import Iterable
from itertools import pairwise
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


#: The characters every tiny tokenizer knows, whatever its training text.
INITIAL_ALPHABET = string.ascii_lowercase + string.digits + string.punctuation
END_OF_WORD = "</w>"


def _normalizer() -> Any:
    from tokenizers import normalizers

    return normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])


def _pre_tokenizer() -> Any:
    from tokenizers import pre_tokenizers

    return pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Punctuation()])


def learn_bpe(
    texts: Iterable[str], vocab_size: int
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Deterministic BPE: the vocabulary and merges for ``tokenizers.models.BPE``.

    Words come from the library's own normalizer (NFKC, lower case) and pre-tokenizer, each split
    into characters with :data:`END_OF_WORD` on the last. The vocabulary starts with the specials,
    then every character of :data:`INITIAL_ALPHABET` and of the text in both forms (sorted); each
    merge joins the most frequent adjacent pair (counted over word frequencies; ties: the
    smallest ``(left, right)`` in string order) until ``vocab_size`` tokens exist or no pair is
    left. The result depends on the text alone, never on the process.
    """
    norm, pre = _normalizer(), _pre_tokenizer()
    freq: Counter[str] = Counter()
    for text, n in Counter(texts).items():  # captions and object phrases repeat a lot
        for word, _ in pre.pre_tokenize_str(norm.normalize_str(text)):
            freq[word] += n
    chars = sorted(set(INITIAL_ALPHABET) | {c for w in freq for c in w})
    vocab: dict[str, int] = {s: i for i, s in enumerate(BASE_SPECIALS)}
    for sym in chars + [c + END_OF_WORD for c in chars]:
        vocab.setdefault(sym, len(vocab))
    words = [[*w[:-1], w[-1] + END_OF_WORD] for w in sorted(freq)]
    counts = [freq[w] for w in sorted(freq)]
    pairs: Counter[tuple[str, str]] = Counter()
    where: dict[tuple[str, str], set[int]] = defaultdict(set)
    for i, syms in enumerate(words):
        for pair in pairwise(syms):
            pairs[pair] += counts[i]
            where[pair].add(i)
    merges: list[tuple[str, str]] = []
    while len(vocab) < vocab_size and pairs:
        # most frequent first; ties by text, so the order never depends on hashing
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merged = best[0] + best[1]
        merges.append(best)
        vocab.setdefault(merged, len(vocab))
        for i in sorted(where.pop(best)):
            syms, n = words[i], counts[i]
            for pair in pairwise(syms):  # forget this word's old pairs
                pairs[pair] -= n
                if pairs[pair] <= 0:
                    del pairs[pair]
            out: list[str] = []
            j = 0
            while j < len(syms):
                if j + 1 < len(syms) and (syms[j], syms[j + 1]) == best:
                    out.append(merged)
                    j += 2
                else:
                    out.append(syms[j])
                    j += 1
            words[i] = out
            for pair in pairwise(out):
                pairs[pair] += n
                where[pair].add(i)
    return vocab, merges


def train_tokenizer(texts: Iterable[str], vocab_size: int = 1024) -> Any:
    """Train a BPE tokenizer on ``texts`` (deterministically) and wrap it as
    ``PreTrainedTokenizerFast``.

    Encoding with ``add_special_tokens=True`` gives ``[BOS] … [EOS]`` (what the CLIP text encoder
    expects); the MLLM encodes with ``add_special_tokens=False`` and adds its own ``[BOS]``.

    Args:
        texts: training text (instructions, captions, object phrases); the built-in
            :data:`BOOTSTRAP_CORPUS` when empty.
        vocab_size: target vocabulary size (specials included; the alphabet is always kept).

    Returns:
        A ``transformers.PreTrainedTokenizerFast`` with pad/unk/bos/eos set and ``<image>``.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, processors
    from transformers import PreTrainedTokenizerFast

    vocab, merges = learn_bpe(list(texts) or list(BOOTSTRAP_CORPUS), vocab_size)
    tok = Tokenizer(
        models.BPE(vocab=vocab, merges=merges, unk_token=UNK, end_of_word_suffix=END_OF_WORD)
    )
    tok.normalizer = _normalizer()
    tok.pre_tokenizer = _pre_tokenizer()
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in BASE_SPECIALS])
    bos, eos = tok.token_to_id(BOS), tok.token_to_id(EOS)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}", special_tokens=[(BOS, bos), (EOS, eos)]
    )
    tok.decoder = decoders.BPEDecoder(suffix=END_OF_WORD)
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
