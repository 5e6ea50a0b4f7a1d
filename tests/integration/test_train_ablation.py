"""The ablation ladder runner: rung switches, report and markdown table (training injected)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reasonbrain.config import Params, load_params
from reasonbrain.errors import ConfigError
from reasonbrain.training.ablation import RUNGS, run_ablation, rung_params
from reasonbrain.training.trainer import TrainResult


def test_rungs_set_the_paper_switches() -> None:
    base = load_params(None, [])
    full = rung_params(base, "full").model
    assert (
        full.use_patch_branch,
        full.use_region_branch,
        full.use_id_controller,
        full.use_cme,
    ) == (
        True,
        True,
        True,
        True,
    )
    b = rung_params(base, "baseline").model
    assert not (b.use_patch_branch or b.use_region_branch or b.use_id_controller or b.use_cme)
    assert rung_params(base, "ip2p").model.kind == "ip2p"
    r = rung_params(base, "region").model
    assert r.use_region_branch and not r.use_patch_branch
    assert rung_params(base, "full").model.spatial_cue
    assert not rung_params(base, "no_cue").model.spatial_cue
    assert list(RUNGS) == [
        "ip2p",
        "baseline",
        "patch",
        "region",
        "frce",
        "frce_id",
        "full",
        "no_cue",
    ]


def test_report_and_table(tmp_path: Path) -> None:
    seen: list[Params] = []

    def fake_train(p: Params, data: Path, out: Path, **_: Any) -> TrainResult:
        seen.append(p)
        loss = 1.0 - 0.1 * len(seen)
        return TrainResult(
            run_name=f"run{len(seen)}",
            run_uri="x",
            checkpoint_uri="x",
            out_dir=out,
            model_dir=out / "model",
            metrics={"steps": p.train.max_steps, "loss_start": 2.0, "loss_end": loss},
        )

    base = load_params(None, ["train.max_steps=7"])
    report_path = tmp_path / "reports" / "ablation.json"
    rep = run_ablation(
        base,
        tmp_path,
        tmp_path / "models",
        rungs=["full", "baseline"],
        report_path=report_path,
        train_fn=fake_train,
    )
    assert list(rep["rungs"]) == ["baseline", "full"]  # ladder order
    assert all(p.train.max_steps == 7 for p in seen)  # one fixed budget
    on_disk = json.loads(report_path.read_text())
    assert on_disk["rungs"]["full"]["switches"]["use_cme"] is True
    assert on_disk["rungs"]["full"]["eval"] is None  # filled by the evaluation step
    table = report_path.with_suffix(".md").read_text()
    assert "| `baseline` |" in table and "2.0000 → 0.8000" in table
    with pytest.raises(ConfigError, match="unknown ablation rungs"):
        run_ablation(base, tmp_path, tmp_path, rungs=["nope"], train_fn=fake_train)
