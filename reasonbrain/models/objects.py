"""Object phrases for the ID controller: open-vocabulary noun phrases from the instruction.

DESIGN §4.2: the same extractor runs in training and at inference, for every sample, so the ID
controller never sees gold phrases it will not get at test time (the record's ``objects`` only
*measure* the extractor: ``benchmarks/object_extraction.py``).

How (a shallow parse, then a few rules for what an *object* is):

1. **Tag and chunk** with the Pattern shallow parser that TextBlob ships (``textblob.en``: a Brill
   part-of-speech tagger with its lexicon and contextual rules, and a regular-expression NP/PP
   chunker). It is a well-kept PyPI package whose data are inside the wheel; spaCy's and NLTK's
   taggers need model/corpus downloads from outside the package registry, which we never do. The
   text is lower-cased first: the tagger reads a capitalised sentence-initial verb ("Change the
   car …") as a proper noun, and we emit lower-case phrases anyway.
2. **Fix three tagging errors** that matter here: a position word after a determiner ("the
   *left* cup", "on the *left*") is an adjective/noun, not the verb "left"; a sentence-initial
   word the tagger calls a noun before a determiner/pronoun/wh-word is an imperative verb ("*show*
   the …", "*picture* what …"); a "noun" right after a subject pronoun is a verb ("can I *use*").
3. **Build phrases**: each NP chunk that has a noun, without its leading determiner, keeps its
   pre-nominal modifiers (colour, size, position: "red candle", "left cup") and takes the
   prepositional phrases that directly follow it when they describe *it*: any "of" phrase ("row of
   red dominoes"), and a locative/"with" phrase whose noun phrase names a position or a colour
   ("ice cube on the red saucer", "candle on the left", "window with the pink frame") — not "in the
   hot sun" or "with a bowl" (a PP without such a modifier more often attaches to the verb, and
   "replace X with Y" never describes X).
4. **Drop what is not an object in the image**: pronouns, the image itself ("the picture", "the
   scene", "the result"), time spans ("five hours", "a week") and indefinite people ("someone",
   "nobody"). An attribute noun with an "of" phrase ("the colour of the car") yields its object
   ("car").

The output is every remaining phrase, lower case, in order of appearance, without duplicates;
:class:`ObjectPhrase` also gives the phrase without its trailing position ("on the left"), which is
what ReasonSynth's ``objects`` field records.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


DETERMINERS = _words(
    "the a an this that these those my your his her its our their some any each every all both "
    "no another either neither such"
)
POSITION_WORDS = _words(
    "left right middle center centre top bottom front back foreground background corner side "
    "upper lower leftmost rightmost topmost"
)
#: basic colour terms (the attribute that tells an object from its twin)
COLOURS = _words(
    "red orange yellow green blue purple violet pink brown black white grey gray gold golden "
    "silver beige cyan magenta teal turquoise navy maroon crimson scarlet indigo lavender olive "
    "tan ivory cream"
)
#: nouns that name the image or the edit, not something in it
META_NOUNS = _words(
    "image picture photo photograph pic scene result outcome output edit version view "
    "instruction change changes way"
)
#: time spans and moments: how long a hypothetical runs, never a region of the image
TIME_NOUNS = _words(
    "second minute hour day night week month year decade century morning afternoon evening noon "
    "midnight dawn dusk moment time while today tomorrow yesterday overnight weekend "
    "spring summer autumn fall winter future past later step"
)
#: people and things named by indefinite pronouns the tagger calls nouns
INDEFINITE = _words(
    "someone somebody something nobody anyone anybody anything everyone everybody everything "
    "nothing one ones thing things"
)
#: attribute nouns: "the colour of the car" is about the car
ATTRIBUTE_NOUNS = _words(
    "color colour shape size texture material style pattern surface appearance shade"
)
#: prepositions whose phrase may describe the noun before it (with a position or colour)
LOCATIVE = _words("on in at with inside under beneath below above over behind beside near by next")
SUBJECT_PRONOUNS = _words("i you we they he she")
#: tags that open a clause or phrase (after a sentence-initial word, they make it an imperative)
OPENERS = frozenset(("DT", "PRP", "PRP$", "IN", "TO", "CD"))
#: verbs whose "with"/"for" phrase is the replacement, never a description of the object
REPLACE_VERBS = _words("replace replaced replacing swap swapped substitute exchange")


@dataclass(frozen=True)
class ObjectPhrase:
    """One extracted phrase.

    Attributes:
        text: the phrase the ID controller encodes ("red candle on the left").
        core: ``text`` without a trailing position phrase ("red candle").
        head: the head noun ("candle").
    """

    text: str
    core: str
    head: str


@lru_cache(maxsize=1)
def _parser() -> Any:
    """The Pattern parser bundled in TextBlob (loads its lexicon once per process)."""
    from textblob.en import parser

    return parser


def _singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def _tag(text: str) -> list[list[list[str]]]:
    """Sentences of ``[word, tag, chunk, pnp]`` tokens, with the two tag fixes applied."""
    from textblob._text import find_chunks, find_prepositions

    parser = _parser()
    text = re.sub(r"\bi\b", "I", text.lower())  # the pronoun stays what the lexicon knows
    tagged = parser.parse(text, tokenize=True, tags=True, chunks=False, split=True)
    out = []
    for sentence in tagged:
        tokens = [[w.lower(), t] for w, t in sentence]
        for i, tok in enumerate(tokens):
            word = tok[0]
            prev = tokens[i - 1][0] if i else ""
            nxt = tokens[i + 1][1] if i + 1 < len(tokens) else ""
            if prev in SUBJECT_PRONOUNS and tok[1] in ("NN", "NNS"):
                tok[1] = "VBP"  # "can I *use* …": a noun never follows a subject pronoun
            elif word in POSITION_WORDS and prev in DETERMINERS:
                tok[1] = "JJ" if nxt.startswith("NN") else "NN"
            elif i == 0 and tok[1].startswith("NN") and (nxt in OPENERS or nxt.startswith("W")):
                tok[1] = "VB"  # an imperative: "show the car …", "picture what happens …"
        out.append(find_prepositions(find_chunks(tokens)))
    return out


@dataclass
class _Chunk:
    kind: str  # "NP", "PREP" (one preposition) or "O" (anything else, one token)
    tokens: list[list[str]]

    @property
    def words(self) -> list[str]:
        return [t[0] for t in self.tokens]


def _chunks(sentence: list[list[str]]) -> list[_Chunk]:
    """Group tokens into NP chunks; prepositions and other tokens stand alone."""
    chunks: list[_Chunk] = []
    for tok in sentence:
        chunk = tok[2]
        if chunk.endswith("PP"):
            chunks.append(_Chunk("PREP", [tok]))
        elif chunk == "I-NP" and chunks and chunks[-1].kind == "NP":
            chunks[-1].tokens.append(tok)
        elif chunk.endswith("-NP"):
            chunks.append(_Chunk("NP", [tok]))
        else:
            chunks.append(_Chunk("O", [tok]))
    return chunks


def _noun_phrase(tokens: list[list[str]]) -> tuple[list[str], str] | None:
    """The words of an NP without leading determiners/numbers-as-quantities, and its head noun."""
    words = [t[0] for t in tokens]
    tags = [t[1] for t in tokens]
    start = 0
    while start < len(words) and (words[start] in DETERMINERS or tags[start] in ("DT", "PRP$")):
        start += 1
    nouns = [i for i in range(start, len(words)) if tags[i].startswith("NN")]
    if not nouns:
        return None
    return words[start : nouns[-1] + 1], words[nouns[-1]]


def _pp_at(chunks: list[_Chunk], k: int) -> tuple[str, list[str]] | None:
    """``(preposition, NP words)`` when chunks ``k, k+1`` are a PP followed by an NP."""
    if k + 1 < len(chunks) and chunks[k].kind == "PREP" and chunks[k + 1].kind == "NP":
        return chunks[k].words[0], chunks[k + 1].words
    return None


def _describes(prep: str, words: list[str], replace_context: bool) -> bool:
    """Whether ``prep`` + NP ``words`` right after an NP describes that NP (see module doc)."""
    if prep == "of":
        return True
    if prep not in LOCATIVE or (replace_context and prep in ("with", "by")):
        return False
    return any(w in POSITION_WORDS or w in COLOURS for w in words)


def _is_position(words: list[str]) -> bool:
    rest = [w for w in words if w not in DETERMINERS]
    return bool(rest) and all(w in POSITION_WORDS for w in rest)


def extract_phrases(instruction: str) -> list[ObjectPhrase]:
    """Object phrases named in ``instruction``, in order of appearance (see the module doc)."""
    found: list[ObjectPhrase] = []
    seen: set[str] = set()
    for sentence in _tag(instruction):
        chunks = _chunks(sentence)
        replace_context = False
        i = 0
        while i < len(chunks):
            ch = chunks[i]
            if ch.kind == "O" and ch.words[0] in REPLACE_VERBS:
                replace_context = True
            np = None
            if ch.kind == "NP":
                np = _noun_phrase(ch.tokens)
            i += 1
            if np is None:
                continue
            words, head = np
            core = list(words)
            position: list[str] = []

            pp = _pp_at(chunks, i)
            if head in ATTRIBUTE_NOUNS and pp is not None and pp[0] == "of":
                inner = _noun_phrase(chunks[i + 1].tokens)
                if inner is not None:
                    core, head = list(inner[0]), inner[1]
                    i += 2
                    pp = _pp_at(chunks, i)
            while pp is not None and _describes(pp[0], pp[1], replace_context):
                if _is_position(pp[1]) or position:  # after a position: keep the written order
                    position += [pp[0], *pp[1]]
                else:
                    core += [pp[0], *pp[1]]
                i += 2
                pp = _pp_at(chunks, i)
            lemma = _singular(head)
            if head in INDEFINITE or lemma in META_NOUNS or lemma in TIME_NOUNS:
                continue
            text = " ".join(core + position)
            if text in seen:
                continue
            seen.add(text)
            found.append(ObjectPhrase(text, " ".join(core), head))
    return found


def extract_objects(instruction: str, max_objects: int) -> list[str]:
    """The phrase texts of :func:`extract_phrases` (at most ``max_objects``)."""
    return [p.text for p in extract_phrases(instruction)[:max_objects]]
