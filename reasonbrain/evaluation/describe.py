"""The run description: ``metrics.json`` (aggregates + the configuration behind every number).

:func:`write_metrics` aggregates the rows (:mod:`~reasonbrain.evaluation.aggregate`) and writes
``OUT/metrics.json`` and ``OUT/per_category.json``; :func:`describe_config` records, without
loading any model, what produced each number: pixel conventions, the verifier, metric backbones
with their weight fingerprints, the judges used, the bootstrap, the benchmark protocols and the
MagicBrush protocol.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reasonbrain.evaluation.images import atomic_write_bytes
from reasonbrain.evaluation.protocols import MAGICBRUSH_PROTOCOLS
from reasonbrain.evaluation.store import METRICS, PER_CATEGORY

if TYPE_CHECKING:
    from reasonbrain.config import EvalParams, Settings


def write_metrics(
    out: Path,
    rows: Sequence[dict[str, Any]],
    params: EvalParams,
    settings: Settings,
    run_info: dict[str, Any],
) -> dict[str, Any]:
    """Aggregate ``rows`` and write ``OUT/metrics.json`` and ``OUT/per_category.json``.

    Returns:
        The ``metrics.json`` document: ``run`` (``run_info`` + sample count), ``config`` (what
        produced every number), ``overall``, ``by_category``, ``by_family``, ``by_holdout``.
    """
    from reasonbrain.evaluation.aggregate import aggregate

    metrics = aggregate(
        rows, resamples=params.bootstrap_resamples, level=params.ci_level, seed=params.seed
    )
    doc = {
        "run": {**run_info, "samples": len(rows)},
        "config": describe_config(params, settings, rows),
        **{k: v for k, v in metrics.items() if k != "per_category"},
    }
    atomic_write_bytes(out / METRICS, json.dumps(doc, indent=2, allow_nan=False).encode())
    atomic_write_bytes(
        out / PER_CATEGORY, json.dumps(metrics["per_category"], indent=2).encode("utf-8")
    )
    return doc


def describe_config(
    params: EvalParams, settings: Settings, rows: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """The configuration behind every number (without loading any model)."""
    from reasonbrain.evaluation.encoders import resolve_weight_dirs, weights_fingerprint
    from reasonbrain.evaluation.pixel import PIXEL_CONFIG
    from reasonbrain.evaluation.verifier import VerifierConfig

    found, missing = resolve_weight_dirs(settings)
    wanted = set(params.metrics)
    models: dict[str, Any] = {}
    for name, metrics in (
        ("clip", {"clip_i", "clip_t", "clip_dir"}),
        ("dino", {"dino"}),
        ("lpips", {"lpips"}),
    ):
        if not wanted & metrics:
            models[name] = "not requested"
        elif name in found:
            models[name] = {
                "weights": str(found[name]),
                "fingerprint": weights_fingerprint(found[name]),
            }
        else:
            models[name] = missing[name]
    judges = sorted(
        {(r["judge"]["judge_id"], r["judge"]["prompt_version"]) for r in rows if r.get("judge")}
    )
    return {
        "pixel": PIXEL_CONFIG,
        "verifier": VerifierConfig.from_params(params).describe(),
        "models": models,
        "embedding_scores": "raw cosine in [-1, 1] (papers often print 100 x cosine)",
        "judge": {
            "kind": params.judge,
            "used": [{"judge_id": j, "prompt_version": v} for j, v in judges],
            "follows": f"semantic consistency >= {params.judge_follow_threshold:g} of 10",
            "parsing": "the requested JSON {'score': [a, b]} first; free text only when it states "
            "exactly two 0-10 scores; anything else is unreadable (counted in judge_errors)",
            "cache": "keyed by both images, the instruction, the judge's identity (a local VLM's "
            "weights sha256) and the prompt version; the verdict is recomputed from the cached "
            "answer with the current threshold",
        },
        "bootstrap": {
            "method": "percentile (scipy.stats.bootstrap)",
            "resamples": params.bootstrap_resamples,
            "level": params.ci_level,
            "seed": params.seed,
        },
        "protocols": sorted({str(r.get("protocol")) for r in rows}),
        "magicbrush_protocol": {
            "name": params.magicbrush_protocol,
            "rule": MAGICBRUSH_PROTOCOLS[params.magicbrush_protocol],
            "sessions": sum(1 for r in rows if r.get("session")),
        },
        "seeds": "per sample: sha256(f'{eval.seed}:{id}')[:8] & (2**63-1)",
    }
