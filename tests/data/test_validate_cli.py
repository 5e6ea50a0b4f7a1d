"""`reasonbrain data validate`: an ad-hoc run writes no pipeline output; the verdict file changes
only when the outcome does (DVC stage ``train`` depends on it)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from typer.testing import CliRunner, Result

from reasonbrain.cli import app
from tests.mini_dataset import make_mini_dataset

REPO = Path(__file__).resolve().parents[2]


def _validate(cwd: Path, *args: str) -> Result:
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(app, ["data", "validate", *args])
    finally:
        os.chdir(old)


def test_ad_hoc_validation_leaves_the_pipeline_report_alone(tmp_path: Path) -> None:
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    tracked = tmp_path / "reports" / "validation.json"
    tracked.parent.mkdir()
    tracked.write_text('{"the pipeline": "report"}\n')
    ds = make_mini_dataset(tmp_path / "other")
    r = _validate(tmp_path, str(ds))
    assert r.exit_code == 0, r.output
    assert tracked.read_text() == '{"the pipeline": "report"}\n'
    assert sorted(p.name for p in tracked.parent.iterdir()) == ["validation.json"]


def test_verdict_is_stable_and_the_report_keeps_the_timings(tmp_path: Path) -> None:
    ds = make_mini_dataset(tmp_path / "ds")
    out = []
    for i in range(2):
        r = _validate(tmp_path, str(ds), "--report", f"r{i}.json", "--verdict", f"v{i}.json")
        assert r.exit_code == 0, r.output
        out.append(
            (
                (tmp_path / f"v{i}.json").read_bytes(),
                json.loads((tmp_path / f"r{i}.json").read_text()),
            )
        )
    (v0, r0), (v1, _) = out
    assert v0 == v1  # same data, same rules → same bytes, whatever the timings
    verdict = json.loads(v0)
    assert verdict["ok"] is True and "timings" not in verdict and "seconds" not in verdict
    assert {c["name"] for c in verdict["checks"]} == {c["name"] for c in r0["checks"]}
    assert "timings" in r0 and r0["totals"] == verdict["totals"]
