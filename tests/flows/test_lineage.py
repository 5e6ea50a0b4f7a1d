"""Lineage: gathered from run.json, the checkpoint, dvc.lock and git; the same keys when a person
registers a training output with ``reasonbrain registry register DIR``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from reasonbrain.errors import RegistryError
from reasonbrain.lineage import LINEAGE_KEYS, gather_lineage, git_state
from reasonbrain.registry.db import open_db
from reasonbrain.registry.tables import Metric, ModelVersion, Run
from tests.flows.helpers import git

PARAMS = {"model": {"kind": "ip2p"}, "train": {"max_steps": 7}}


def _training_output(root: Path, ckpt: Path) -> Path:
    """A DVC project with a trained model at models/rb (run.json, metrics, log, checkpoint)."""
    out = root / "models" / "rb"
    (out / "model").mkdir(parents=True)
    (out / "model" / "config.json").write_text('{"preset": "tiny"}')
    (out / "model" / "model.safetensors").write_bytes(os.urandom(1000))
    ckpt.mkdir(parents=True)
    (ckpt / "train_state.json").write_text(json.dumps({"step": 7, "params": PARAMS}))
    run = {
        "run_name": "ip2p-tiny-abc-20261201",
        "run_uri": str(ckpt.parent),
        "checkpoint_uri": str(ckpt),
        "params_hash": "abc123",
        "metrics": {"loss_end": 0.5},
        "seconds": 12.0,
    }
    (out / "run.json").write_text(json.dumps(run))
    (out / "metrics.json").write_text(json.dumps({"loss_end": 0.5, "steps": 7}))
    log = [{"step": s, "loss": 1.0 / s, "loss_dm": 0.1, "lr/x": 1e-3, "epoch": 0.1} for s in (1, 2)]
    log.append({"step": 2, "val_loss": 0.7})
    (out / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    (root / "dvc.yaml").write_text("stages: {}\n")
    lock = {
        "schema": "2.0",
        "stages": {
            "data": {"outs": [{"path": "data/ds", "md5": "datamd5.dir"}]},
            "train@rb": {
                "cmd": "bin/reasonbrain train --data data/ds --out models/rb --set model.kind=ip2p",
                "deps": [
                    {"path": "data/ds", "md5": "datamd5.dir"},
                    {"path": "reasonbrain/models", "md5": "code.dir"},
                ],
                "outs": [
                    {"path": "models/rb/model", "md5": "m.dir"},
                    {"path": "models/rb/metrics.json", "md5": "x"},
                    {"path": "reports/curves", "md5": "c.dir"},  # a git-tracked directory out
                ],
            },
        },
    }
    (root / "dvc.lock").write_text(yaml.safe_dump(lock))
    (root / "code.py").write_text("x = 1\n")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    return out / "model"


def test_lineage_of_a_training_output(tmp_path: Path) -> None:
    model = _training_output(tmp_path / "proj", tmp_path / "ckpt" / "run" / "checkpoint_7")
    lin = gather_lineage(model, source="cli")
    assert tuple(lin) == LINEAGE_KEYS
    head = git(tmp_path / "proj", "rev-parse", "HEAD").strip()
    assert lin["git_commit"] == head and lin["git_dirty"] is False
    assert lin["params"] == PARAMS  # the checkpoint's own copy (what the run used)
    assert lin["params_hash"] == "abc123" and lin["ray_run_name"] == "ip2p-tiny-abc-20261201"
    assert lin["dataset_version"] == "datamd5.dir" and lin["dataset_path"] == "data/ds"
    assert lin["train_metrics"] == {"loss_end": 0.5, "steps": 7}
    assert lin["source"] == "cli" and lin["flow_run_id"] is None
    # the training output directory itself is refused with the fix in the message
    with pytest.raises(RegistryError, match="register its model"):
        gather_lineage(model.parent, source="cli")


def test_checkpoint_unreachable_falls_back_to_the_given_params(tmp_path: Path) -> None:
    model = _training_output(tmp_path / "proj", tmp_path / "ckpt" / "run" / "checkpoint_7")
    (tmp_path / "ckpt" / "run" / "checkpoint_7" / "train_state.json").unlink()
    given: dict[str, Any] = {"model": {"kind": "ip2p"}}
    assert gather_lineage(model, source="pipeline", params=given)["params"] == given
    assert gather_lineage(model, source="cli")["params"] is None


def test_dirty_ignores_what_dvc_writes_but_not_code(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    _training_output(root, tmp_path / "ckpt" / "run" / "c")
    (root / "dvc.lock").write_text((root / "dvc.lock").read_text() + "# rerun\n")
    (root / "models/rb/metrics.json").write_text('{"loss_end": 0.4}')
    (root / "models/rb/.gitignore").write_text("/model\n")
    (root / "data").mkdir()
    (root / "data" / "drop.dvc").write_text("outs: []\n")
    (root / "reports/curves").mkdir(parents=True)
    (root / "reports/curves/loss.png").write_bytes(b"png")  # inside a directory out
    assert git_state(root)[1] is False
    (root / "reports/curves_extra.py").write_text("x = 3\n")  # beside it, not inside
    assert git_state(root)[1] is True
    (root / "reports/curves_extra.py").unlink()
    (root / "code.py").write_text("x = 2\n")
    assert git_state(root)[1] is True
    assert git_state(tmp_path / "ckpt") == (None, None)  # not a git work tree


def test_plain_model_dir_has_the_same_keys_with_nothing_known(tmp_path: Path) -> None:
    d = tmp_path / "m"
    d.mkdir()
    (d / "w.bin").write_bytes(b"x")
    lin = gather_lineage(d, source="cli")
    assert tuple(lin) == LINEAGE_KEYS
    assert lin["ray_run_name"] is None and lin["params"] is None and lin["source"] == "cli"


def test_registry_register_by_hand_records_lineage_and_the_training_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from reasonbrain.cli import app

    model = _training_output(tmp_path / "proj", tmp_path / "ckpt" / "run" / "checkpoint_7")
    db_url = f"sqlite:///{tmp_path / 'reg.db'}"
    monkeypatch.setenv("REASONBRAIN_DB_URL", db_url)
    monkeypatch.setenv("REASONBRAIN_STORE_URI", (tmp_path / "store").as_uri())
    r = CliRunner().invoke(app, ["registry", "register", str(model), "--name", "rb"])
    assert r.exit_code == 0, r.output
    assert "lineage: run ip2p-tiny-abc-20261201 · dataset datamd5.dir" in " ".join(r.output.split())
    db = open_db(db_url)
    try:
        with db.sessions() as s:
            mv = s.scalars(select(ModelVersion)).one()
            run = s.get(Run, "ip2p-tiny-abc-20261201")
            curves = s.scalars(select(Metric).where(Metric.step.is_not(None))).all()
        assert set(LINEAGE_KEYS) <= set(mv.lineage)
        assert mv.lineage["source"] == "cli" and mv.lineage["params"] == PARAMS
        assert mv.run_id == run.id and run.kind == "train" and run.parent_id is None
        assert {(c.name, c.step) for c in curves} == {
            ("loss", 1),
            ("loss", 2),
            ("loss_dm", 1),
            ("loss_dm", 2),
            ("val_loss", 2),
        }
    finally:
        db.dispose()
