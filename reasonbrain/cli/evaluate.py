"""``reasonbrain evaluate`` and ``reasonbrain report``: batch evaluation and comparison reports."""

from __future__ import annotations

from pathlib import Path

import typer

from reasonbrain.cli._common import ParamsOption, SetOption, cli_params, console


def evaluate(
    model: str = typer.Option(
        ..., "--model", help="Saved model directory, registry://NAME@ALIAS, or `identity`."
    ),
    data: Path | None = typer.Option(None, "--data", help="Dataset dir (default: data.dir)."),
    split: str | None = typer.Option(None, "--split", help="train|val|test (default: eval.split)."),
    out: Path = typer.Option(..., "--out", help="Output directory (resumable)."),
    limit: int | None = typer.Option(
        None,
        "--limit",
        help="Only the first N samples (records; sessions under final-turn MagicBrush).",
    ),
    engine: str = typer.Option("ray", "--engine", help="ray (Ray Data actors) or loop."),
    force: bool = typer.Option(
        False, "--force", help="Start over instead of resuming --out (clears its judge cache)."
    ),
    params_path: Path | None = ParamsOption,
    sets: list[str] | None = SetOption,
) -> None:
    """Edit and score a dataset split; rerun to resume (samples already done are skipped)."""
    from reasonbrain.errors import ConfigError
    from reasonbrain.evaluation.runner import evaluate as run_evaluation

    params = cli_params(params_path, sets)
    if engine not in ("ray", "loop"):
        raise ConfigError(f"unknown engine {engine!r}", where="--engine", fix="use ray or loop")
    if split is not None and split not in ("train", "val", "test"):
        raise ConfigError(f"unknown split {split!r}", where="--split", fix="use train, val or test")
    summary = run_evaluation(
        model,
        data or params.data.dir,
        out,
        params.eval,
        split=split,
        limit=limit,
        engine=engine,  # type: ignore[arg-type]
        force=force,
    )
    overall = summary.metrics["overall"]["metrics"]
    shown = ", ".join(
        f"{k} {v['mean']:.3f}"
        for k, v in overall.items()
        if k in ("reasoning_acc", "instruction_alignment", "clip_t", "l1", "psnr")
    )
    console.print(
        f"[green]evaluated[/] {summary.evaluated} new, {summary.skipped_done} already done "
        f"({summary.edits_per_s:.2f} edits/s) → [bold]{out}[/]"
    )
    if shown:
        console.print(f"overall: {shown}")


def report(
    runs: list[Path] = typer.Option(..., "--runs", help="Evaluation output dirs (repeatable)."),
    out: Path = typer.Option(Path("reports/compare.md"), "--out", help="Markdown file to write."),
    params_path: Path | None = ParamsOption,
    sets: list[str] | None = SetOption,
) -> None:
    """Compare evaluation runs: tables with CIs, paired differences, failure gallery."""
    from reasonbrain.evaluation.report import render_report

    params = cli_params(params_path, sets)
    render_report(
        list(runs),
        out,
        gallery_per_category=params.eval.gallery_per_category,
        resamples=params.eval.bootstrap_resamples,
        level=params.eval.ci_level,
    )
    console.print(f"[green]report[/] for {len(runs)} run(s) → [bold]{out}[/]")
