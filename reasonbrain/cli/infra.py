"""``reasonbrain infra up|down|status``: the local stack (S3 endpoint, PostgreSQL, Prefect).

See :mod:`reasonbrain.registry.infra` and ``infra/local/README.md``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from reasonbrain.cli._common import console

if TYPE_CHECKING:
    from reasonbrain.registry.infra import StackStatus

app = typer.Typer(help="Local stack: S3 endpoint (moto), PostgreSQL database, Prefect server.")


def _print(st: StackStatus, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(st.to_dict()))
        return
    for c in st.components:
        mark = "[green]running[/]" if c.running else "[dim]stopped[/]"
        extra = f" {c.url}" if c.url else ""
        extra += f" (pid {c.pid})" if c.pid else ""
        console.print(f"{c.name:9s} {mark} {c.detail}{extra}", highlight=False)
    if st.env:
        console.print("\n# export these (also in <home>/infra/env.sh):", style="dim")
        for k, v in st.env.items():
            typer.echo(f"export {k}={v}")


@app.command("up")
def up(
    s3_port: int = typer.Option(9000, "--s3-port", help="Port of the S3 endpoint (loopback)."),
    bucket: str = typer.Option("reasonbrain", "--bucket", help="Bucket to create."),
    postgres: bool = typer.Option(True, "--postgres/--no-postgres", help="Create the database."),
    db_name: str = typer.Option("reasonbrain", "--db-name", help="PostgreSQL database name."),
    prefect: bool = typer.Option(True, "--prefect/--no-prefect", help="Start a Prefect server."),
    prefect_port: int = typer.Option(4200, "--prefect-port", help="Port of the Prefect server."),
    wait: float = typer.Option(90.0, "--wait", help="Seconds to wait for each server."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Start the local stack (idempotent) and print the environment to export."""
    from reasonbrain.registry.infra import up as stack_up

    _print(
        stack_up(
            s3_port=s3_port,
            bucket=bucket,
            postgres=postgres,
            db_name=db_name,
            prefect=prefect,
            prefect_port=prefect_port,
            wait_s=wait,
        ),
        as_json,
    )


@app.command("status")
def status(
    db_name: str = typer.Option("reasonbrain", "--db-name", help="PostgreSQL database name."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Say what is running."""
    from reasonbrain.registry.infra import status as stack_status

    _print(stack_status(db_name=db_name), as_json)


@app.command("down")
def down(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Stop the servers `up` started (PostgreSQL data is kept; moto's S3 data is lost)."""
    from reasonbrain.registry.infra import down as stack_down

    _print(stack_down(), as_json)
