"""Metrics: per-category / per-family / per-hold-out means with CI error bars for one or more
evaluations, the verifier's outcome mix, two evaluations side by side with paired differences,
training curves from the runs' logs and the ablation table."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import charts
from dashboard.queries import (
    ablation_table,
    curves,
    evaluation_summary,
    evaluations,
    latest_ablation,
    train_runs,
)
from dashboard.records import Comparison, EvaluationInfo, group_estimates, summary_metric_names
from dashboard.samples import compare
from dashboard.ui import (
    Context,
    context,
    fmt_time,
    guarded,
    show_chart,
    sidebar_sources,
    stop_if_empty,
)

GROUPS = {"by_category": "category", "by_family": "family", "by_holdout": "hold-out"}


@st.cache_data(ttl=600, show_spinner="Bootstrapping paired differences…", max_entries=32)
def _compare(_ctx: Context, db_url: str, a: int, b: int, metric: str) -> Comparison:
    return compare(_ctx.db, a, b, metric)


def _groups(ctx: Context, chosen: list[EvaluationInfo]) -> None:
    summaries = {e.id: evaluation_summary(ctx.db, e.id) for e in chosen}
    names: list[str] = []
    for e in chosen:
        names += [m for m in summary_metric_names(summaries[e.id]) if m not in names]
    if not names:
        st.caption("These evaluations have no metric summary.")
        return
    default = chosen[0].primary if chosen[0].primary in names else names[0]
    metric = st.selectbox("Metric", names, index=names.index(default), key="mx_metric")
    tabs = st.tabs([f"By {g}" for g in GROUPS.values()])
    for tab, (group, title) in zip(tabs, GROUPS.items(), strict=True):
        with tab:
            rows = [
                {
                    "group": value,
                    "evaluation": e.label
                    if len(chosen) == len({c.label for c in chosen})
                    else e.title,
                    "mean": est.mean,
                    "ci_low": est.ci_low,
                    "ci_high": est.ci_high,
                    "n": n,
                }
                for e in chosen
                for value, est, n in group_estimates(summaries[e.id], group, metric)
            ]
            if not rows:
                st.caption(f"No per-{title} figures for {metric}.")
                continue
            show_chart(charts.ci_bars(rows, metric=metric, group=title))
            with st.expander("table"):
                st.dataframe(rows, hide_index=True)

    def rates(summary: dict[str, Any]) -> dict[str, float]:
        overall = summary.get("overall") or {}
        # verdict_rates: the verifier's outcome (bounds included); older summaries: nearest only
        return dict(overall.get("verdict_rates") or overall.get("outcome_rates") or {})

    mix = [
        {"evaluation": e.label, "outcome": k, "share": v}
        for e in chosen
        for k, v in rates(summaries[e.id]).items()
    ]
    if mix:
        st.subheader("Outcomes (the verifier's verdict mix)")
        show_chart(charts.outcome_mix(mix))


def _pairwise(ctx: Context, evals: list[EvaluationInfo]) -> None:
    st.header("Two evaluations, paired")
    if len(evals) < 2:
        st.caption("Needs two evaluations.")
        return
    by_id = {e.id: e for e in evals}
    ids = list(by_id)
    c1, c2 = st.columns(2)
    a = c1.selectbox(
        "A", ids, index=min(1, len(ids) - 1), key="mx_a", format_func=lambda i: by_id[i].title
    )
    b = c2.selectbox("B", ids, index=0, key="mx_b", format_func=lambda i: by_id[i].title)
    if a == b:
        st.caption("Pick two different evaluations.")
        return
    summary = evaluation_summary(ctx.db, b)
    names = summary_metric_names(summary)
    primary = by_id[b].primary
    if not names:
        return
    metric = st.selectbox(
        "Metric", names, index=names.index(primary) if primary in names else 0, key="mx_pmetric"
    )
    res = _compare(ctx, ctx.sources.db_url, a, b, metric)
    if res.overall is None:
        st.info("These two evaluations share no sample scored on this metric.")
        return
    d = res.overall
    arrow = "lower is better" if d.lower_is_better else "higher is better"
    lo, hi = d.diff.ci_low, d.diff.ci_high
    ci = f" [{lo:+.3f}, {hi:+.3f}]" if lo is not None and hi is not None else ""
    cols = st.columns(4)
    cols[0].metric(f"A · {by_id[a].label}", f"{d.mean_a:.3f}")
    cols[1].metric(f"B · {by_id[b].label}", f"{d.mean_b:.3f}")
    cols[2].metric("B − A", f"{d.diff.mean:+.3f}", help=f"95 % bootstrap CI{ci}; {arrow}")
    cols[3].metric("B better on", f"{d.b_better_share:.0%}", help="share of shared samples")
    verdict = "significant" if d.significant else "not significant (CI includes 0)"
    st.caption(f"{res.n_shared} shared samples · 95 % CI{ci} · {verdict}")
    rows = [{"group": "overall", "diff": d.diff.mean, "ci_low": lo, "ci_high": hi, "n": d.diff.n}]
    rows += [
        {
            "group": c,
            "diff": p.diff.mean,
            "ci_low": p.diff.ci_low,
            "ci_high": p.diff.ci_high,
            "n": p.diff.n,
        }
        for c, p in res.by_category.items()
    ]
    show_chart(charts.paired_differences(rows, metric=metric))
    if res.both is not None:
        st.dataframe(
            [
                {"": "A right", "B right": res.both, "B wrong": res.only_a},
                {"": "A wrong", "B right": res.only_b, "B wrong": res.neither},
            ],
            hide_index=True,
        )


def _training(ctx: Context) -> None:
    st.header("Training curves")
    runs = train_runs(ctx.db)
    if not runs:
        st.caption("No training run recorded yet.")
        return
    by_id = {r.id: r for r in runs}
    chosen = st.multiselect(
        "Runs",
        list(by_id),
        default=list(by_id)[:1],
        key="mx_runs",
        format_func=lambda i: f"{i} · {fmt_time(by_id[i].started_at)}",
    )
    points = curves(ctx.db, chosen)
    if not points:
        st.caption("These runs logged no stepped values.")
        return
    names = sorted({p.name for p in points})
    default = [n for n in names if n in ("loss", "val_loss")] or names[:2]
    shown = st.multiselect("Values", names, default=default, key="mx_curves")
    rows = [
        {"run": p.run_id, "name": p.name, "step": p.step, "value": p.value}
        for p in points
        if p.name in shown
    ]
    if rows:
        show_chart(charts.training_curves(rows))


def _ablation(ctx: Context) -> None:
    st.header("Ablation")
    run = latest_ablation(ctx.db)
    if run is None or not run.details:
        st.caption("No ablation recorded (`reasonbrain ablate`).")
        return
    budget = run.details.get("budget") or {}
    st.caption(
        f"run {run.id} · {fmt_time(run.started_at)} · "
        f"{budget.get('max_steps', '?')} steps × batch {budget.get('batch_size', '?')}"
    )
    st.dataframe(ablation_table(run.details), hide_index=True)


def main() -> None:
    """The page."""
    st.title("Metrics")
    ctx = context()
    sidebar_sources(ctx)
    stop_if_empty(ctx)
    evals = evaluations(ctx.db)
    if evals:
        by_id = {e.id: e for e in evals}
        newest: dict[str, int] = {}
        for e in evals:
            newest.setdefault(e.label, e.id)
        chosen_ids = st.multiselect(
            "Evaluations",
            list(by_id),
            default=list(newest.values())[:3],
            key="mx_evals",
            format_func=lambda i: by_id[i].title,
        )
        chosen = [by_id[i] for i in chosen_ids]
        if chosen:
            _groups(ctx, chosen)
        else:
            st.caption("Pick one or more evaluations.")
        _pairwise(ctx, evals)
    else:
        st.info("No evaluations recorded yet (`make demo`).")
    _training(ctx)
    _ablation(ctx)


guarded(main)
