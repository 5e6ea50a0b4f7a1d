"""The CLI's error style: bad input → one line on stderr, exit 2, no traceback (unless --debug)."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.mini_dataset import make_mini_dataset


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reasonbrain", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_help_and_version() -> None:
    r = run_cli("--help")
    assert r.returncode == 0 and "data" in r.stdout
    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.startswith("reasonbrain ")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("data", "stats", "/nonexistent/ds"), "dataset directory not found"),
        (("data", "prepare", "--set", "data.sorce=x"), "unknown key 'data.sorce'"),
        (("data", "prepare", "--params", "/nonexistent/params.yaml"), "params file not found"),
        (("data", "prepare", "--set", "data.source=import"), "import_format"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(
    args: tuple[str, ...], needle: str, tmp_path: Path
) -> None:
    r = run_cli(*args, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error:") and needle in lines[0]
    assert "Traceback" not in r.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    r = run_cli("--debug", "data", "stats", str(tmp_path / "missing"))
    assert r.returncode != 0
    assert "Traceback" in r.stderr and "DatasetError" in r.stderr


def test_malformed_manifest_line_is_reported_with_its_line(tmp_path: Path) -> None:
    ds = make_mini_dataset(tmp_path / "ds")
    with (ds / "val.jsonl").open("a") as fh:
        fh.write("{broken\n")
    r = run_cli("data", "stats", str(ds))
    assert r.returncode == 2
    assert f"{ds / 'val.jsonl'}:4" in r.stderr
    assert "Traceback" not in r.stderr


def test_stats_json(tmp_path: Path) -> None:
    ds = make_mini_dataset(tmp_path / "ds", n_per_split=2)
    r = run_cli("data", "stats", str(ds), "--json")
    assert r.returncode == 0, r.stderr
    assert '"total": 6' in r.stdout
