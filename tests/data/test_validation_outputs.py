"""Validation outputs: JSON report, GX data docs, quarantine, terminal summary, CLI exit codes."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from reasonbrain.config import ValidateParams
from reasonbrain.data.validation import validate_dataset
from reasonbrain.errors import DatasetError
from tests.data.validation_fixtures import (
    append_line,
    make_valid_dataset,
    update_record,
)

PARAMS = ValidateParams()


@pytest.fixture(scope="module")
def valid_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_valid_dataset(tmp_path_factory.mktemp("template") / "ds")


@pytest.fixture
def ds(valid_template: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(valid_template, tmp_path / "ds", symlinks=True))


def _break_three_rows(ds: Path) -> None:
    """train:1 missing target, val:1 unknown category, one malformed test line; + a warning."""
    (ds / "images/tgt/001.png").unlink()
    update_record(ds, "val", 0, category="chemical")
    append_line(ds, "test", "{oops")
    update_record(ds, "train", 1, objects=["red candle", "kettle"])  # warning only


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_json_report_structure(ds: Path, tmp_path: Path) -> None:
    _break_three_rows(ds)
    path = tmp_path / "reports" / "validation.json"
    report = validate_dataset(ds, PARAMS, report_path=path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data == json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is False
    assert data["dataset"] == str(ds)
    assert data["rows_per_split"] == {"train": 4, "val": 2, "test": 3}
    totals = data["totals"]
    assert totals["rows"] == 9 and totals["invalid_rows"] == 3 and totals["valid_rows"] == 6
    assert totals["blocking_failed"] == 3 and totals["warnings_failed"] == 1
    by_name = {c["name"]: c for c in data["checks"]}
    assert set(by_name["images_exist"]) == {
        "name",
        "severity",
        "description",
        "passed",
        "failing_rows",
        "examples",
    }
    assert by_name["images_exist"]["passed"] is False
    assert by_name["images_exist"]["examples"] == [
        {
            "where": "train.jsonl:1",
            "id": "train-001",
            "detail": "images/tgt/001.png: file not found",
        }
    ]
    assert by_name["manifest_lines_parse"]["examples"][0]["where"] == "test.jsonl:3"
    assert by_name["objects_mentioned"]["severity"] == "warning"
    assert by_name["ids_unique"] == {**by_name["ids_unique"], "passed": True, "failing_rows": 0}
    assert data["great_expectations"]["statistics"]["evaluated_expectations"] >= len(by_name)
    assert set(data["timings"]) >= {"probe_images", "great_expectations"}
    assert not list(path.parent.glob(".*.tmp")), "the report is written through a temp file"


def test_html_data_docs_are_built(ds: Path, tmp_path: Path) -> None:
    _break_three_rows(ds)
    docs = tmp_path / "docs"
    report = validate_dataset(ds, PARAMS, docs_dir=docs)
    assert report.docs_index == docs / "index.html"
    index = (docs / "index.html").read_text(encoding="utf-8")
    assert "reasonbrain_dataset" in index
    pages = list((docs / "validations").rglob("*.html"))
    assert len(pages) == 1
    page = pages[0].read_text(encoding="utf-8")
    # the failing values and the checks' descriptions are rendered
    assert "chemical" in page and "images_exist" in page
    assert (docs / "expectations" / "reasonbrain_dataset.html").is_file()
    # a second run replaces the site (one validation page, not two)
    validate_dataset(ds, PARAMS, docs_dir=docs)
    assert len(list((docs / "validations").rglob("*.html"))) == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".docs")]


def test_docs_dir_with_unrelated_files_is_refused(ds: Path, tmp_path: Path) -> None:
    docs = tmp_path / "mine"
    docs.mkdir()
    (docs / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(DatasetError, match="not an earlier data docs site"):
        validate_dataset(ds, PARAMS, docs_dir=docs)
    assert (docs / "notes.txt").read_text(encoding="utf-8") == "keep me"


def test_quarantine_keeps_valid_rows_and_explains_rejected_ones(ds: Path, tmp_path: Path) -> None:
    _break_three_rows(ds)
    before = _tree_digest(ds)
    q = tmp_path / "clean"
    report = validate_dataset(ds, PARAMS, quarantine_dir=q)
    assert _tree_digest(ds) == before, "the original dataset is never modified"

    assert report.quarantine is not None
    assert report.quarantine.kept == {"train": 3, "val": 1, "test": 2}
    assert report.quarantine.rejected == 3
    assert sum(report.quarantine.kept.values()) + report.quarantine.rejected == report.rows

    rejected = [json.loads(x) for x in (q / "rejected.jsonl").read_text().splitlines()]
    assert [(r["split"], r["line"], r["id"]) for r in rejected] == [
        ("train", 1, "train-001"),
        ("val", 1, "val-005"),
        ("test", 3, None),
    ]
    assert rejected[0]["reasons"] == ["images_exist: images/tgt/001.png: file not found"]
    assert rejected[1]["reasons"][0].startswith("category_known: unknown category 'chemical'")
    assert rejected[2]["reasons"][0].startswith("manifest_lines_parse: not JSON")
    assert rejected[2]["raw"] == "{oops"
    originals = (ds / "train.jsonl").read_text().splitlines()
    assert rejected[0]["raw"] == originals[0]

    # kept lines are byte-identical to the originals; the warning-only row is kept
    kept_train = (q / "train.jsonl").read_text().splitlines()
    assert kept_train == originals[1:]
    # the cleaned directory is a valid, self-contained dataset (images copied, not linked)
    clean = validate_dataset(q, PARAMS)
    assert clean.ok and clean.rows == 6
    copied = q / "images/src/002.png"
    assert copied.read_bytes() == (ds / "images/src/002.png").read_bytes()
    assert copied.stat().st_ino != (ds / "images/src/002.png").stat().st_ino
    assert not (q / "images/tgt/001.png").exists()

    # re-running replaces an earlier quarantine output
    validate_dataset(ds, PARAMS, quarantine_dir=q)
    assert len((q / "rejected.jsonl").read_text().splitlines()) == 3


@pytest.mark.parametrize("where", ["same", "inside", "parent"])
def test_quarantine_never_touches_the_dataset(ds: Path, where: str) -> None:
    q = {"same": ds, "inside": ds / "clean", "parent": ds.parent}[where]
    before = _tree_digest(ds)
    with pytest.raises(DatasetError, match="outside the dataset directory"):
        validate_dataset(ds, PARAMS, quarantine_dir=q)
    assert _tree_digest(ds) == before


def test_quarantine_refuses_an_unrelated_non_empty_directory(ds: Path, tmp_path: Path) -> None:
    q = tmp_path / "other"
    q.mkdir()
    (q / "x.txt").write_text("x", encoding="utf-8")
    with pytest.raises(DatasetError, match="not an earlier quarantine output"):
        validate_dataset(ds, PARAMS, quarantine_dir=q)
    assert (q / "x.txt").exists()


def test_summary_fits_one_screen(ds: Path) -> None:
    _break_three_rows(ds)
    report = validate_dataset(ds, PARAMS)
    buf = io.StringIO()
    report.print_summary(Console(file=buf, width=120, color_system=None))
    text = buf.getvalue()
    lines = text.splitlines()
    assert len(lines) <= 24
    assert "INVALID" in text and "3 of 9 rows are invalid" in text
    assert any("images_exist" in ln and "FAIL" in ln and "train.jsonl:1" in ln for ln in lines)
    assert any("objects_mentioned" in ln and "warn" in ln for ln in lines)


# ------------------------------------------------------------------------------------ CLI
@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.chdir(tmp_path)  # no ./params.yaml: built-in params
    return CliRunner()


def test_cli_exit_0_on_a_valid_dataset(ds: Path, tmp_path: Path, cli: CliRunner) -> None:
    from reasonbrain.cli import app

    report = tmp_path / "r.json"
    res = cli.invoke(app, ["data", "validate", str(ds), "--report", str(report)])
    assert res.exit_code == 0, res.output
    assert "valid" in res.output and "INVALID" not in res.output
    assert json.loads(report.read_text())["ok"] is True


def test_cli_exit_1_when_a_blocking_check_fails(ds: Path, tmp_path: Path, cli: CliRunner) -> None:
    from reasonbrain.cli import app

    update_record(ds, "val", 0, category="chemical")
    args = ["data", "validate", str(ds), "--report", str(tmp_path / "r.json")]
    args += ["--quarantine", str(tmp_path / "q"), "--docs", str(tmp_path / "docs")]
    res = cli.invoke(app, args)
    assert res.exit_code == 1, res.output
    assert "category_known" in res.output and "INVALID" in res.output
    assert (tmp_path / "q" / "rejected.jsonl").is_file()
    assert (tmp_path / "docs" / "index.html").is_file()
    # --set reaches the validation rules: declaring the category makes the dataset valid
    res = cli.invoke(
        app,
        [
            "data",
            "validate",
            str(ds),
            "--report",
            str(tmp_path / "r.json"),
            "--set",
            "validate.categories=[physical,temporal,causal,story,chemical]",
        ],
    )
    assert res.exit_code == 0, res.output


def test_cli_exit_2_with_one_line_for_a_missing_directory(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "reasonbrain", "data", "validate", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:")
    assert "dataset directory not found" in lines[0]
    assert "Traceback" not in r.stderr


def test_relative_docs_and_report_paths(
    ds: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DVC runs `data validate DIR --docs reports/validation_docs` with relative paths."""
    monkeypatch.chdir(tmp_path)
    report = validate_dataset(
        Path("ds"),
        ValidateParams(),
        report_path=Path("reports/validation.json"),
        docs_dir=Path("reports/docs"),
        quarantine_dir=None,
    )
    assert report.ok and ds.is_dir()
    assert (tmp_path / "reports/validation.json").is_file()
    assert (tmp_path / "reports/docs/index.html").is_file()
