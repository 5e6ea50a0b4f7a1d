"""The comparison report: ``reasonbrain report --runs A B C … --out reports/compare.md``.

Reads evaluation output directories (``metrics.json`` + ``samples.jsonl``) and writes one
Markdown file:

1. the runs (model, data, split, samples, judge) and the configuration notes;
2. an overall table — every headline metric as ``mean [CI low, CI high]`` per run;
3. per-category tables (and per hold-out type when ReasonSynth rows are present) for the key
   metrics;
4. paired comparisons of every run against the first one on the samples both scored
   (difference of means with its bootstrap CI, share of samples where the run is better) — only
   between runs of the same split of the same dataset version (the sha256 of the split manifest,
   recorded in ``metrics.json``); other runs are listed as not comparable, never paired by id;
5. a failure gallery: the worst samples per category for each run (source, output and target
   images referenced by relative paths, the verifier's nearest outcome, the rationale).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reasonbrain.errors import ConfigError
from reasonbrain.evaluation.aggregate import HEADLINE
from reasonbrain.evaluation.bootstrap import paired_difference
from reasonbrain.evaluation.scoring import LOWER_IS_BETTER

#: Metrics that get per-category tables and paired comparisons, in order of preference.
KEY_METRICS: tuple[str, ...] = (
    "reasoning_acc",
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


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"


def _cell(est: dict[str, Any] | None) -> str:
    if not est:
        return "—"
    lo, hi = est.get("ci_low"), est.get("ci_high")
    ci = f" [{_fmt(lo)}, {_fmt(hi)}]" if lo is not None and hi is not None else ""
    return f"{_fmt(est['mean'])}{ci}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return [*out, ""]


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
    resamples: int = 1000,
    level: float = 0.95,
) -> str:
    """Write the Markdown comparison of ``run_dirs`` to ``out`` (atomically); returns the text.

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
    lines += _table(
        ["run", "n", *[f"{m} {_arrow(m)}" for m in metrics]],
        [
            [r.name, str(r.metrics.get("overall", {}).get("n", 0))]
            + [_cell(r.metrics.get("overall", {}).get("metrics", {}).get(m)) for m in metrics]
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
    for group, title in (("by_category", "category"), ("by_holdout", "hold-out type")):
        groups = sorted({g for r in runs for g in r.metrics.get(group, {})})
        if not groups:
            continue
        for m in keys:
            lines += [f"## {m} {_arrow(m)} by {title}", ""]
            lines += _table(
                ["run", *groups],
                [
                    [r.name]
                    + [
                        _cell(r.metrics.get(group, {}).get(g, {}).get("metrics", {}).get(m))
                        for g in groups
                    ]
                    for r in runs
                ],
            )
    if len(runs) > 1:
        lines += _paired_section(runs, keys, resamples, level)
    if gallery_per_category > 0:
        lines += _gallery_section(runs, keys, gallery_per_category, base)
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
    out += _table(["run", "model", "data/split", "samples", "judge"], rows)
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
        shared = sorted(set(ref.rows) & set(other.rows))
        for m in keys:
            pairs = [
                (ref.rows[i]["metrics"].get(m), other.rows[i]["metrics"].get(m)) for i in shared
            ]
            pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
            if not pairs:
                continue
            pd = paired_difference(
                [a for a, _ in pairs],
                [b for _, b in pairs],
                metric=m,
                lower_is_better=m in LOWER_IS_BETTER,
                resamples=resamples,
                level=level,
            )
            rows.append(
                [
                    other.name,
                    f"{m} {_arrow(m)}",
                    str(len(pairs)),
                    _fmt(pd.mean_a),
                    _fmt(pd.mean_b),
                    _cell(pd.diff.to_dict()) + (" ✱" if pd.significant else ""),
                    f"{pd.b_better_share:.0%}",
                ]
            )
    out += _table(["run", "metric", "n", ref.name, "run", "difference [CI]", "run better on"], rows)
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


def _badness(row: dict[str, Any], keys: list[str]) -> tuple[float, ...]:
    """Sort key: worst first (wrong reasoning, then the lowest margin / worst key metric)."""
    m = row["metrics"]
    v = row.get("verifier") or {}
    out: list[float] = []
    if m.get("reasoning_acc") is not None:
        out.append(m["reasoning_acc"])
        out.append(float(v.get("margin") or 0.0))
    for k in keys:
        if m.get(k) is not None:
            out.append(-m[k] if k in LOWER_IS_BETTER else m[k])
    return tuple(out)


def _gallery_section(runs: list[Run], keys: list[str], per_cat: int, base: Path) -> list[str]:
    out = ["## Failure gallery", "", f"The {per_cat} worst samples per category for each run.", ""]
    for r in runs:
        data = Path(str(r.metrics.get("run", {}).get("data", ".")))
        out += [f"### {r.name}", ""]
        by_cat: dict[str, list[dict[str, Any]]] = {}
        for row in r.rows.values():
            by_cat.setdefault(str(row.get("category")), []).append(row)
        table = []
        for cat in sorted(by_cat):
            worst = sorted(by_cat[cat], key=lambda row: _badness(row, keys))[:per_cat]
            for row in worst:
                src, tgt = _record_images(data, r.metrics.get("run", {}).get("split"), row["id"])
                img = f"![output]({_rel(r.path / row['image'], base)})" if row.get("image") else ""
                nearest = (row.get("verifier") or {}).get("nearest", "—")
                shown = [f"{k}={_fmt(row['metrics'].get(k))}" for k in keys[:2]]
                table.append(
                    [
                        cat,
                        row["id"],
                        row.get("instruction", "")[:80],
                        f"![source]({_rel(src, base)})" if src else "—",
                        img,
                        f"![target]({_rel(tgt, base)})" if tgt else "—",
                        nearest,
                        ", ".join(shown),
                        (row.get("rationale") or "—")[:80],
                    ]
                )
        out += _table(
            [
                "category",
                "id",
                "instruction",
                "source",
                "output",
                "target",
                "nearest",
                "scores",
                "rationale",
            ],
            table,
        )
    return out


_RECORD_CACHE: dict[tuple[str, str], dict[str, tuple[str, str]]] = {}


def _record_images(data: Path, split: Any, sample_id: str) -> tuple[Path | None, Path | None]:
    """Source and target image paths of a record, when the dataset is still on disk."""
    key = (str(data), str(split))
    if key not in _RECORD_CACHE:
        table: dict[str, tuple[str, str]] = {}
        manifest = data / f"{split}.jsonl"
        if manifest.is_file():
            for line in manifest.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    try:
                        obj = json.loads(line)
                        table[str(obj["id"])] = (obj["src_image"], obj["tgt_image"])
                    except (ValueError, KeyError):
                        continue
        _RECORD_CACHE[key] = table
    paths = _RECORD_CACHE[key].get(sample_id)
    if paths is None:
        return None, None
    return data / paths[0], data / paths[1]
