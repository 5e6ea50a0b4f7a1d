"""Helpers shared by the CLI command modules."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer
from rich.console import Console

from reasonbrain.config import Params, load_params

console = Console()
console_err = Console(stderr=True)


@dataclass
class _State:
    debug: bool = False


state = _State()

ParamsOption = typer.Option(
    None, "--params", help="params file (default: ./params.yaml if present, else built-ins)."
)
SetOption = typer.Option(
    None, "--set", help="Override a param: --set data.synth.n_train=100 (repeatable)."
)


def cli_params(params_path: Path | None, sets: list[str] | None) -> Params:
    """Load params for a command from ``--params`` and ``--set``."""
    return load_params(params_path, sets or [])
