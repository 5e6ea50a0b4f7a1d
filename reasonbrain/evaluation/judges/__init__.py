"""Judges for the MLLM Score and Instruction Alignment (VIEScore-style).

- :mod:`~reasonbrain.evaluation.judges.base` — the :class:`Judge` interface, prompts, parsing.
- :mod:`~reasonbrain.evaluation.judges.cache` — the on-disk response cache.
- :mod:`~reasonbrain.evaluation.judges.oracle` — the ReasonSynth oracle (the verifier).
- :mod:`~reasonbrain.evaluation.judges.http` — an OpenAI-compatible endpoint (e.g. vLLM).
- :mod:`~reasonbrain.evaluation.judges.vlm` — a local vision-language model via transformers.
- :func:`build_judge` picks one from params and settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reasonbrain.config import EvalParams, Settings
    from reasonbrain.evaluation.judges.base import Judge


def build_judge(params: EvalParams, settings: Settings, cache_dir: Path | None) -> Judge | None:
    """The judge ``params.judge`` names (``None`` for ``none``), wrapped in a disk cache.

    Raises:
        ConfigError: the HTTP judge has no URL or the VLM judge no weights.
    """
    from reasonbrain.evaluation.judges.base import load_prompt
    from reasonbrain.evaluation.judges.cache import CachedJudge, JudgeCache

    if params.judge == "none":
        return None
    if params.judge == "oracle":
        from reasonbrain.evaluation.judges.oracle import OracleJudge

        return OracleJudge()  # exact and free: never cached
    prompt = load_prompt(params.judge_prompt)
    judge: Judge
    if params.judge == "http":
        from reasonbrain.evaluation.judges.http import HttpJudge

        judge = HttpJudge.from_settings(params, settings, prompt)
    else:
        from reasonbrain.evaluation.judges.vlm import LocalVlmJudge

        judge = LocalVlmJudge.from_settings(params, settings, prompt)
    if cache_dir is None:
        return judge
    return CachedJudge(judge, JudgeCache(cache_dir))
