"""The ablation ladder for real, at a micro budget (Ray Train, the tiny model, the evaluation
library), and a same-machine rerun that must give bit-identical weights (issue 13, item 4).

Two optimiser steps and eight test samples are enough to check the wiring — a rung trains, is
evaluated with the verifier and lands in the report with its figures and the paired difference
of the others against ``full`` — not to measure anything (the other rungs' models are tested
without Ray: ``tests/model/``). The rerun starts a new process for its
Ray Train worker, so identical bytes mean the tokenizer, the initial weights, the data order,
the noise and the kernels are all deterministic.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from reasonbrain.config import Params, SynthParams, load_params
from reasonbrain.training.ablation import run_ablation, rung_params

pytestmark = [pytest.mark.ray, pytest.mark.slow]

MICRO = [
    "model.image_size=32",
    "train.batch_size=4",
    "train.max_steps=2",
    "train.checkpoint_every=2",
    "train.val_every=2",
    "train.val_samples=2",
    "train.sample_images=0",
    "train.warmup_steps=1",
    "train.max_failures=0",
    "train.cpus_per_worker=1",
    "eval.num_inference_steps=2",
    "eval.metrics=[l1]",
    "eval.bootstrap_resamples=50",
]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from reasonbrain.data.synth.generate import generate_dataset

    root = tmp_path_factory.mktemp("ablate") / "data"
    generate_dataset(
        root, SynthParams(n_train=24, n_val=4, n_test=8, size=32, seed=1, workers=1), progress=False
    )
    return root


@pytest.fixture(scope="module")
def ladder(
    ray_session: Any, data: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Params, Path, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("ladder")
    params = load_params(None, MICRO)
    report = run_ablation(
        params,
        data,
        tmp / "models",
        rungs=["identity", "full"],  # ip2p_cue trains in tests/model/test_ip2p_cue.py
        seeds=[0],
        report_path=tmp / "reports" / "ablation.json",
        storage=tmp / "ckpt",
        engine="loop",
        progress=False,
    )
    return params, tmp, report


def test_every_rung_is_trained_evaluated_and_reported(
    ladder: tuple[Params, Path, dict[str, Any]],
) -> None:
    _, tmp, report = ladder
    assert list(report["rungs"]) == ["identity", "full"]
    r = report["rungs"]["full"]
    assert r["metrics"]["steps"] == 2
    one = r["seeds"]["0"]
    assert one["eval"]["reasoning_acc"]["n"] == 8  # every test sample verified
    m = json.loads((Path(one["eval_dir"]) / "metrics.json").read_text())
    assert m["run"]["model"] == one["model_dir"] and m["run"]["split"] == "test"
    paired = report["rungs"]["identity"]["paired"]["reasoning_acc"]
    assert paired["seeds"] == 1 and paired["per_seed"]["0"]["mean_b"] == 0.0
    md = (tmp / "reports" / "ablation.md").read_text()
    assert "| `full` | + FRCE + ID controller + CME (ReasonBrain) | 1 | " in md
    assert "| `identity` | output = source (not trained) | 1 | — | 0.0 [" in md


def test_a_rerun_gives_bit_identical_weights(
    ladder: tuple[Params, Path, dict[str, Any]], data: Path
) -> None:
    from reasonbrain.training.trainer import train

    params, tmp, report = ladder
    first = Path(report["rungs"]["full"]["model_dir"])
    again = train(
        rung_params(params, "full", 0), data, tmp / "again", storage=tmp / "ckpt2", progress=False
    )
    assert again.run_name != report["rungs"]["full"]["run_name"]  # a new run, not a resume
    for name in ("model.safetensors", "tokenizer/tokenizer.json", "config.json"):
        assert _sha(again.model_dir / name) == _sha(first / name), name
