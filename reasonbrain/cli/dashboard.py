"""``reasonbrain dashboard``: start the Streamlit review dashboard (``dashboard/app.py``).

Binds to 127.0.0.1 unless ``--host`` says otherwise. On any other address, reviews and alias
moves need the password from ``REASONBRAIN_DASHBOARD_PASSWORD`` (or ``dashboard_password`` in
``.streamlit/secrets.toml``); without one the dashboard is read-only there. The process becomes
``streamlit run`` (exec), so Ctrl-C and signals reach the server directly.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import typer

from reasonbrain.cli._common import console
from reasonbrain.errors import ConfigError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def app_path() -> Path:
    """``dashboard/app.py`` of the checkout this package runs from.

    Raises:
        ConfigError: the dashboard is not beside the package (a non-editable install).
    """
    path = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
    if not path.is_file():
        raise ConfigError(
            "the dashboard app is not installed",
            where=str(path),
            fix="run from a source checkout (make install / pip install -e .)",
        )
    return path


def streamlit_command(app: Path, host: str, port: int) -> list[str]:
    """The ``streamlit run`` command line."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
    ]


def _check_port(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as err:
            raise ConfigError(
                f"cannot listen on {host}:{port}: {err.strerror or err}",
                where="--port" if err.errno in (98, 48) else "--host",
                fix="pass another --port (or stop what uses it)"
                if err.errno in (98, 48)
                else "pass an address of this machine, e.g. 127.0.0.1",
            ) from None


def dashboard(
    port: int = typer.Option(8501, "--port", min=1, max=65535, help="Port to listen on."),
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        help="Address to bind (default loopback only; 0.0.0.0 exposes it: writes then need "
        "REASONBRAIN_DASHBOARD_PASSWORD).",
    ),
) -> None:
    """Start the review dashboard: models, metrics, the edit browser, registry, human review."""
    from reasonbrain.config import get_settings
    from reasonbrain.registry.db import safe_url

    app = app_path()
    _check_port(host, port)
    settings = get_settings()
    console.print(f"ReasonBrain dashboard on [bold]http://{host}:{port}[/] (Ctrl-C stops it)")
    console.print(f"  database {safe_url(settings.resolved_db_url())}")
    console.print(f"  store    {settings.resolved_store_uri()}")
    if host not in LOOPBACK:
        if os.environ.get("REASONBRAIN_DASHBOARD_PASSWORD"):
            console.print("  exposed beyond this machine: reviews and promotions need the password")
        else:
            console.print(
                "  [yellow]exposed beyond this machine without REASONBRAIN_DASHBOARD_PASSWORD: "
                "read-only unless .streamlit/secrets.toml sets dashboard_password[/]"
            )
    root = str(app.parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    sys.stdout.flush()
    sys.stderr.flush()
    cmd = streamlit_command(app, host, port)
    os.execvpe(cmd[0], cmd, env)
