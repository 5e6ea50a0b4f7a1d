"""`reasonbrain pipeline run|serve`: bad input is refused before Prefect starts (one clear line)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reasonbrain.cli import app
from reasonbrain.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "flows", tmp_path / "flows")
    return tmp_path


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("run", "--set", "train.max_stepz=3"), "unknown key 'train.max_stepz'"),
        (("run", "--flow", "nope"), "unknown flow 'nope'"),
        (("run", "--params", "missing.yaml"), "params file not found"),
        (("serve",), "needs a Prefect server"),
    ],
)
def test_bad_input_is_refused_before_anything_runs(
    project: Path, args: tuple[str, ...], needle: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.chdir(project)
    before = (project / "params.yaml").read_text()
    # no server configured, whatever other tests of this session set up (the Prefect harness)
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        r = CliRunner().invoke(app, ["pipeline", *args])
    # the CLI's main() turns this error into one red line and exit code 2 (tests/unit/test_cli)
    assert isinstance(r.exception, ConfigError), r.output
    assert needle in r.exception.one_line()
    assert (project / "params.yaml").read_text() == before


def test_not_a_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["pipeline", "run"])
    assert isinstance(r.exception, ConfigError)
    assert "not a ReasonBrain project: no dvc.yaml" in r.exception.one_line()


def test_the_flows_never_import_torch_or_the_models() -> None:
    """Model work happens in the DVC stages' own processes; the flows stay light."""
    code = (
        "import sys, flows.pipeline, flows.ingest, reasonbrain.cli.pipeline, reasonbrain.lineage;"
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith('reasonbrain.models')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
