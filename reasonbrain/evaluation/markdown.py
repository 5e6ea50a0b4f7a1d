"""Markdown cells and tables shared by the evaluation and ablation reports."""

from __future__ import annotations

from typing import Any


def fmt(value: float | None) -> str:
    """A number for a table cell: 3 decimals, 1 from 100 up, ``—`` for none."""
    if value is None:
        return "—"
    return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"


def cell(est: dict[str, Any] | None) -> str:
    """``mean [CI low, CI high]`` of an estimate (``bootstrap.Estimate.to_dict``)."""
    if not est:
        return "—"
    lo, hi = est.get("ci_low"), est.get("ci_high")
    ci = f" [{fmt(lo)}, {fmt(hi)}]" if lo is not None and hi is not None else ""
    return f"{fmt(est['mean'])}{ci}"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table (pipes in cells escaped), followed by a blank line."""
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return [*out, ""]
