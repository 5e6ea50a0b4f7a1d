"""The tiny preset's tokenizer is trained deterministically (issue 13, item 4).

``tokenizers``' own BPE trainer gave another vocabulary in every process and even every call
(ties broken in hash-map order, huggingface/tokenizers#1794), so no two trainings of the same
params could be bit-identical. Ours depends on the text alone: same text → same bytes, here and
on any machine (the pinned digest below), and the merges follow the documented rule.
"""

from __future__ import annotations

import hashlib
import json

from reasonbrain.models.tokenizer import (
    BASE_SPECIALS,
    BOOTSTRAP_CORPUS,
    END_OF_WORD,
    INITIAL_ALPHABET,
    learn_bpe,
    train_tokenizer,
)

W = END_OF_WORD
#: sha256[:16] of the vocabulary + merges learned from the text of the digest test, measured
#: here; it changes only if the training rule does (then every tiny model must be retrained)
PINNED = "9ffe0ba1fbf2cbb6"


def test_merges_follow_the_rule_most_frequent_first_ties_by_text() -> None:
    # words: low ×3, lower, lowest — worked out by hand in the module's rule
    vocab, merges = learn_bpe(["low lower lowest", "low low"], 1024)
    assert merges == [
        ("l", "o"),  # 5
        ("lo", f"w{W}"),  # 3
        ("lo", "w"),  # 2, ties with ("w", "e"): "lo" < "w"
        ("low", "e"),  # 2
        ("lowe", f"r{W}"),  # 1, ties: ("lowe", "r</w>") < ("lowe", "s") < ("s", "t</w>")
        ("lowe", "s"),
        ("lowes", f"t{W}"),
    ]
    assert list(vocab)[: len(BASE_SPECIALS)] == list(BASE_SPECIALS)
    base = len(BASE_SPECIALS) + 2 * len(set(INITIAL_ALPHABET))
    assert len(vocab) == base + len(merges) and list(vocab.values()) == list(range(len(vocab)))
    # every character in both forms, so no held-out word ends in [UNK]
    assert all(c in vocab and f"{c}{W}" in vocab for c in INITIAL_ALPHABET)
    # the size bound stops the merges (the alphabet is always kept)
    assert learn_bpe(["low lower lowest", "low low"], base + 3)[1] == merges[:3]


def test_same_text_same_bytes_and_a_pinned_digest() -> None:
    texts = [*BOOTSTRAP_CORPUS, "What if the blue ice cube on the right were left in the sun?"]
    a = train_tokenizer(texts, 300).backend_tokenizer.to_str()
    b = train_tokenizer(list(reversed(texts)), 300).backend_tokenizer.to_str()
    assert a == b  # neither the call nor the order of the text matters
    model = json.loads(a)["model"]
    digest = hashlib.sha256(
        json.dumps([model["vocab"], model["merges"]], sort_keys=True).encode()
    ).hexdigest()
    assert digest[:16] == PINNED, "the tokenizer's training changed: models trained before differ"


def test_encodes_with_the_library_and_round_trips() -> None:
    tok = train_tokenizer(BOOTSTRAP_CORPUS, 300)
    text = "What would happen if the crimson zeppelin on the left burned for hours?"
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    assert tok.unk_token_id not in ids  # unseen words fall back to sub-words, never [UNK]
    assert tok.decode(ids, skip_special_tokens=True) == text.lower().replace("?", " ?")
    assert tok.tokenize("the red candle") == ["the" + W, "red" + W, "candle" + W]
    assert tok.convert_tokens_to_ids("<image>") == BASE_SPECIALS.index("<image>")
