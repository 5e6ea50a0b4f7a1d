"""The judge interface, VIEScore-style prompts and response parsing.

VIEScore (Ku et al., 2024) asks a multimodal model for two 0–10 ratings: semantic consistency SC
(did the edit follow the instruction, without over-editing: SC = min of its two sub-scores) and
perceptual quality PQ (naturalness, artifacts: PQ = min of its two sub-scores); the overall score
is O = sqrt(SC · PQ). An edit *follows* the instruction when SC >= the configured threshold;
Instruction Alignment is the share of edits that follow.

Prompts live in ``reasonbrain/evaluation/prompts/<name>.sc.txt`` and ``<name>.pq.txt``. A prompt's
*version* is its name plus the sha256 of its text, so editing a prompt without renaming it still
changes the cache key and the recorded version.
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


_SCORE_LIST = re.compile(r'"score"\s*:\s*\[\s*([0-9.]+)\s*,\s*([0-9.]+)\s*\]')
_NUMBER = re.compile(r"(?<![0-9.])(10(?:\.0+)?|[0-9](?:\.[0-9]+)?)(?![0-9]|\.[0-9])")


def parse_scores(text: str) -> float | None:
    """The min of the two 0–10 sub-scores in a judge's answer, or ``None`` when unreadable.

    Accepts the requested JSON (``{"score": [a, b], …}``), JSON inside prose or code fences, and
    as a last resort the first two numbers in 0–10 found in the text.
    """
    m = _SCORE_LIST.search(text)
    if m:
        values = [float(m.group(1)), float(m.group(2))]
    else:
        found = [float(x) for x in _NUMBER.findall(text)[:2]]
        if len(found) < 2:
            return None
        values = found
    if any(not 0 <= v <= 10 for v in values):
        return None
    return min(values)


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
    )


def request_key(request: JudgeRequest, judge_id: str, prompt_version: str) -> str:
    """Cache key: sha256 over (image hashes, instruction, judge id, prompt version)."""
    from reasonbrain.evaluation.images import image_digest

    blob = json.dumps(
        [
            image_digest(request.source),
            image_digest(request.output),
            request.instruction,
            judge_id,
            prompt_version,
        ]
    )
    return hashlib.sha256(blob.encode()).hexdigest()
