"""The comparison report: ``reasonbrain report --runs A B C … --out reports/compare.md``.

Reads evaluation output directories (``metrics.json`` + ``samples.jsonl``) and writes one
Markdown file:

1. the runs (model, data, split, samples, judge) and the configuration notes;
2. an overall table — every headline metric as ``mean [CI low, CI high]`` per run — and reasoning
   accuracy under the calibrated verifier next to the nearest-candidate rule it replaced;
3. per-category tables (and per hold-out type when ReasonSynth rows are present) for the key
   metrics;
4. learning diagnostics (:mod:`~reasonbrain.evaluation.diagnostics`): accuracy per family and
   the confusion of verdicts;
5. paired comparisons of every run against the first one on the samples both scored
   (difference of means with its bootstrap CI, share of samples where the run is better) — only
   between runs of the same split of the same dataset version (the sha256 of the split manifest,
   recorded in ``metrics.json``); other runs are listed as not comparable, never paired by id;
6. a failure gallery: the worst failures per family (per category without families) for each
   run — source, output and target images referenced by relative paths, the verdict and why;
7. training curves of each evaluated model whose step log (``train_log.jsonl``) lies beside its
   directory: a PNG chart in ``<report stem>-curves/`` and a short table.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reasonbrain.errors import ConfigError
from reasonbrain.evaluation import diagnostics
from reasonbrain.evaluation.aggregate import HEADLINE
from reasonbrain.evaluation.bootstrap import paired_difference, paired_values
from reasonbrain.evaluation.markdown import cell, fmt, table
from reasonbrain.evaluation.scoring import LOWER_IS_BETTER

#: Metrics that get per-category tables and paired comparisons, in order of preference.
KEY_METRICS: tuple[str, ...] = (
    "reasoning_acc",
    "reasoning_acc_nearest",
    "instruction_alignment",
    "mllm_score",
    "clip_t",
    "clip_i",
    "dino",
    "l1",
    "edit_error",
    "preservation_psnr",
    "bg_psnr",
)


@dataclass
class Run:
    """One evaluation output directory."""

    name: str
    path: Path
    metrics: dict[str, Any]
    rows: dict[str, dict[str, Any]]


def load_run(path: Path | str) -> Run:
    """Read an evaluation directory.

    Raises:
        ConfigError: it has no ``metrics.json`` / ``samples.jsonl`` (not an evaluation output).
    """
    p = Path(path)
    mfile, sfile = p / "metrics.json", p / "samples.jsonl"
    if not mfile.is_file() or not sfile.is_file():
        raise ConfigError(
            "not an evaluation output directory (no metrics.json/samples.jsonl)",
            where=str(p),
            fix="pass directories written by `reasonbrain evaluate --out DIR`",
        )
    metrics = json.loads(mfile.read_text(encoding="utf-8"))
    rows: dict[str, dict[str, Any]] = {}
    for line in sfile.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                row = json.loads(line)
            except ValueError:
                continue  # a partial last line of an interrupted run
            rows[str(row["id"])] = row
    return Run(p.name, p, metrics, rows)


def _present(runs: list[Run], section: dict[str, Any] | None = None) -> list[str]:
    names: set[str] = set()
    for r in runs:
        names.update(r.metrics.get("overall", {}).get("metrics", {}))
    if "chance" in names:
        names.discard("chance")
    return [m for m in HEADLINE if m in names] + sorted(names - set(HEADLINE))


def _arrow(metric: str) -> str:
    return "↓" if metric in LOWER_IS_BETTER else "↑"


def _rel(target: Path, base: Path) -> str:
    return Path(os.path.relpath(target.resolve(), base.resolve())).as_posix()


def render_report(
    run_dirs: list[Path],
    out: Path,
    *,
    gallery_per_category: int = 3,
    gallery_per_family: int = 1,
    resamples: int = 1000,
    level: float = 0.95,
    curves: bool = True,
) -> str:
    """Write the Markdown comparison of ``run_dirs`` to ``out`` (atomically); returns the text.

    ``curves`` draws the training-curve charts into ``<out stem>-curves/`` (see the module
    docstring); without it the curves are tables only.

    Raises:
        ConfigError: no runs, or a directory that is not an evaluation output.
    """
    from reasonbrain.data.schema import atomic_write_text

    if not run_dirs:
        raise ConfigError("no runs to compare", where="--runs", fix="pass one or more run dirs")
    runs = [load_run(d) for d in run_dirs]
    base = out.parent
    lines = ["# Evaluation comparison", ""]
    lines += _runs_section(runs)
    metrics = _present(runs)
    keys = [m for m in KEY_METRICS if m in metrics][:3]
    lines += [
        "## Overall",
        "",
        f"Mean [{level:.0%} bootstrap CI] per run; ↑/↓: higher/lower is better.",
        "",
    ]
    lines += table(
        ["run", "n", *[f"{m} {_arrow(m)}" for m in metrics]],
        [
            [r.name, str(r.metrics.get("overall", {}).get("n", 0))]
            + [cell(r.metrics.get("overall", {}).get("metrics", {}).get(m)) for m in metrics]
            for r in runs
        ],
    )
    chance = [
        r.metrics["overall"]["metrics"]["chance"]["mean"]
        for r in runs
        if "chance" in r.metrics.get("overall", {}).get("metrics", {})
    ]
    if chance:
        lines += [f"Chance level of reasoning accuracy: {chance[0]:.3f}.", ""]
    lines += diagnostics.rules_section(runs)
    for group, title in (("by_category", "category"), ("by_holdout", "hold-out type")):
        groups = sorted({g for r in runs for g in r.metrics.get(group, {})})
        if not groups:
            continue
        for m in keys:
            lines += [f"## {m} {_arrow(m)} by {title}", ""]
            lines += table(
                ["run", *groups],
                [
                    [r.name]
                    + [
                        cell(r.metrics.get(group, {}).get(g, {}).get("metrics", {}).get(m))
                        for g in groups
                    ]
                    for r in runs
                ],
            )
    lines += diagnostics.family_section(runs)
    lines += diagnostics.verdict_section(runs)
    if len(runs) > 1:
        lines += _paired_section(runs, keys, resamples, level)
    lines += diagnostics.gallery_section(runs, keys, gallery_per_family, gallery_per_category, base)
    lines += diagnostics.curves_section(runs, out, draw=curves)
    text = "\n".join(lines).rstrip() + "\n"
    atomic_write_text(out, text)
    return text


def _runs_section(runs: list[Run]) -> list[str]:
    rows = []
    notes: list[str] = []
    for r in runs:
        info = r.metrics.get("run", {})
        cfg = r.metrics.get("config", {})
        judges = ", ".join(
            f"{j['judge_id']} ({j['prompt_version']})" for j in cfg.get("judge", {}).get("used", [])
        )
        pinned = (info.get("model_resolved") or {}).get("ref")
        rows.append(
            [
                r.name,
                str(pinned or info.get("model", "?")),
                f"{Path(str(info.get('data', '?'))).name}/{info.get('split', '?')}",
                str(info.get("samples", len(r.rows))),
                judges or "—",
            ]
        )
        for name, value in cfg.get("models", {}).items():
            if isinstance(value, str) and value.startswith("skipped"):
                notes.append(f"- {r.name}: {name} {value}")
    out = ["## Runs", ""]
    out += table(["run", "model", "data/split", "samples", "judge"], rows)
    if notes:
        out += ["Metrics not computed:", "", *sorted(set(notes)), ""]
    return out


def _paired_section(runs: list[Run], keys: list[str], resamples: int, level: float) -> list[str]:
    ref = runs[0]
    out = [
        f"## Paired comparison against `{ref.name}`",
        "",
        f"Difference of means (run − {ref.name}) over the samples both runs scored, with its "
        f"{level:.0%} paired bootstrap CI; ✱ marks a CI that excludes 0.",
        "",
    ]
    rows = []
    skipped: list[str] = []
    for other in runs[1:]:
        why = not_comparable(ref, other)
        if why is not None:
            skipped.append(f"- `{other.name}` is not paired with `{ref.name}`: {why}.")
            continue
        for m in keys:
            a, b = paired_values(ref.rows, other.rows, m)
            if not a:
                continue
            pd = paired_difference(
                a,
                b,
                metric=m,
                lower_is_better=m in LOWER_IS_BETTER,
                resamples=resamples,
                level=level,
            )
            rows.append(
                [
                    other.name,
                    f"{m} {_arrow(m)}",
                    str(len(a)),
                    fmt(pd.mean_a),
                    fmt(pd.mean_b),
                    cell(pd.diff.to_dict()) + (" ✱" if pd.significant else ""),
                    f"{pd.b_better_share:.0%}",
                ]
            )
    out += table(["run", "metric", "n", ref.name, "run", "difference [CI]", "run better on"], rows)
    return out + ([*skipped, ""] if skipped else [])


def not_comparable(a: Run, b: Run) -> str | None:
    """Why two runs' samples must not be paired by id (``None``: they may).

    Runs are comparable when they evaluated the same split of the same dataset version: the
    split manifest's sha256 when both recorded it, else (older outputs) the dataset path.
    """
    ia, ib = a.metrics.get("run", {}), b.metrics.get("run", {})
    if ia.get("split") != ib.get("split"):
        return f"different splits ({ia.get('split')} vs {ib.get('split')})"
    da = (ia.get("dataset") or {}).get("manifest_sha256")
    db = (ib.get("dataset") or {}).get("manifest_sha256")
    if da and db:
        if da != db:
            return f"different dataset versions (manifest {da[:12]} vs {db[:12]})"
        return None
    if ia.get("data") != ib.get("data"):
        return "different datasets (no dataset version recorded)"
    return None
