"""Figures for the ablation ladder (``reasonbrain ablate``): rungs × training seeds.

Each rung of the ladder is trained once per training seed and evaluated on the same split; this
module turns those evaluations into the report's numbers:

- :func:`headline` — the figures quoted for one evaluation (``metrics.json``): reasoning accuracy
  under both verifier rules with their bootstrap CIs, per hold-out type, the "no change" rate,
  preservation;
- :func:`over_seeds` — a figure across seeds: the mean, the sample standard deviation (the
  seed-to-seed spread, ``ddof=1``), min and max, and every seed's value; with one seed the spread
  is undefined (``None``) and the bootstrap CI of that seed says how precise it is;
- :func:`paired_vs` — a rung against the reference rung (``full``) on the samples both scored,
  seed by seed (same training seed, same samples): the paired bootstrap difference, then its mean
  and spread across seeds and in how many seeds the CI excludes 0;
- :func:`markdown` — ``reports/ablation.md``.

A difference is *real* when it is larger than the seed-to-seed spread and its paired CI excludes
0 in every seed; the report shows both so a reader can tell.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from reasonbrain.evaluation.bootstrap import paired_difference, paired_values
from reasonbrain.evaluation.markdown import fmt, table

#: Figures taken from each evaluation (name → where in ``metrics.json``).
HEADLINE_FIGURES: dict[str, tuple[str, ...]] = {
    "reasoning_acc": ("overall", "metrics", "reasoning_acc"),
    "reasoning_acc_nearest": ("overall", "metrics", "reasoning_acc_nearest"),
    "reasoning_acc_seen": ("by_holdout", "seen", "metrics", "reasoning_acc"),
    "reasoning_acc_phrasing": ("by_holdout", "phrasing", "metrics", "reasoning_acc"),
    "reasoning_acc_combination": ("by_holdout", "combination", "metrics", "reasoning_acc"),
    "nearest_seen": ("by_holdout", "seen", "metrics", "reasoning_acc_nearest"),
    "nearest_phrasing": ("by_holdout", "phrasing", "metrics", "reasoning_acc_nearest"),
    "nearest_combination": ("by_holdout", "combination", "metrics", "reasoning_acc_nearest"),
    "preservation_psnr": ("overall", "metrics", "preservation_psnr"),
}

#: Per-sample metrics compared with the reference rung.
PAIRED_METRICS: tuple[str, ...] = ("reasoning_acc", "reasoning_acc_nearest")


def _dig(doc: Mapping[str, Any], path: Sequence[str]) -> Any:
    node: Any = doc
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def headline(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The report's figures of one evaluation: ``{name: {mean, ci_low, ci_high, n}}`` plus
    ``no_change_rate`` (share of verifiable outputs judged "no change", calibrated rule)."""
    out: dict[str, Any] = {}
    for name, path in HEADLINE_FIGURES.items():
        est = _dig(metrics, path)
        if isinstance(est, Mapping) and "mean" in est:
            out[name] = dict(est)
    rates = _dig(metrics, ("overall", "verdict_rates"))
    if isinstance(rates, Mapping):
        out["no_change_rate"] = {"mean": float(rates.get("no_change", 0.0))}
    return out


def over_seeds(values: Mapping[int, float]) -> dict[str, Any]:
    """Mean, sample standard deviation (``None`` for one seed), min, max and the values by seed."""
    xs = [float(v) for v in values.values()]
    if not xs:
        raise ValueError("no seeds to summarise")
    mean = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else None
    return {
        "mean": mean,
        "sd": sd,
        "min": min(xs),
        "max": max(xs),
        "n_seeds": len(xs),
        "values": {str(k): float(v) for k, v in sorted(values.items())},
    }


def paired_vs(
    reference: Mapping[int, Mapping[str, Mapping[str, Any]]],
    rung: Mapping[int, Mapping[str, Mapping[str, Any]]],
    metric: str,
    *,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any] | None:
    """``rung − reference`` on ``metric``, seed by seed, over the samples both scored.

    Args:
        reference / rung: training seed → sample id → ``samples.jsonl`` row.
        metric: a per-sample metric (``row["metrics"][metric]``).

    Returns:
        ``{"per_seed": {seed: PairedDifference dict}, "mean", "sd", "significant_seeds",
        "seeds"}``, or ``None`` when no seed has shared samples with the metric.
    """
    per_seed: dict[str, Any] = {}
    for s in sorted(set(reference) & set(rung)):
        a, b = paired_values(reference[s], rung[s], metric)
        if not a:
            continue
        pd = paired_difference(
            a,
            b,
            metric=metric,
            resamples=resamples,
            level=level,
            seed=seed,
        )
        per_seed[str(s)] = pd.to_dict()
    if not per_seed:
        return None
    spread = over_seeds({int(k): v["diff"]["mean"] for k, v in per_seed.items()})
    return {
        "per_seed": per_seed,
        "mean": spread["mean"],
        "sd": spread["sd"],
        "significant_seeds": sum(bool(v["significant"]) for v in per_seed.values()),
        "seeds": len(per_seed),
    }


# ------------------------------------------------------------------------------ markdown
def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}"


def _figure(rung: Mapping[str, Any], name: str) -> str:
    """``mean ± sd (min–max)`` over seeds, or ``mean [CI]`` for one seed, in percent."""
    summary = (rung.get("summary") or {}).get(name)
    if not summary:
        return "—"
    if summary["n_seeds"] > 1 and summary["sd"] is not None:
        return (
            f"{_pct(summary['mean'])} ± {_pct(summary['sd'])} "
            f"({_pct(summary['min'])}–{_pct(summary['max'])})"
        )
    only = next(iter(summary["values"]))
    est = ((rung.get("seeds") or {}).get(only) or {}).get("eval", {}).get(name) or {}
    lo, hi = est.get("ci_low"), est.get("ci_high")
    ci = f" [{_pct(lo)}, {_pct(hi)}]" if lo is not None and hi is not None else ""
    return f"{_pct(summary['mean'])}{ci}"


def _means(rung: Mapping[str, Any], names: Sequence[str]) -> str:
    """``a / b / c``: the means (over seeds) of several figures, in percent."""
    summary = rung.get("summary") or {}
    return " / ".join(_pct((summary.get(n) or {}).get("mean")) for n in names)


def _delta(rung: Mapping[str, Any], metric: str) -> str:
    d = (rung.get("paired") or {}).get(metric)
    if not d:
        return "—"
    if d["seeds"] == 1:
        only = next(iter(d["per_seed"].values()))
        diff = only["diff"]
        ci = (
            f" [{100 * diff['ci_low']:+.1f}, {100 * diff['ci_high']:+.1f}]"
            if diff["ci_low"] is not None
            else ""
        )
        return f"{100 * diff['mean']:+.1f}{ci}" + (" ✱" if only["significant"] else "")
    sd = f" ± {_pct(d['sd'])}" if d["sd"] is not None else ""
    return f"{100 * d['mean']:+.1f}{sd} (CI excludes 0 in {d['significant_seeds']}/{d['seeds']})"


def markdown(report: Mapping[str, Any], descriptions: Mapping[str, str]) -> str:
    """``reports/ablation.md`` from the ablation report (see ``reasonbrain.training.ablation``)."""
    rungs: Mapping[str, Any] = report["rungs"]
    budget = report.get("budget", {})
    seeds = report.get("seeds") or []
    ev = report.get("eval") or {}
    ref = report.get("reference", "full")
    lines = [
        f"# Ablation ladder ({budget.get('max_steps')} steps × batch {budget.get('batch_size')})",
        "",
        f"Training seeds: {', '.join(map(str, seeds)) or '—'}. "
        + (
            f"Evaluated on the `{ev.get('split')}` split"
            + (f" (first {ev['limit']} samples)" if ev.get("limit") else "")
            + " with the calibrated verifier. "
            if ev
            else "Not evaluated. "
        )
        + "Accuracy in percent: with one seed, mean [95 % bootstrap CI]; with several, mean ± "
        "standard deviation across seeds (min–max). Δ vs "
        f"`{ref}`: paired difference on the same samples and seed, in points [95 % CI], ✱ when "
        "the CI excludes 0; with several seeds, mean ± sd of the per-seed differences and in how "
        "many seeds the CI excludes 0. The nearest-candidate rule (the verifier without its "
        "bounds) is shown beside it: it still separates models that all score 0 calibrated.",
        "",
    ]
    head = ["rung", "what", "seeds", "train loss start → end", "reasoning acc", f"Δ vs {ref}"]
    head += ["seen", "held-out phrasing", "held-out combination", "nearest rule"]
    head += [f"Δ vs {ref}, nearest rule", "nearest rule: seen / phrasing / combination"]
    head += ["no change"]
    rows = []
    for name, r in rungs.items():
        m = r.get("metrics") or {}
        n = len(r.get("seeds") or {}) or "—"
        loss = f"{fmt(m.get('loss_start'))} → {fmt(m.get('loss_end'))}" if m else "—"
        rows.append(
            [
                f"`{name}`",
                descriptions.get(name, r.get("description", "")),
                str(n),
                loss,
                _figure(r, "reasoning_acc"),
                "—" if name == ref else _delta(r, "reasoning_acc"),
                _figure(r, "reasoning_acc_seen"),
                _figure(r, "reasoning_acc_phrasing"),
                _figure(r, "reasoning_acc_combination"),
                _figure(r, "reasoning_acc_nearest"),
                "—" if name == ref else _delta(r, "reasoning_acc_nearest"),
                _means(r, ("nearest_seen", "nearest_phrasing", "nearest_combination")),
                _figure(r, "no_change_rate"),
            ]
        )
    lines += table(head, rows)
    return "\n".join(lines).rstrip() + "\n"
