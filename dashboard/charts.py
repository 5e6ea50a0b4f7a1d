"""Altair (Vega-Lite) charts of the dashboard; Streamlit renders them natively.

Each builder takes plain rows and returns a chart; none touches the database or Streamlit, so
they are unit-testable by their Vega-Lite spec.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import altair as alt
import pandas as pd

#: verdict colours shared by every chart (correct green; the three wrong outcomes warm)
VERDICT_COLOURS: dict[str, str] = {
    "target": "#2e7d32",
    "no_change": "#9e9e9e",
    "wrong_object": "#ef6c00",
    "wrong_change": "#c62828",
    "unverifiable": "#6a1b9a",
    "tie": "#795548",
    "faint_edit": "#90a4ae",
    "collateral_edit": "#f9a825",
    "background_changed": "#ad1457",
    "no_output": "#424242",
    "none": "#bdbdbd",
}


#: room around the plot for the title, axes and legend (Streamlit sizes the whole element)
FRAME_PX = 110


def container_height(chart: alt.TopLevelMixin) -> int:
    """The element height to give ``st.altair_chart`` so the plot keeps its own height."""
    height = getattr(chart, "height", None)
    return (height if isinstance(height, int) else 300) + FRAME_PX


def ci_bars(rows: Sequence[Mapping[str, Any]], *, metric: str, group: str) -> alt.LayerChart:
    """Means with CI error bars per group, one bar per evaluation side by side.

    Args:
        rows: ``{"group", "evaluation", "mean", "ci_low", "ci_high", "n"}`` per bar.
        metric: the metric's name (axis title).
        group: what the groups are (axis title), e.g. ``category``.
    """
    df = pd.DataFrame(list(rows), columns=["group", "evaluation", "mean", "ci_low", "ci_high", "n"])
    base = alt.Chart(df).encode(
        x=alt.X("group:N", title=group, sort=None, axis=alt.Axis(labelAngle=-30)),
        xOffset=alt.XOffset("evaluation:N"),
        tooltip=[
            alt.Tooltip("evaluation:N"),
            alt.Tooltip("group:N", title=group),
            alt.Tooltip("mean:Q", format=".3f"),
            alt.Tooltip("ci_low:Q", format=".3f", title="CI low"),
            alt.Tooltip("ci_high:Q", format=".3f", title="CI high"),
            alt.Tooltip("n:Q"),
        ],
    )
    bars = base.mark_bar().encode(
        y=alt.Y("mean:Q", title=metric), color=alt.Color("evaluation:N", title="evaluation")
    )
    errors = base.mark_rule(strokeWidth=1.5, color="black").encode(y="ci_low:Q", y2="ci_high:Q")
    return alt.LayerChart(layer=[bars, errors], height=320)


def outcome_mix(rows: Sequence[Mapping[str, Any]]) -> alt.Chart:
    """Stacked shares of the verifier's nearest outcome per evaluation.

    Args:
        rows: ``{"evaluation", "outcome", "share"}``.
    """
    df = pd.DataFrame(list(rows), columns=["evaluation", "outcome", "share"])
    domain = [k for k in VERDICT_COLOURS if k in set(df["outcome"])]
    return (
        alt.Chart(df)
        .mark_bar()
        .encode(
            y=alt.Y("evaluation:N", title=None),
            x=alt.X("share:Q", title="share of samples", axis=alt.Axis(format="%")),
            color=alt.Color(
                "outcome:N",
                scale=alt.Scale(domain=domain, range=[VERDICT_COLOURS[k] for k in domain]),
            ),
            tooltip=["evaluation:N", "outcome:N", alt.Tooltip("share:Q", format=".1%")],
        )
        .properties(height=max(120, 48 * df["evaluation"].nunique()))
    )


def verdict_counts(counts: Mapping[str, int], labels: Mapping[str, str]) -> alt.Chart:
    """How many of the filtered samples got each automatic verdict."""
    df = pd.DataFrame(
        [{"verdict": k, "label": labels.get(k, k), "samples": n} for k, n in counts.items()],
        columns=["verdict", "label", "samples"],
    )
    domain = list(df["verdict"])
    return (
        alt.Chart(df)
        .mark_bar()
        .encode(
            x=alt.X("samples:Q", title="samples"),
            y=alt.Y("label:N", title=None, sort="-x"),
            color=alt.Color(
                "verdict:N",
                legend=None,
                scale=alt.Scale(
                    domain=domain, range=[VERDICT_COLOURS.get(k, "#1f77b4") for k in domain]
                ),
            ),
            tooltip=["label:N", "samples:Q"],
        )
        .properties(height=max(60, 26 * len(domain)), title="automatic verdicts (filtered)")
    )


def training_curves(rows: Sequence[Mapping[str, Any]]) -> alt.Chart:
    """Logged training values by step, one line per (run, metric).

    Args:
        rows: ``{"run", "name", "step", "value"}``.
    """
    df = pd.DataFrame(list(rows), columns=["run", "name", "step", "value"])
    return (
        alt.Chart(df)
        .mark_line(point=len(df) <= 200)
        .encode(
            x=alt.X("step:Q"),
            y=alt.Y("value:Q", title="value", scale=alt.Scale(zero=False)),
            color=alt.Color("name:N", title="metric"),
            strokeDash=alt.StrokeDash("run:N", title="run"),
            tooltip=["run:N", "name:N", "step:Q", alt.Tooltip("value:Q", format=".4f")],
        )
        .properties(height=320)
        .interactive()
    )


def paired_differences(rows: Sequence[Mapping[str, Any]], *, metric: str) -> alt.LayerChart:
    """Paired differences B − A with CIs per group, and the zero line.

    Args:
        rows: ``{"group", "diff", "ci_low", "ci_high", "n"}``.
    """
    df = pd.DataFrame(list(rows), columns=["group", "diff", "ci_low", "ci_high", "n"])
    base = alt.Chart(df).encode(
        y=alt.Y("group:N", title=None, sort=None),
        tooltip=[
            "group:N",
            alt.Tooltip("diff:Q", format="+.3f"),
            alt.Tooltip("ci_low:Q", format="+.3f"),
            alt.Tooltip("ci_high:Q", format="+.3f"),
            "n:Q",
        ],
    )
    points = base.mark_point(filled=True, size=80).encode(
        x=alt.X("diff:Q", title=f"B − A ({metric})")
    )
    rules = base.mark_rule(strokeWidth=2).encode(x="ci_low:Q", x2="ci_high:Q")
    zero = alt.Chart(pd.DataFrame({"x": [0.0]})).mark_rule(strokeDash=[4, 4]).encode(x="x:Q")
    return alt.LayerChart(layer=[rules, points, zero], height=max(80, 34 * len(df)))
