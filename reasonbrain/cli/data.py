"""``reasonbrain data …``: generate, import, validate and describe datasets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from reasonbrain.cli._common import ParamsOption, SetOption, cli_params, console

app = typer.Typer(help="Generate, import, validate and describe datasets.", no_args_is_help=True)


@app.command("generate")
def generate(
    out: Path | None = typer.Option(None, "--out", help="Dataset directory to create."),
    n_train: int | None = typer.Option(None, "--n-train", help="Training samples."),
    n_val: int | None = typer.Option(None, "--n-val", help="Validation samples."),
    n_test: int | None = typer.Option(None, "--n-test", help="Test samples."),
    size: int | None = typer.Option(None, "--size", help="Image side in pixels."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed (same seed ⇒ same bytes)."),
    workers: int | None = typer.Option(None, "--workers", help="Processes (0 = all cores)."),
    force: bool = typer.Option(False, "--force", help="Replace a non-empty --out directory."),
    params_path: Path | None = ParamsOption,
    sets: list[str] | None = SetOption,
) -> None:
    """Generate a ReasonSynth dataset (defaults from params.yaml `data.synth`)."""
    from reasonbrain.data.synth import generate_dataset

    params = cli_params(params_path, sets)
    updates = {
        k: v
        for k, v in {
            "n_train": n_train,
            "n_val": n_val,
            "n_test": n_test,
            "size": size,
            "seed": seed,
            "workers": workers,
        }.items()
        if v is not None
    }
    synth = params.data.synth.model_validate({**params.data.synth.model_dump(), **updates})
    dest = out or params.data.dir
    summary = generate_dataset(dest, synth, force=force, progress=True)
    console.print(
        f"[green]generated[/] {summary.total} samples "
        f"({', '.join(f'{k}: {v}' for k, v in summary.counts.items())}) "
        f"in {summary.seconds:.1f} s ({summary.total / max(summary.seconds, 1e-9):.0f} samples/s) "
        f"→ [bold]{dest}[/]"
    )


@app.command("import")
def import_(
    src: Path = typer.Argument(..., help="Source directory or file in the given format."),
    fmt: str = typer.Option(..., "--format", help="Source format (see `--list-formats`)."),
    out: Path = typer.Option(..., "--out", help="Dataset directory to create."),
    force: bool = typer.Option(False, "--force", help="Replace a non-empty --out directory."),
    option: list[str] | None = typer.Option(
        None, "--option", "-o", help="Importer option key=value (repeatable; see `formats`)."
    ),
) -> None:
    """Import a benchmark/dataset into the Reason50K layout (the source is never modified)."""
    from reasonbrain.config import parse_override
    from reasonbrain.data.importers import import_dataset

    options: dict[str, object] = {}
    for item in option or []:
        keys, value = parse_override(item)
        options[".".join(keys)] = value
    summary = import_dataset(fmt, src, out, force=force, options=options)
    counts = ", ".join(f"{k}: {v}" for k, v in summary.counts.items())
    console.print(
        f"[green]imported[/] {summary.total} records from {fmt} ({counts}) → [bold]{out}[/]"
    )
    for reason, n in summary.dropped.items():
        console.print(f"[yellow]dropped[/] {n} source rows: {reason} (see import_info.json)")
    cats = ", ".join(sorted(summary.categories))
    console.print(f"categories: {cats} (declare them in params.yaml validate.categories)")
    for note in summary.notes:
        console.print(f"note: {note}")


@app.command("formats")
def formats() -> None:
    """List the importer formats."""
    from reasonbrain.data.importers import IMPORTERS

    for name, imp in sorted(IMPORTERS.items()):
        console.print(f"[bold]{name}[/]: {imp.description}")


@app.command("validate")
def validate(
    root: Path = typer.Argument(..., help="Dataset directory (Reason50K layout)."),
    report: Path | None = typer.Option(
        None,
        "--report",
        help="Write the JSON report here (nothing is written without it: the pipeline's "
        "tracked report is validate.report, which only its DVC stage writes).",
    ),
    verdict: Path | None = typer.Option(
        None,
        "--verdict",
        help="Write the verdict alone (checks passed/failed, row counts; no timings) here: a "
        "file that changes only when the outcome does (DVC stage `train` depends on it).",
    ),
    docs: Path | None = typer.Option(None, "--docs", help="Directory for GX HTML data docs."),
    quarantine: Path | None = typer.Option(
        None,
        "--quarantine",
        help="Write a cleaned dataset manifest set + rejected.jsonl into this directory.",
    ),
    params_path: Path | None = ParamsOption,
    sets: list[str] | None = SetOption,
) -> None:
    """Validate a dataset with a Great Expectations suite; exit 1 when a blocking check fails."""
    from reasonbrain.data.schema import atomic_write_text
    from reasonbrain.data.validation import validate_dataset

    params = cli_params(params_path, sets)
    result = validate_dataset(
        root, params.validate_, report_path=report, docs_dir=docs, quarantine_dir=quarantine
    )
    if verdict is not None:
        text = json.dumps(validation_verdict(result.to_dict()), indent=2, ensure_ascii=False)
        atomic_write_text(verdict, text + "\n")
    result.print_summary(console)
    if verdict is not None:
        console.print(f"verdict: {verdict}", highlight=False)
    if not result.ok:
        raise typer.Exit(1)


def validation_verdict(report: dict[str, Any]) -> dict[str, Any]:
    """The part of a validation report that depends only on the data and the rules: what was
    checked and what passed (no timings, no output paths)."""
    return {
        "dataset": report["dataset"],
        "ok": report["ok"],
        "totals": report["totals"],
        "rows_per_split": report["rows_per_split"],
        "checks": [
            {k: c[k] for k in ("name", "severity", "passed", "failing_rows")}
            for c in report["checks"]
        ],
    }


@app.command("stats")
def stats(
    root: Path = typer.Argument(..., help="Dataset directory (Reason50K layout)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Counts per split and category, instruction lengths, image sizes."""
    from reasonbrain.data.stats import dataset_stats, render_stats

    s = dataset_stats(root)
    if as_json:
        console.print_json(json.dumps(s))
    else:
        render_stats(s, console)


@app.command("prepare")
def prepare(
    force: bool = typer.Option(False, "--force", help="Replace a non-empty data.dir."),
    params_path: Path | None = ParamsOption,
    sets: list[str] | None = SetOption,
) -> None:
    """Build `data.dir` as params.yaml says (DVC stage `data`): generate ReasonSynth or import."""
    from reasonbrain.data.prepare import prepare_dataset

    params = cli_params(params_path, sets)
    summary = prepare_dataset(params.data, force=force, progress=True)
    counts = ", ".join(f"{k}: {v}" for k, v in summary.counts.items())
    console.print(
        f"[green]prepared[/] {summary.total} records ({counts}) → [bold]{params.data.dir}[/]"
    )
