"""The ``reasonbrain`` command line (Typer). Thin: parse, call the library, print, set exit codes.

Command groups live in sibling modules (``data``, ``registry`` …) so that each pipeline step owns
its commands. Heavy libraries are imported inside commands, so ``--help`` stays fast.
Every :class:`~reasonbrain.errors.ReasonBrainError` becomes one red line and exit code 2;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys

import typer

from reasonbrain import __version__
from reasonbrain.cli import dashboard as dashboard_cli
from reasonbrain.cli import data as data_cli
from reasonbrain.cli import evaluate as evaluate_cli
from reasonbrain.cli import infra as infra_cli
from reasonbrain.cli import model as model_cli
from reasonbrain.cli import pipeline as pipeline_cli
from reasonbrain.cli import registry as registry_cli
from reasonbrain.cli import train as train_cli
from reasonbrain.cli._common import console_err, state
from reasonbrain.errors import ReasonBrainError

app = typer.Typer(
    name="reasonbrain",
    help="ReasonBrain: train, evaluate and ship reasoning-aware image editors.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data_cli.app, name="data")
app.command("evaluate")(evaluate_cli.evaluate)
app.command("report")(evaluate_cli.report)
app.add_typer(registry_cli.app, name="registry")
app.add_typer(infra_cli.app, name="infra")
app.add_typer(pipeline_cli.app, name="pipeline")
app.command("edit")(model_cli.edit)
app.command("train")(train_cli.train)
app.command("ablate")(train_cli.ablate)
app.command("dashboard")(dashboard_cli.dashboard)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"reasonbrain {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    state.debug = debug


def main() -> None:
    """Console-script entry point: runs the app and turns user errors into one line."""
    try:
        app()
    except ReasonBrainError as err:
        if state.debug:
            raise
        console_err.print(f"[bold red]error:[/] {err.one_line()}", highlight=False, soft_wrap=True)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        console_err.print("[yellow]interrupted[/]")
        sys.exit(130)
