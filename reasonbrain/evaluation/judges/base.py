"""The judge interface, VIEScore-style prompts and response parsing.

VIEScore (Ku et al., 2024) asks a multimodal model for two 0–10 ratings: semantic consistency SC
(did the edit follow the instruction, without over-editing: SC = min of its two sub-scores) and
perceptual quality PQ (naturalness, artifacts: PQ = min of its two sub-scores); the overall score
is O = sqrt(SC · PQ). An edit *follows* the instruction when SC >= the configured threshold;
Instruction Alignment is the share of edits that follow.

Prompts live in ``reasonbrain/evaluation/prompts/<name>.sc.txt`` and ``<name>.pq.txt``. A prompt's
*version* is its name plus the sha256 of its text, so editing a prompt without renaming it still
changes the cache key and the recorded version.

**Reading an answer** (:func:`parse_scores`) never guesses: the requested JSON
(``{"score": [a, b], …}``, bare, in prose or in a code fence) is read first; a malformed one, or
several that disagree, is *unreadable*. Only an answer without such JSON is read as free text, and
only when it states exactly two 0–10 scores once denominators ("8/10", "7 (out of 10)") and
labels ("score 1") are set aside. Unreadable answers are kept verbatim, marked
(``error_kind="unreadable"``), counted in ``metrics.json`` and never stop a run.

**Caching** (:mod:`~reasonbrain.evaluation.judges.cache`): a judge's :meth:`Judge.identity` names
everything that changes its raw answer (model, weights fingerprint, endpoint, decoding, prompt
version); the verdict is recomputed from a cached raw answer by :meth:`Judge.from_raw`, so a
changed pass threshold or parser never reuses a stale verdict.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any

from PIL import Image

from reasonbrain.errors import ConfigError


@dataclass(frozen=True)
class Prompt:
    """A versioned pair of prompts (semantic consistency, perceptual quality)."""

    name: str
    sc: str
    pq: str

    @property
    def version(self) -> str:
        """``name@sha256[:8]`` of both texts."""
        digest = hashlib.sha256((self.sc + "\0" + self.pq).encode()).hexdigest()[:8]
        return f"{self.name}@{digest}"


def load_prompt(name: str) -> Prompt:
    """Read ``prompts/<name>.sc.txt`` and ``prompts/<name>.pq.txt`` from the package.

    Raises:
        ConfigError: either file is missing.
    """
    root = resources.files("reasonbrain.evaluation") / "prompts"
    try:
        sc = (root / f"{name}.sc.txt").read_text(encoding="utf-8")
        pq = (root / f"{name}.pq.txt").read_text(encoding="utf-8")
    except (FileNotFoundError, OSError):
        known = sorted({p.name.split(".")[0] for p in root.iterdir() if p.name.endswith(".txt")})
        raise ConfigError(
            f"unknown judge prompt {name!r}",
            where="eval.judge_prompt",
            fix=f"use one of {known}",
        ) from None
    return Prompt(name=name, sc=sc, pq=pq)


@dataclass
class JudgeRequest:
    """What a judge sees for one edit.

    Attributes:
        sample_id: the record id (for messages only; never part of the cache key).
        instruction: the editing instruction.
        source: the input image.
        output: the edited image.
        ground_truth: the ReasonSynth verifier's verdict, when the record has ground truth (only
            the oracle uses it).
    """

    sample_id: str
    instruction: str
    source: Image.Image
    output: Image.Image
    ground_truth: dict[str, Any] | None = None


@dataclass
class Judgement:
    """A judge's answer. ``raw`` keeps the judge's text verbatim (both calls for VIEScore)."""

    judge_id: str
    prompt_version: str
    follows: bool | None
    sc: float | None = None
    pq: float | None = None
    overall: float | None = None
    raw: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    cached: bool = False
    error_kind: str | None = None  # unreadable | request_failed | not_applicable

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (stored in ``samples.jsonl`` and the cache)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Judgement:
        """Inverse of :meth:`to_dict`."""
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


class Judge(ABC):
    """Rates one edit; ``judge_id`` names the judge model, ``prompt_version`` its prompt."""

    judge_id: str
    prompt_version: str

    @abstractmethod
    def judge(self, request: JudgeRequest) -> Judgement:
        """Rate one edit (never raises for a bad answer: ``error`` says what went wrong)."""

    def identity(self) -> dict[str, Any]:
        """Everything that changes this judge's raw answers (the cache key's judge part)."""
        return {"judge_id": self.judge_id, "prompt_version": self.prompt_version}

    def from_raw(self, raw: dict[str, str]) -> Judgement | None:
        """The verdict for a raw answer this judge gave before (``None``: not supported, the
        judge is not cached)."""
        return None


class UnreadableAnswer(ValueError):
    """A judge's answer holds no unambiguous pair of scores."""


_SCORE_KEY = re.compile(r'"score"\s*:')
_DENOMINATOR = re.compile(r"\s*(?:/|\bout\s+of)\s*10(?:\.0+)?(?![0-9])", re.IGNORECASE)
_LABEL = re.compile(r"\bscore\s*[12]\b", re.IGNORECASE)
_FREE_NUMBER = re.compile(r"(?<![0-9.])[0-9]+(?:\.[0-9]+)?(?![0-9]|\.[0-9])")


def _json_pairs(text: str) -> list[list[float]] | None:
    """Every ``"score": [a, b]`` of the JSON objects in ``text``; ``None`` when there is none.

    Raises:
        UnreadableAnswer: the text names a ``"score"`` but no valid object holds a pair.
    """
    if not _SCORE_KEY.search(text):
        return None
    decoder = json.JSONDecoder()
    pairs: list[list[float]] = []
    i = text.find("{")
    while i != -1:
        try:
            obj, end = decoder.raw_decode(text, i)
        except ValueError:
            i = text.find("{", i + 1)
            continue
        if isinstance(obj, dict) and "score" in obj:
            v = obj["score"]
            ok = isinstance(v, list) and len(v) == 2
            if not ok or any(isinstance(x, bool) or not isinstance(x, int | float) for x in v):
                raise UnreadableAnswer(f"'score' is not a pair of numbers: {v!r}")
            pairs.append([float(x) for x in v])
        i = text.find("{", end)
    if not pairs:
        raise UnreadableAnswer("malformed JSON around 'score'")
    return pairs


def read_scores(text: str) -> tuple[float, float]:
    """The two 0–10 sub-scores stated in a judge's answer (see the module docstring).

    Raises:
        UnreadableAnswer: no JSON pair and not exactly two numbers in the prose, a malformed or
            ambiguous JSON answer, or a score outside 0–10.
    """
    pairs = _json_pairs(text)
    if pairs is not None:
        if any(p != pairs[0] for p in pairs):
            raise UnreadableAnswer(f"several different score pairs: {pairs}")
        a, b = pairs[0]
    else:
        prose = _LABEL.sub(" ", _DENOMINATOR.sub(" ", text))
        found = _FREE_NUMBER.findall(prose)
        if len(found) != 2:
            raise UnreadableAnswer(f"{len(found)} numbers in a free-text answer (2 expected)")
        a, b = float(found[0]), float(found[1])
    if not (0 <= a <= 10 and 0 <= b <= 10):
        raise UnreadableAnswer(f"scores outside 0-10: {a:g}, {b:g}")
    return a, b


def parse_scores(text: str) -> float | None:
    """The min of the two 0–10 sub-scores of an answer, or ``None`` when it is unreadable."""
    try:
        return min(read_scores(text))
    except UnreadableAnswer:
        return None


def combine(
    judge_id: str,
    prompt: Prompt,
    sc_text: str,
    pq_text: str,
    follow_threshold: float,
) -> Judgement:
    """Build a :class:`Judgement` from the two raw answers (VIEScore's SC, PQ and O)."""
    sc, pq = parse_scores(sc_text), parse_scores(pq_text)
    overall = math.sqrt(sc * pq) if sc is not None and pq is not None else None
    errors = [n for n, v in (("SC", sc), ("PQ", pq)) if v is None]
    return Judgement(
        judge_id=judge_id,
        prompt_version=prompt.version,
        follows=None if sc is None else sc >= follow_threshold,
        sc=sc,
        pq=pq,
        overall=overall,
        raw={"sc": sc_text, "pq": pq_text},
        error=f"unreadable {'/'.join(errors)} answer" if errors else None,
        error_kind="unreadable" if errors else None,
    )


def request_key(request: JudgeRequest, identity: dict[str, Any]) -> str:
    """Cache key: sha256 over (image hashes, instruction, the judge's identity)."""
    from reasonbrain.evaluation.images import image_digest

    blob = json.dumps(
        [
            image_digest(request.source),
            image_digest(request.output),
            request.instruction,
            identity,
        ],
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()
