"""Ray Train end to end (marked ``ray``; one shared Ray session; a toy model keeps fits short).

One reference run (1 worker, checkpoints to an S3 endpoint served by moto) is compared with a
2-worker DDP run, a run whose worker crashes and is restarted by Ray, and a run that dies and is
resumed by a new ``train(resume=True)`` call. The toy model draws noise from the global torch RNG
every step, so exact equality also proves that the RNG is a pure function of (seed, step).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from reasonbrain.config import Params, load_params
from reasonbrain.training.metrics import read_log
from tests.mini_dataset import make_mini_dataset
from tests.training_toy import failing_spec, toy_spec

pytestmark = [pytest.mark.ray, pytest.mark.slow]

STEPS = 6
BASE = [
    "model.image_size=32",
    "train.batch_size=4",
    f"train.max_steps={STEPS}",
    "train.checkpoint_every=2",
    "train.keep_checkpoints=2",
    "train.val_every=3",
    "train.val_samples=8",
    "train.warmup_steps=1",
    "train.max_failures=0",
    "train.precision=fp32",
    "train.cpus_per_worker=1",
]
NOISE = 0.01


def _params(*extra: str) -> Params:
    return load_params(None, [*BASE, *extra])


def _weights(model_dir: Path) -> dict[str, torch.Tensor]:
    """The toy's weights (without the failing wrapper's step counter)."""
    from safetensors.torch import load_file

    state = load_file(model_dir / "model.safetensors")
    return {k: v for k, v in state.items() if k != "train_steps"}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mini_dataset(tmp_path_factory.mktemp("train-data"), n_per_split=16, size=32)


@pytest.fixture(scope="module")
def reference(
    ray_session: Any, moto_endpoint: str, data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The uninterrupted 1-worker run, checkpointing to S3."""
    import boto3

    from reasonbrain.training.trainer import train

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ENDPOINT_URL", moto_endpoint)
        mp.setenv("AWS_ACCESS_KEY_ID", "AKIDREASONBRAINTEST")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        s3 = boto3.client("s3", endpoint_url=moto_endpoint)
        s3.create_bucket(Bucket="rb-train")
        out = tmp_path_factory.mktemp("ref-out")
        res = train(
            _params(),
            data_dir,
            out,
            storage="s3://rb-train/runs",
            spec=toy_spec(NOISE),
            progress=False,
        )
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="rb-train")["Contents"]]
        yield {"result": res, "keys": keys, "log": read_log(out / "train_log.jsonl")}


@pytest.mark.s3
def test_checkpoints_to_s3_and_back(reference: dict[str, Any], moto_endpoint: str) -> None:
    res = reference["result"]
    prefix = f"runs/{res.run_name}/"
    ckpts = sorted(
        {k[len(prefix) :].split("/")[0] for k in reference["keys"] if "/checkpoint_0" in k}
    )
    assert ckpts == ["checkpoint_00000004", "checkpoint_00000006"]  # last K=2 kept
    assert f"{prefix}checkpoint_00000006/model/model.safetensors" in reference["keys"]
    assert f"{prefix}checkpoint_00000006/train_state.pt" in reference["keys"]
    # the exported model is the S3 checkpoint's model, bit for bit
    from ray.train import Checkpoint

    from reasonbrain.training.checkpoint import load_train_state, s3_filesystem

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "AKIDREASONBRAINTEST")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
        fs = s3_filesystem(moto_endpoint)
    ckpt = Checkpoint(f"rb-train/{prefix}checkpoint_00000006", filesystem=fs)
    with ckpt.as_directory() as d:
        remote = _weights(Path(d) / "model")
        state = load_train_state(Path(d))
    local = _weights(res.model_dir)
    assert remote.keys() == local.keys()
    assert all(torch.equal(remote[k], local[k]) for k in local)
    assert state["step"] == STEPS and state["data_position"] == STEPS * 4
    assert [r["step"] for r in reference["log"]] == list(range(1, STEPS + 1))
    # where a streamed run's data would restart: the run's latest registered checkpoint
    from reasonbrain.training.checkpoint import Storage
    from reasonbrain.training.stream import resume_step

    store = Storage(uri="s3://rb-train/runs", path="rb-train/runs", filesystem=fs)
    assert resume_step(store, res.run_name) == STEPS
    assert resume_step(store, "no-such-run") == 0


def test_model_learns_and_logs(reference: dict[str, Any]) -> None:
    log = reference["log"]
    assert log[-1]["loss"] < log[0]["loss"]
    assert {"lr/diffusion", "samples_per_s", "data_wait_frac", "grad_norm"} <= set(log[0])
    assert [r["step"] for r in log if "val_loss" in r] == [3, 6]
    out = reference["result"].out_dir
    assert (out / "plots" / "train.csv").read_text().startswith("step,loss,loss_mllm,loss_dm,lr")
    assert (out / "metrics.json").is_file()


def test_two_workers_match_one_worker(
    reference: dict[str, Any], data_dir: Path, tmp_path: Path
) -> None:
    """DDP with 2 ranks × 2 samples == 1 rank × 4 samples, up to the per-rank noise draws."""
    from reasonbrain.training.trainer import train

    res = train(
        _params("train.workers=2"),
        data_dir,
        tmp_path / "out",
        storage=tmp_path / "ckpt",
        spec=toy_spec(NOISE),
        progress=False,
    )
    one = [r["loss"] for r in reference["log"]]
    two = [r["loss"] for r in read_log(tmp_path / "out" / "train_log.jsonl")]
    assert len(two) == STEPS
    # same samples per step and averaged gradients; only the noise (std 0.01) differs per rank
    assert two == pytest.approx(one, rel=0.02)
    w1, w2 = _weights(reference["result"].model_dir), _weights(res.model_dir)
    assert all(torch.allclose(w1[k], w2[k], atol=2e-3) for k in w1)


def test_resume_then_worker_crash_match_uninterrupted_run(
    reference: dict[str, Any], data_dir: Path, tmp_path: Path
) -> None:
    """A run dies at step 3 (no restarts left); ``train(resume=True)`` continues it from the
    step-2 checkpoint — with its data now streamed by Ray Data (``train.preload=false``: an
    operational key, the same run); a worker then raises at step 5, Ray restarts the group from
    the step-4 checkpoint and the stream from step 4; the final weights, the loss trajectory and
    the validation losses equal the uninterrupted pre-loaded run's exactly. The failures come from
    the model (a wrapped spec), not from a hook in the training loop.
    """
    import ray.train

    from reasonbrain.training.trainer import train

    def run(fail_at: int, **kw: Any) -> Any:
        spec = failing_spec(NOISE, fail_at=fail_at, marker=tmp_path / f"failed-at-{fail_at}")
        return train(
            _params(*kw.pop("sets", [])),
            data_dir,
            tmp_path / "out",
            storage=tmp_path / "ckpt",
            spec=spec,
            progress=False,
            **kw,
        )

    with pytest.raises(ray.train.TrainingFailedError, match="injected failure at step 3"):
        run(3)  # the process would end here
    (run_name,) = os.listdir(tmp_path / "ckpt")
    stored = sorted(p for p in os.listdir(tmp_path / "ckpt" / run_name) if p.startswith("checkpo"))
    assert [p for p in stored if p.startswith("checkpoint_0")] == ["checkpoint_00000002"]

    res = run(5, resume=True, sets=["train.max_failures=1", "train.preload=false"])
    assert res.run_name == run_name
    assert (tmp_path / "failed-at-5").read_text() == "5"  # it did crash
    log = read_log(tmp_path / "out" / "train_log.jsonl")
    assert [r["step"] for r in log] == list(range(1, STEPS + 1))  # no repeats, no gaps
    ref = _weights(reference["result"].model_dir)
    got = _weights(res.model_dir)
    assert ref.keys() == got.keys()
    assert all(torch.equal(ref[k], got[k]) for k in ref), "resumed/restarted run diverged"
    assert [r["loss"] for r in log] == [r["loss"] for r in reference["log"]]
    val = [r["val_loss"] for r in log if "val_loss" in r]
    assert val == [r["val_loss"] for r in reference["log"] if "val_loss" in r]
