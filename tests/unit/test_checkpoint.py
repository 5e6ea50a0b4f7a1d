"""Checkpoint pieces without Ray: RNG capture, train state, storage URIs, run names, logs."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import torch

from reasonbrain.config import load_params
from reasonbrain.errors import CheckpointError, ConfigError
from reasonbrain.training.checkpoint import (
    capture_rng,
    latest_run,
    load_train_state,
    new_run_name,
    resolve_storage,
    restore_rng,
    run_identity,
    save_train_state,
)
from reasonbrain.training.metrics import read_log, write_outputs


def test_rng_round_trip() -> None:
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    state = capture_rng()
    first = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(99)
    np.random.seed(99)
    random.seed(99)
    restore_rng(state)
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(first[0], again[0])
    assert np.array_equal(first[1], again[1]) and first[2] == again[2]


def test_train_state_loads_weights_only(tmp_path: Path) -> None:
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, 2)).sum().backward()
    opt.step()
    state = {"step": 7, "optimizer": opt.state_dict(), "rng": capture_rng()}
    save_train_state(tmp_path, state, {"step": 7})
    back = load_train_state(tmp_path)
    assert back["step"] == 7
    assert torch.equal(back["optimizer"]["state"][0]["exp_avg"], opt.state[model.weight]["exp_avg"])
    (tmp_path / "train_state.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read train state"):
        load_train_state(tmp_path)
    with pytest.raises(CheckpointError, match=r"no train_state\.pt"):
        load_train_state(tmp_path / "missing")


def test_storage_uris(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local = resolve_storage(tmp_path / "ckpt")
    assert local.path == str((tmp_path / "ckpt").resolve()) and local.filesystem is None
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    s3 = resolve_storage("s3://bucket/some/prefix/")
    assert s3.path == "bucket/some/prefix" and s3.filesystem is not None
    assert s3.run_uri("r1") == "s3://bucket/some/prefix/r1"
    with pytest.raises(ConfigError, match="no bucket"):
        resolve_storage("s3:///x")
    with pytest.raises(ConfigError, match="unsupported"):
        resolve_storage("gs://bucket/x")


def test_run_names_are_unique_and_resume_finds_the_newest(tmp_path: Path) -> None:
    p = load_params(None, [])
    a = new_run_name(p, datetime(2026, 1, 1, tzinfo=UTC))
    b = new_run_name(p, datetime(2026, 1, 2, tzinfo=UTC))
    assert a != b and a.startswith(run_identity(p))
    # execution knobs do not change the identity; what is learned does
    assert run_identity(load_params(None, ["train.max_steps=5", "train.workers=2"])) == (
        run_identity(p)
    )
    assert run_identity(load_params(None, ["train.lr=0.5"])) != run_identity(p)
    store = resolve_storage(tmp_path)
    with pytest.raises(CheckpointError, match="no run with these params"):
        latest_run(store, p)
    for name in (a, b, new_run_name(load_params(None, ["train.seed=9"]))):
        (tmp_path / name).mkdir()
    assert latest_run(store, p) == b


def test_outputs_for_dvc(tmp_path: Path) -> None:
    rows = [
        {"step": s, "loss": 1.0 / s, "loss_dm": 1.0 / s, "loss_mllm": 0.0, "lr/diffusion": 0.1}
        for s in range(1, 9)
    ]
    rows[3]["val_loss"] = 0.5
    summary = write_outputs(tmp_path, rows)
    assert read_log(tmp_path / "train_log.jsonl") == rows
    assert summary["steps"] == 8 and summary["loss_end"] < summary["loss_start"]
    assert summary["val_loss"] == 0.5
    csv = (tmp_path / "plots" / "train.csv").read_text().splitlines()
    assert csv[0] == "step,loss,loss_mllm,loss_dm,lr" and len(csv) == 9
    assert (tmp_path / "plots" / "val.csv").read_text().splitlines()[1] == "4,0.5"
