"""``metrics.json`` from ``samples.jsonl``: means with bootstrap CIs, overall and per group.

Groups: ``overall``, ``by_category``, ``by_family`` and ``by_holdout`` (the last two only for
ReasonSynth rows). Every per-sample metric becomes ``{mean, ci_low, ci_high, n}``; ``n`` counts
the samples that have the metric (a skipped or undefined value is left out, never counted as 0).
ReasonSynth groups also report, over the same samples reasoning accuracy and chance level count
(the verifiable ones):

- ``outcome_rates`` — the share of outputs *nearest* to the target and to each counterfactual
  (``no_change`` is the "no change" rate; the nearest-candidate rule, ``reasoning_acc_nearest``);
- ``verdict_rates`` and ``verdict_counts`` — the share and number of samples per
  ``Verdict.outcome`` under the calibrated rule (``target`` = correct; ``no_change`` /
  ``wrong_object`` / ``wrong_change`` / ``tie`` = nearest to a wrong outcome; ``faint_edit`` /
  ``collateral_edit`` / ``background_changed`` = nearest to the target but a bound failed;
  ``no_output`` = no output to score);

and how many samples were not verifiable. Rows of a predictions directory
(``reasonbrain evaluate --predictions``) add ``predictions``: how many predictions were found and
how many were missing, unreadable or ambiguous (those samples count as wrong, see
:meth:`~reasonbrain.evaluation.scoring.Scorer.score`).
Groups judged by a model report ``judge_errors``: how many answers were unreadable, how many
requests failed, how many samples the judge did not apply to (none of them counts in
``instruction_alignment``). A flat ``per_category`` table (one row per category) feeds DVC plots.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from reasonbrain.evaluation.bootstrap import bootstrap_mean
from reasonbrain.evaluation.verifier import OUTCOMES

#: Metrics shown first in tables (others follow alphabetically).
HEADLINE: tuple[str, ...] = (
    "reasoning_acc",
    "reasoning_acc_nearest",
    "instruction_alignment",
    "mllm_score",
    "clip_t",
    "clip_i",
    "clip_dir",
    "dino",
    "l1",
    "l2",
    "psnr",
    "ssim",
    "lpips",
    "edit_error",
    "preservation_psnr",
    "preservation_ssim",
)


def metric_names(rows: Iterable[dict[str, Any]]) -> list[str]:
    """Every metric present in the rows, headline metrics first."""
    seen: set[str] = set()
    for r in rows:
        seen.update(k for k, v in r["metrics"].items() if v is not None)
    return [m for m in HEADLINE if m in seen] + sorted(seen - set(HEADLINE))


def summarise(
    rows: Sequence[dict[str, Any]], *, resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> dict[str, Any]:
    """Estimates for one group of rows (see the module docstring)."""
    out: dict[str, Any] = {"n": len(rows), "metrics": {}}
    for name in metric_names(rows):
        values = [r["metrics"][name] for r in rows if r["metrics"].get(name) is not None]
        if values:
            est = bootstrap_mean(values, resamples=resamples, level=level, seed=seed)
            out["metrics"][name] = est.to_dict()
    verdicts = [r["verifier"] for r in rows if r.get("verifier")]
    if verdicts:
        verifiable = [v for v in verdicts if v["verifiable"]]
        nearest = Counter(v["nearest"] for v in verifiable)
        out["outcome_rates"] = {k: nearest[k] / len(verifiable) for k in sorted(nearest)}
        outcomes = Counter(str(v.get("outcome")) for v in verifiable if v.get("outcome"))
        order = [k for k in OUTCOMES if k in outcomes] + sorted(set(outcomes) - set(OUTCOMES))
        out["verdict_counts"] = {k: outcomes[k] for k in order}
        out["verdict_rates"] = {k: outcomes[k] / len(verifiable) for k in order}
        out["unverifiable"] = len(verdicts) - len(verifiable)
    predictions = Counter(
        str(p.get("status")) for r in rows if isinstance(p := r.get("prediction"), dict)
    )
    if predictions:
        out["predictions"] = dict(sorted(predictions.items()))
    errors = Counter(
        str(j.get("error_kind") or "other")
        for r in rows
        if (j := r.get("judge")) and j.get("error") is not None
    )
    if errors:
        out["judge_errors"] = dict(sorted(errors.items()))
    return out


def _grouped(rows: Sequence[dict[str, Any]], key: str) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r.get(key) is not None:
            groups[str(r[key])].append(r)
    return dict(sorted(groups.items()))


def aggregate(
    rows: Sequence[dict[str, Any]], *, resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> dict[str, Any]:
    """Overall and per-group estimates for all rows."""

    def est(group: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return summarise(group, resamples=resamples, level=level, seed=seed)

    result: dict[str, Any] = {"overall": est(rows)}
    for key, name in (
        ("category", "by_category"),
        ("family", "by_family"),
        ("holdout", "by_holdout"),
    ):
        groups = _grouped(rows, key)
        if groups:
            result[name] = {g: est(rs) for g, rs in groups.items()}
    result["per_category"] = [
        {"category": cat, **{m: e["mean"] for m, e in s["metrics"].items()}}
        for cat, s in result.get("by_category", {}).items()
    ]
    return result
