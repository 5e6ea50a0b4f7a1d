"""On-disk judge cache: one JSON file per (image hashes, instruction, judge identity).

Judging is slow and may cost money; a rerun (or a resumed evaluation) must not ask again. The key
covers everything that changes the judge's *raw answer*: both images, the instruction and
:meth:`~reasonbrain.evaluation.judges.base.Judge.identity` (model, weights fingerprint, endpoint,
decoding, prompt version). The *verdict* is not taken from the cache: it is recomputed from the
cached raw answer by the judge (:meth:`~reasonbrain.evaluation.judges.base.Judge.from_raw`), so a
changed pass threshold or a better parser applies to cached answers too. Files are written
atomically, so concurrent actors sharing a cache directory never read half an entry. Only readable
answers are cached: a failed call (network error, unparseable text) is asked again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reasonbrain.evaluation.images import atomic_write_bytes
from reasonbrain.evaluation.judges.base import Judge, Judgement, JudgeRequest, request_key


class JudgeCache:
    """A directory of ``<key[:2]>/<key>.json`` entries."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> Judgement | None:
        """The cached judgement, or ``None`` (a corrupt entry counts as absent)."""
        p = self._path(key)
        try:
            return Judgement.from_dict(json.loads(p.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None

    def put(self, key: str, judgement: Judgement) -> None:
        """Store a judgement atomically."""
        data = json.dumps(judgement.to_dict(), ensure_ascii=False).encode()
        atomic_write_bytes(self._path(key), data)


class CachedJudge(Judge):
    """Wraps a judge: answers from the cache when it can, stores new readable answers."""

    def __init__(self, inner: Judge, cache: JudgeCache) -> None:
        self.inner = inner
        self.cache = cache
        self.judge_id = inner.judge_id
        self.prompt_version = inner.prompt_version

    def judge(self, request: JudgeRequest) -> Judgement:
        """Cached answer, else ask the inner judge (and cache a readable answer)."""
        key = request_key(request, self.inner.identity())
        hit = self.cache.get(key)
        if hit is not None:
            fresh = self.inner.from_raw(hit.raw) if hit.raw else None
            result = fresh or hit
            result.cached = True
            return result
        result = self.inner.judge(request)
        if result.error is None:
            self.cache.put(key, result)
        return result

    def identity(self) -> dict[str, Any]:
        """The inner judge's identity."""
        return self.inner.identity()

    def from_raw(self, raw: dict[str, str]) -> Judgement | None:
        """The inner judge's verdict for a raw answer."""
        return self.inner.from_raw(raw)
