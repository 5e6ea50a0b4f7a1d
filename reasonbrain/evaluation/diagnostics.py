"""Learning diagnostics for the comparison report (``reports/compare.md``; issue 13, item 6).

Each function returns the Markdown lines of one section, from what an evaluation directory holds
(``metrics.json`` aggregates, ``samples.jsonl`` rows) and, for the training curves, the step log
beside the evaluated model:

- :func:`rules_section` — reasoning accuracy under the calibrated verifier next to the
  nearest-candidate rule it replaced, per run (old vs new side by side);
- :func:`family_section` — reasoning accuracy per ReasonSynth transformation family;
- :func:`verdict_section` — the confusion of verdicts: how many outputs got each
  ``Verdict.outcome`` (target, no change, wrong object, wrong change, tie, a failed bound, no
  output), per run and per hold-out type;
- :func:`gallery_section` — the worst failures per family (per category for benchmarks without
  families): source, output and target side by side with the verdict and the numbers behind it;
- :func:`curves_section` — training curves (:mod:`~reasonbrain.evaluation.curves`).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reasonbrain.evaluation.curves import curve_table, draw_curves, find_train_log, read_train_log
from reasonbrain.evaluation.markdown import cell, fmt, table
from reasonbrain.evaluation.scoring import LOWER_IS_BETTER
from reasonbrain.evaluation.verifier import OUTCOMES

if TYPE_CHECKING:
    from reasonbrain.evaluation.report import Run

#: What each verdict means, for the report's legend.
OUTCOME_HELP: dict[str, str] = {
    "target": "correct",
    "no_change": "nearest to the unchanged source",
    "wrong_object": "nearest to the right change on the wrong object",
    "wrong_change": "nearest to a wrong change on the right object",
    "tie": "equally near two outcomes",
    "faint_edit": "nearest to the target, but too faint (more of the edit left than the bound)",
    "collateral_edit": "nearest to the target, but the twin object was edited too",
    "background_changed": "nearest to the target, but the background was not preserved",
    "no_output": "no usable output (missing or unreadable prediction)",
    "unverifiable": "the sample cannot be verified (left out of the accuracy)",
}


def _rel(target: Path, base: Path) -> str:
    return Path(os.path.relpath(target.resolve(), base.resolve())).as_posix()


def _group_metric(run: Run, group: str, key: str, metric: str) -> dict[str, Any] | None:
    est = run.metrics.get(group, {}).get(key, {}).get("metrics", {}).get(metric)
    return est if isinstance(est, dict) else None


# ------------------------------------------------------------------------------ old vs new
def rules_section(runs: list[Run]) -> list[str]:
    """Reasoning accuracy under both verifier rules, side by side (ReasonSynth runs only)."""
    rows = []
    for r in runs:
        overall = r.metrics.get("overall", {}).get("metrics", {})
        new, old = overall.get("reasoning_acc"), overall.get("reasoning_acc_nearest")
        if not new:
            continue
        gap = f"{100 * (old['mean'] - new['mean']):+.1f}" if old else "—"
        rows.append([r.name, str(new["n"]), cell(new), cell(old), gap])
    if not rows:
        return []
    return [
        "## Reasoning accuracy: calibrated verifier vs the nearest-candidate rule",
        "",
        "Calibrated = nearest to the target *and* most of the edit done inside the mask (at most "
        "`edit_bound` of the source→target distance left), no collateral edit of the twin, "
        "background preserved (README, “The verifier”); the nearest-candidate rule alone (the "
        "rule before the bounds) rewarded blank images.",
        "",
        *table(
            [
                "run",
                "n",
                "calibrated (reasoning_acc)",
                "nearest rule (reasoning_acc_nearest)",
                "nearest − calibrated, points",
            ],
            rows,
        ),
    ]


# ------------------------------------------------------------------------------ per family
def _family_categories(runs: list[Run]) -> dict[str, str]:
    out: dict[str, str] = {}
    for r in runs:
        for row in r.rows.values():
            if row.get("family") is not None:
                out.setdefault(str(row["family"]), str(row.get("category")))
    return out


def family_section(runs: list[Run]) -> list[str]:
    """Reasoning accuracy per transformation family, runs as columns."""
    families = sorted({f for r in runs for f in r.metrics.get("by_family", {})})
    if not families:
        return []
    cats = _family_categories(runs)
    families.sort(key=lambda f: (cats.get(f, ""), f))
    rows = []
    for f in families:
        ns = {str(e["n"]) for r in runs if (e := _group_metric(r, "by_family", f, "reasoning_acc"))}
        rows.append(
            [cats.get(f, "—"), f, "/".join(sorted(ns)) or "—"]
            + [cell(_group_metric(r, "by_family", f, "reasoning_acc")) for r in runs]
        )
    return [
        "## Reasoning accuracy by family",
        "",
        "Calibrated verifier; mean [95 % CI] over the family's verifiable samples (n).",
        "",
        *table(["category", "family", "n", *[r.name for r in runs]], rows),
    ]


# ------------------------------------------------------------------------------ verdicts
def outcome_of(row: dict[str, Any]) -> str | None:
    """A row's verdict: ``Verdict.outcome`` (rows written before it existed: the nearest
    outcome), ``unverifiable``, or ``None`` for rows without a verifier."""
    v = row.get("verifier")
    if not v:
        return None
    if not v.get("verifiable", True):
        return "unverifiable"
    return str(v.get("outcome") or v.get("nearest"))


def _counts_row(name: str, rows: list[dict[str, Any]], columns: list[str]) -> list[str]:
    counts = Counter(o for row in rows if (o := outcome_of(row)) is not None)
    scored = sum(n for k, n in counts.items() if k != "unverifiable")
    cells = []
    for k in columns:
        n = counts.get(k, 0)
        share = f" ({100 * n / scored:.0f} %)" if scored and k != "unverifiable" and n else ""
        cells.append(f"{n}{share}")
    return [name, str(scored), *cells]


def verdict_section(runs: list[Run]) -> list[str]:
    """The confusion of verdicts: outcome counts (and shares of the verifiable samples) per run,
    then per run and hold-out type."""
    seen = {o for r in runs for row in r.rows.values() if (o := outcome_of(row))}
    if not seen:
        return []
    columns = [k for k in (*OUTCOMES, "unverifiable") if k in seen]
    columns += sorted(seen - set(columns))
    header = ["run", "verifiable", *columns]
    out = [
        "## Confusion of verdicts",
        "",
        "How many outputs got each verdict (share of the verifiable samples). "
        + "; ".join(f"`{k}`: {OUTCOME_HELP[k]}" for k in columns if k in OUTCOME_HELP)
        + ".",
        "",
        *table(header, [_counts_row(r.name, list(r.rows.values()), columns) for r in runs]),
    ]
    holdouts = sorted(
        {str(h) for r in runs for row in r.rows.values() if (h := row.get("holdout"))}
    )
    if holdouts:
        rows = []
        for r in runs:
            for h in holdouts:
                group = [row for row in r.rows.values() if row.get("holdout") == h]
                if group:
                    rows.append(_counts_row(f"{r.name} · {h}", group, columns))
        out += ["### By hold-out type", "", *table(header, rows)]
    return out


# ------------------------------------------------------------------------------ gallery
def badness(row: dict[str, Any], keys: list[str]) -> tuple[float, ...]:
    """Sort key, worst first: wrong before right, no output first, then the margin by which a
    wrong outcome was nearer (most negative first), then the key metrics."""
    m = row["metrics"]
    v = row.get("verifier") or {}
    out: list[float] = []
    if m.get("reasoning_acc") is not None:
        out.append(m["reasoning_acc"])
        margin = v.get("margin")
        out.append(float("-inf") if row.get("image") is None else float(margin or 0.0))
    for k in keys:
        if m.get(k) is not None:
            out.append(-m[k] if k in LOWER_IS_BETTER else m[k])
    return tuple(out)


def _is_failure(row: dict[str, Any]) -> bool:
    m = row["metrics"]
    for k in ("reasoning_acc", "instruction_alignment"):
        if m.get(k) is not None:
            return bool(m[k] < 0.5)
    return True  # no notion of failure: the worst by the key metrics


def _why(row: dict[str, Any], keys: list[str]) -> str:
    v = row.get("verifier")
    if v:
        parts = [f"nearest {v.get('nearest')}"]
        for k, label in (("edit_ratio", "edit left"), ("background_error", "background")):
            if v.get(k) is not None:
                parts.append(f"{label} {v[k]:.2f}")
        if v.get("collateral_ratio") is not None:
            parts.append(f"twin {v['collateral_ratio']:.2f}")
        pred = row.get("prediction") or {}
        if pred.get("status") not in (None, "ok"):
            parts.append(f"prediction {pred['status']}")
        return ", ".join(parts)
    return ", ".join(f"{k}={fmt(row['metrics'].get(k))}" for k in keys[:2])


def gallery_section(
    runs: list[Run], keys: list[str], per_family: int, per_category: int, base: Path
) -> list[str]:
    """The worst failures per family (ReasonSynth) or the worst samples per category."""
    out: list[str] = []
    for r in runs:
        by_family = any(row.get("family") is not None for row in r.rows.values())
        per = per_family if by_family else per_category
        if per <= 0:
            continue
        groups: dict[str, list[dict[str, Any]]] = {}
        for row in r.rows.values():
            g = row.get("family") if by_family else row.get("category")
            groups.setdefault(str(g), []).append(row)
        info = r.metrics.get("run", {})
        data = Path(str(info.get("data", ".")))
        rows = []
        for g in sorted(groups):
            pool = [row for row in groups[g] if not by_family or _is_failure(row)]
            for row in sorted(pool, key=lambda row: badness(row, keys))[:per]:
                src, tgt = record_images(data, info.get("split"), row["id"])
                out_img = r.path / row["image"] if row.get("image") else None
                rows.append(
                    [
                        g,
                        row["id"],
                        str(row.get("instruction", ""))[:80],
                        f"![source]({_rel(src, base)})" if src else "—",
                        f"![output]({_rel(out_img, base)})" if out_img else "(no output)",
                        f"![target]({_rel(tgt, base)})" if tgt else "—",
                        outcome_of(row) or "—",
                        _why(row, keys),
                        (row.get("rationale") or "—")[:80],
                    ]
                )
        bound = r.metrics.get("config", {}).get("verifier", {}).get("edit_bound")
        title = (
            f"The {per} worst failure(s) per family"
            if by_family
            else f"The {per} worst sample(s) per category"
        )
        legend = (
            f" (“edit left”: share of the source→target distance still to go inside the mask; "
            f"the bound is {bound:g})"
            if isinstance(bound, int | float)
            else ""
        )
        header = ["family" if by_family else "category", "id", "instruction", "source"]
        header += ["output", "target", "verdict", "why", "rationale"]
        out += [f"### {r.name}", ""]
        out += [f"{title}{legend}.", "", *table(header, rows)] if rows else ["No failures.", ""]
    return ["## Failure gallery", "", *out] if out else []


_RECORD_CACHE: dict[tuple[str, str], dict[str, tuple[str, str]]] = {}


def record_images(data: Path, split: Any, sample_id: str) -> tuple[Path | None, Path | None]:
    """Source and target image paths of a record, when the dataset is still on disk."""
    key = (str(data), str(split))
    if key not in _RECORD_CACHE:
        found: dict[str, tuple[str, str]] = {}
        manifest = data / f"{split}.jsonl"
        if manifest.is_file():
            for line in manifest.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    try:
                        obj = json.loads(line)
                        found[str(obj["id"])] = (obj["src_image"], obj["tgt_image"])
                    except (ValueError, KeyError):
                        continue
        _RECORD_CACHE[key] = found
    paths = _RECORD_CACHE[key].get(sample_id)
    if paths is None:
        return None, None
    return data / paths[0], data / paths[1]


# ------------------------------------------------------------------------------ curves
def curves_dir(out: Path) -> Path:
    """Where the report's training-curve charts go: ``<report stem>-curves/`` beside it."""
    return out.parent / f"{out.stem}-curves"


def curves_section(runs: list[Run], out: Path, *, draw: bool = True) -> list[str]:
    """Training curves of each evaluated model whose step log lies beside its directory (a chart
    in :func:`curves_dir` when ``draw``, and a table)."""
    lines: list[str] = []
    charts = curves_dir(out)
    if charts.is_dir():  # charts of an earlier report may name runs no longer compared
        for old in charts.glob("*.png"):
            old.unlink()
    for i, r in enumerate(runs):
        resolved = r.metrics.get("run", {}).get("model_resolved") or {}
        log = find_train_log(resolved.get("path") if resolved.get("kind") == "directory" else None)
        if log is None:
            continue
        rows = read_train_log(log)
        if not rows:
            continue
        png = charts / f"{i}-{re.sub(r'[^A-Za-z0-9._-]+', '_', r.name)}.png"
        drawn = draw and draw_curves(rows, png, f"{r.name}: {len(rows)} steps")
        header, body = curve_table(rows)
        lines += [f"### {r.name}", "", f"Step log: `{log}`.", ""]
        if drawn:
            lines += [f"![training curves of {r.name}]({_rel(png, out.parent)})", ""]
        lines += table(header, body)
    return ["## Training curves", "", *lines] if lines else []
