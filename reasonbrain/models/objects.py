"""Object phrases for the ID controller at inference (DESIGN §4.2: "extracted at inference").

Training records name their objects; at inference the instruction is matched against the object
phrases seen in training (stored in the model config), longest phrase first, non-overlapping,
in order of appearance. Matching is case-insensitive on word boundaries. A caller that knows the
objects can pass them explicitly instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable


def extract_objects(instruction: str, phrases: Iterable[str], max_objects: int) -> list[str]:
    """Known object phrases named in ``instruction`` (at most ``max_objects``)."""
    text = instruction.lower()
    taken = [False] * len(text)
    hits: list[tuple[int, str]] = []
    for phrase in sorted({p.strip().lower() for p in phrases if p.strip()}, key=len, reverse=True):
        for m in re.finditer(rf"\b{re.escape(phrase)}\b", text):
            if not any(taken[m.start() : m.end()]):
                taken[m.start() : m.end()] = [True] * (m.end() - m.start())
                hits.append((m.start(), phrase))
    return [p for _, p in sorted(hits)][:max_objects]
