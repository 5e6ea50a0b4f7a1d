"""``reasonbrain evaluate`` and ``reasonbrain report``: batch evaluation and comparison reports."""

from __future__ import annotations

from pathlib import Path

import typer

from reasonbrain.cli._common import ParamsOption, SetOption, cli_params, console


def evaluate(
    model: str | None = typer.Option(
        None, "--model", help="Saved model directory, registry://NAME@ALIAS, or `identity`."
    ),
    predictions: Path | None = typer.Option(
        None,
        "--predictions",
        help="Instead of --model: a directory of edits made elsewhere, <sample id>.png "
        "(.jpg/.webp); a missing or unreadable one counts as wrong.",
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
    from reasonbrain.evaluation.predictors import PREDICTIONS_PREFIX
    from reasonbrain.evaluation.runner import evaluate as run_evaluation

    if (model is None) == (predictions is None):
        raise ConfigError(
            "pass exactly one of --model and --predictions",
            where="reasonbrain evaluate",
            fix="--model DIR|identity|registry://NAME@ALIAS, or --predictions DIR of <id>.png",
        )
    spec = model if model is not None else f"{PREDICTIONS_PREFIX}{predictions}"
    params = cli_params(params_path, sets)
    if engine not in ("ray", "loop"):
        raise ConfigError(f"unknown engine {engine!r}", where="--engine", fix="use ray or loop")
    if split is not None and split not in ("train", "val", "test"):
        raise ConfigError(f"unknown split {split!r}", where="--split", fix="use train, val or test")
    summary = run_evaluation(
        spec,
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
        if k
        in (
            "reasoning_acc",
            "reasoning_acc_nearest",
            "instruction_alignment",
            "clip_t",
            "l1",
            "psnr",
        )
    )
    console.print(
        f"[green]evaluated[/] {summary.evaluated} new, {summary.skipped_done} already done "
        f"({summary.edits_per_s:.2f} edits/s) → [bold]{out}[/]"
    )
    if shown:
        console.print(f"overall: {shown}")
    failed = summary.metrics["overall"].get("predictions", {})
    bad = {k: n for k, n in failed.items() if k != "ok"}
    if bad:
        cover = summary.metrics["run"].get("predictions", {})
        console.print(
            "[yellow]predictions without a usable image (counted as wrong):[/] "
            + ", ".join(f"{k} {n}" for k, n in bad.items())
            + (
                f"; {cover['unused_files']} file(s) match no sample id, e.g. "
                + ", ".join(cover["unused_examples"])
                if cover.get("unused_files")
                else ""
            )
        )


def report(
    runs: list[Path] = typer.Option(..., "--runs", help="Evaluation output dirs (repeatable)."),
    out: Path = typer.Option(Path("reports/compare.md"), "--out", help="Markdown file to write."),
    curves: bool = typer.Option(
        True, "--curves/--no-curves", help="Draw training-curve charts beside the report."
    ),
    params_path: Path | None = ParamsOption,
    sets: list[str] | None = SetOption,
) -> None:
    """Compare evaluation runs: tables with CIs, verdicts, paired differences, failure gallery,
    training curves."""
    from reasonbrain.evaluation.report import render_report

    params = cli_params(params_path, sets)
    render_report(
        list(runs),
        out,
        gallery_per_category=params.eval.gallery_per_category,
        gallery_per_family=params.eval.gallery_per_family,
        resamples=params.eval.bootstrap_resamples,
        level=params.eval.ci_level,
        curves=curves,
    )
    console.print(f"[green]report[/] for {len(runs)} run(s) → [bold]{out}[/]")
