"""``reasonbrain train`` and ``reasonbrain ablate``: thin wrappers over ``reasonbrain.training``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import typer

from reasonbrain.cli._common import ParamsOption, SetOption, cli_params, console, console_err
from reasonbrain.config import Params, apply_overrides, params_from_dict

T = TypeVar("T")


def train(
    data: str | None = typer.Option(
        None, "--data", help="Dataset directory or s3://bucket/prefix (default data.dir)."
    ),
    out: Path = typer.Option(Path("models/reasonbrain"), "--out", help="Output directory."),
    preset: str | None = typer.Option(
        None,
        "--preset",
        help="Model preset (tiny | paper). Without --params, `paper` reads ./params.paper.yaml "
        "(the paper recipe), or the paper profile's defaults when there is none.",
    ),
    workers: int | None = typer.Option(None, "--workers", help="Ray Train workers."),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Optimiser steps."),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the newest run with the same params from its checkpoint."
    ),
    run_name: str | None = typer.Option(None, "--run-name", help="Explicit run name."),
    storage: str | None = typer.Option(
        None,
        "--storage",
        help="Checkpoint storage: a directory or s3://bucket/prefix "
        "(default $REASONBRAIN_HOME/checkpoints).",
    ),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Nothing is trained and no weights are read: print the per-GPU memory estimate of "
        "the configured run and write it to OUT/memory_estimate.json.",
    ),
    params_path: Path | None = ParamsOption,
    sets: list[str] | None = SetOption,
) -> None:
    """Train a model with Ray Train (local Ray, or the cluster at RAY_ADDRESS)."""
    extra = [
        f"{k}={v}"
        for k, v in (
            ("model.preset", preset),
            ("train.workers", workers),
            ("train.max_steps", max_steps),
        )
        if v is not None
    ]
    if preset == "paper" and params_path is None:
        params = _paper_params([*(sets or []), *extra])
    else:
        params = cli_params(params_path, [*(sets or []), *extra])
    if dry_run:
        _dry_run(params, out)
        return
    from reasonbrain.training.trainer import train as run_train

    res = _guard(
        lambda: run_train(
            params,
            data or params.data.dir,
            out,
            storage=storage,
            resume=resume,
            run_name=run_name,
        )
    )
    m = res.metrics
    console.print(
        f"[green]trained[/] {m.get('steps')} steps in {res.seconds:.0f} s: loss "
        f"{m.get('loss_start', float('nan')):.4f} → {m.get('loss_end', float('nan')):.4f}"
        + (f", val {m['val_loss']:.4f}" if m.get("val_loss") is not None else "")
        + f" · {m.get('samples_per_s') or 0:.1f} samples/s · data wait "
        f"{100 * (m.get('data_wait_frac') or 0):.1f} %"
    )
    console.print(f"model → [bold]{res.model_dir}[/] · run {res.run_name} · {res.checkpoint_uri}")


def ablate(
    data: Path | None = typer.Option(None, "--data", help="Dataset directory (default data.dir)."),
    out: Path = typer.Option(Path("models/ablation"), "--out", help="Rung outputs go here."),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Budget per rung."),
    rungs: str | None = typer.Option(
        None, "--rungs", help="Comma-separated rungs (default: the whole ladder)."
    ),
    seeds: str | None = typer.Option(
        None, "--seeds", help="Comma-separated training seeds (default: train.seed)."
    ),
    evaluate: bool = typer.Option(
        True, "--evaluate/--no-evaluate", help="Evaluate every rung (eval params, --split)."
    ),
    split: str | None = typer.Option(None, "--split", help="Split to evaluate (eval.split)."),
    limit: int | None = typer.Option(None, "--limit", help="Evaluate the first N samples only."),
    engine: str = typer.Option("ray", "--engine", help="Evaluation engine: ray or loop."),
    report: Path = typer.Option(Path("reports/ablation.json"), "--report", help="JSON report."),
    storage: str | None = typer.Option(None, "--storage", help="Checkpoint storage."),
    report_only: bool = typer.Option(
        False,
        "--report-only",
        help="Only rewrite --report from the evaluations it names (no training, no evaluation).",
    ),
    params_path: Path | None = ParamsOption,
    sets: list[str] | None = SetOption,
) -> None:
    """Train (and evaluate) the ablation ladder at one fixed budget, over one or more training
    seeds; write the report (CIs, paired differences vs `full`, mean ± spread over seeds)."""
    from reasonbrain.errors import ConfigError
    from reasonbrain.training.ablation import LADDER, rebuild_report, run_ablation

    extra = [f"train.max_steps={max_steps}"] if max_steps is not None else []
    params = cli_params(params_path, [*(sets or []), *extra])
    if report_only:
        rebuilt = rebuild_report(params, report)
        console.print(report.with_suffix(".md").read_text())
        n = len(rebuilt["rungs"])
        console.print(f"[green]ablation report[/] {n} rungs rebuilt → [bold]{report}[/]")
        return
    chosen = [r.strip() for r in rungs.split(",") if r.strip()] if rungs else list(LADDER)
    try:
        chosen_seeds = [int(x) for x in seeds.split(",") if x.strip()] if seeds else None
    except ValueError:
        raise ConfigError(
            f"--seeds {seeds!r} is not a comma-separated list of integers",
            where="--seeds",
            fix="pass e.g. --seeds 0,1,2",
        ) from None
    if engine not in ("ray", "loop"):
        raise ConfigError(f"unknown engine {engine!r}", where="--engine", fix="use ray or loop")
    result = _guard(
        lambda: run_ablation(
            params,
            Path(data or params.data.dir),
            out,
            rungs=chosen,
            seeds=chosen_seeds,
            report_path=report,
            storage=storage,
            evaluate=evaluate,
            split=split,
            limit=limit,
            engine=engine,
        )
    )
    console.print(report.with_suffix(".md").read_text())
    console.print(f"[green]ablation[/] {len(result['rungs'])} rungs → [bold]{report}[/]")


def _dry_run(params: Params, out: Path) -> None:
    """Print and write the memory estimate (``reasonbrain.training.memory``)."""
    from rich.table import Table

    from reasonbrain.data.schema import atomic_write_text
    from reasonbrain.training.memory import GIB, estimate_memory

    est = estimate_memory(params)
    console.print(
        f"memory per GPU: {est.preset} preset · {est.strategy} × {est.workers} · micro-batch "
        f"{est.micro_batch} · {est.compute_dtype}"
        + (" · gradient checkpointing" if est.gradient_checkpointing else "")
    )
    table = Table()
    table.add_column("per GPU")
    table.add_column("GiB", justify="right")
    for kind, n in est.bytes_per_gpu.items():
        table.add_row(kind, f"{n / GIB:.2f}")
    table.add_row("[bold]total[/]", f"[bold]{est.total / GIB:.2f}[/]")
    console.print(table)
    parts = ", ".join(f"{k} {v / GIB:.2f}" for k, v in est.activations.items())
    console.print(f"activations (measured on meta tensors): {parts} GiB")
    console.print(f"not counted: {'; '.join(est.not_counted)}")
    path = out / "memory_estimate.json"
    atomic_write_text(path, est.to_json())
    console.print(f"estimate → [bold]{path}[/]")


PAPER_PARAMS = Path("params.paper.yaml")


def _paper_params(overrides: list[str]) -> Params:
    """``--preset paper`` without ``--params``: the paper recipe, never the tiny params.yaml."""
    if PAPER_PARAMS.is_file():
        console.print(f"params: {PAPER_PARAMS} (the paper recipe)")
        return cli_params(PAPER_PARAMS, overrides)
    console.print("params: the paper profile's defaults (no ./params.paper.yaml)")
    return params_from_dict(apply_overrides({}, overrides), "paper profile + --set")


def describe_failure(err: BaseException) -> str:
    """One line for a failed run: the worker's exception type, message and where it was raised.

    Ray's own message is the worker traceback cut in the middle; the exception objects it keeps
    (``worker_failures``) carry the type, the message and the note the training loop adds
    (``reasonbrain.training.loop.failure_note``).
    """
    from ray.train import ControllerError, WorkerGroupError

    causes: list[tuple[str, BaseException]] = []
    if isinstance(err, WorkerGroupError) and err.worker_failures:
        causes = [(f"rank {r}", e) for r, e in sorted(err.worker_failures.items())]
    elif isinstance(err, ControllerError):
        causes = [("controller", err.controller_failure)]
    if not causes:
        text = str(err).strip()
        return text.splitlines()[-1] if text else type(err).__name__
    where, exc = causes[0]
    message = (str(exc).strip().splitlines() or [""])[0]
    notes = [n for n in getattr(exc, "__notes__", []) if n]
    line = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    more = f" (+{len(causes) - 1} more ranks)" if len(causes) > 1 else ""
    return f"{line} — {where}{more}" + (f", {notes[-1]}" if notes else "")


def _guard(fn: Callable[[], T]) -> T:
    """Run training; a failed run (workers out of restarts) becomes one line and exit 1."""
    try:
        return fn()
    except Exception as err:
        from ray.train import TrainingFailedError

        if not isinstance(err, TrainingFailedError):
            raise
        console_err.print(
            f"[bold red]error:[/] training failed: {describe_failure(err)} — fix the cause and "
            "rerun with --resume",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from None
