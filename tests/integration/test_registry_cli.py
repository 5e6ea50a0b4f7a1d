"""`reasonbrain registry …` end to end (embedded defaults: file:// store, SQLite)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reasonbrain.cli import app, main


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("REASONBRAIN_HOME", str(home))
    return home


def test_registry_commands(cli_env: Path, model_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()

    def ok(*args: str) -> str:
        r = runner.invoke(app, ["registry", *args])
        assert r.exit_code == 0, r.output
        return r.output

    assert "registered" in ok("register", str(model_dir), "--name", "tiny")
    ok("register", str(model_dir), "--name", "tiny", "--alias", "staging")
    assert "tiny@production" in ok("promote", "tiny@1", "--alias", "production")
    rows = [json.loads(line) for line in ok("list", "--json").splitlines()]
    assert [(r["version"], r["aliases"]) for r in rows] == [(2, ["staging"]), (1, ["production"])]
    shown = json.loads(ok("show", "tiny@production"))
    assert shown["version"] == 1 and len(shown["files"]) == 4
    assert shown["store_uri"].startswith((cli_env / "store").resolve().as_uri())
    out = tmp_path / "pulled"
    assert "verified" in ok("pull", "tiny@staging", "--out", str(out))
    assert (out / "config.json").is_file()
    assert "archived" in ok("archive", "tiny@2", "--force")
    assert [r["version"] for r in map(json.loads, ok("list", "--json").splitlines())] == [1]
    assert "0 orphan" in ok("gc", "--min-age", "0")
    from reasonbrain.registry.db import head_revision

    assert f"{head_revision()} (newest: {head_revision()})" in ok("db", "current")


def test_user_errors_are_one_line_and_exit_2(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["reasonbrain", "registry", "show", "nope@production"])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no such model") and "\n" not in err
    assert "Traceback" not in err
