"""Overview: models and their aliases, the latest flow runs, headline metrics with CIs, the
datasets in use and their validation status, and the latest promotion decision."""

from __future__ import annotations

import streamlit as st

from dashboard.queries import (
    datasets_in_use,
    evaluations,
    flow_runs,
    latest_promotion,
    model_summaries,
)
from dashboard.records import RunRow
from dashboard.ui import (
    context,
    fmt_seconds,
    fmt_time,
    guarded,
    md_escape,
    sidebar_sources,
    stop_if_empty,
)


def _stages(run: RunRow) -> str:
    stages = (run.details or {}).get("stages") or {}
    if not isinstance(stages, dict) or not stages:
        return ""
    counts: dict[str, list[str]] = {}
    for stage, what in stages.items():
        counts.setdefault(str(what), []).append(str(stage))
    parts = [f"{len(v)} {k}" for k, v in sorted(counts.items())]
    failed = counts.get("failed")
    return ", ".join(parts) + (f" (failed: {', '.join(failed)})" if failed else "")


def main() -> None:
    """The page."""
    st.title("ReasonBrain")
    ctx = context()
    sidebar_sources(ctx)
    stop_if_empty(ctx)

    st.header("Models")
    models = model_summaries(ctx.db)
    if models:
        st.dataframe(
            [
                {
                    "model": m.name,
                    "production": f"v{m.aliases['production']}"
                    if "production" in m.aliases
                    else "—",
                    "staging": f"v{m.aliases['staging']}" if "staging" in m.aliases else "—",
                    "other aliases": ", ".join(
                        f"{a} → v{v}"
                        for a, v in m.aliases.items()
                        if a not in ("production", "staging")
                    ),
                    "versions": m.n_versions,
                    "newest": f"v{m.latest}",
                }
                for m in models
            ],
            hide_index=True,
        )
    else:
        st.caption("No model registered yet (`reasonbrain registry register DIR --name N`).")

    st.header("Latest promotion decision")
    promo = latest_promotion(ctx.db)
    if promo is None:
        st.caption("The promotion gate has not decided anything yet.")
    else:
        icon = (
            ":material/rocket_launch:" if promo.decision == "production" else ":material/science:"
        )
        st.markdown(
            f"{icon} **{promo.candidate or promo.name} → {promo.decision}** "
            f"({fmt_time(promo.created_at)})"
        )
        st.markdown(md_escape(promo.reason))
        if promo.difference is not None:
            ci = (
                f" [{promo.ci_low:+.3f}, {promo.ci_high:+.3f}]"
                if promo.ci_low is not None and promo.ci_high is not None
                else ""
            )
            vs = promo.incumbent or "the baselines"
            st.caption(
                f"{promo.metric}: {promo.difference:+.3f}{ci} vs {vs} over "
                f"{promo.n_pairs or '?'} paired samples; margin {promo.margin:+.3f}"
            )

    st.header("Headline metrics")
    evals = evaluations(ctx.db, limit=24)
    newest = {e.label: e for e in reversed(evals)}  # the newest evaluation per label
    latest = sorted(newest.values(), key=lambda e: e.created_at, reverse=True)[:8]
    if latest:
        cols = st.columns(min(4, len(latest)))
        for i, e in enumerate(latest):
            with cols[i % len(cols)]:
                if e.headline is not None and e.primary:
                    st.metric(f"{e.label} · {e.primary}", f"{e.headline.mean:.3f}")
                    ci = (
                        f"95 % CI [{e.headline.ci_low:.3f}, {e.headline.ci_high:.3f}] · "
                        if e.headline.ci_low is not None and e.headline.ci_high is not None
                        else ""
                    )
                    st.caption(f"{ci}n = {e.headline.n or e.n_samples} · {e.split}")
                else:
                    st.metric(e.label, "—")
    else:
        st.caption("No evaluation recorded yet.")

    st.header("Flow runs")
    runs = flow_runs(ctx.db, limit=10)
    if runs:
        st.dataframe(
            [
                {
                    "status": r.status,
                    "flow": r.kind,
                    "run": r.id,
                    "started": fmt_time(r.started_at),
                    "took": fmt_seconds(r.seconds),
                    "stages": _stages(r),
                    "error": r.error or "",
                }
                for r in runs
            ],
            hide_index=True,
        )
    else:
        st.caption("No flow has run yet (`reasonbrain pipeline run`).")

    st.header("Datasets in use")
    datasets = datasets_in_use(ctx.db)
    if datasets:
        st.dataframe(
            [
                {
                    "validation": d.validation_status,
                    "dataset": d.name,
                    "version": d.version,
                    "splits": ", ".join(f"{k} {v}" for k, v in d.split_counts.items()),
                    "used by": "; ".join(d.used_by),
                    "created": fmt_time(d.created_at),
                }
                for d in datasets
            ],
            hide_index=True,
        )
    else:
        st.caption("No dataset version recorded yet.")


guarded(main)
