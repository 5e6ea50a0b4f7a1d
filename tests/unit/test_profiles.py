"""Preset profiles: tiny defaults never reach the paper preset; impossible combinations are one
clear line; ``params.paper.yaml`` is exactly the profile; ``--preset paper`` reads it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reasonbrain.config import PAPER_PROFILE, ModelParams, load_params, params_from_dict
from reasonbrain.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_paper_keys_left_out_take_the_paper_profile_not_the_tiny_defaults() -> None:
    tiny = params_from_dict({})
    paper = params_from_dict({"model": {"preset": "paper"}})
    assert (tiny.model.image_size, paper.model.image_size) == (32, 256)
    assert paper.train.group_lr == {"new_modules": 1e-4, "lora": 2e-4, "diffusion": 1e-5}
    assert (paper.eval.guidance_scale, paper.eval.image_guidance_scale) == (7.5, 1.5)
    assert (tiny.eval.guidance_scale, tiny.eval.image_guidance_scale) == (2.0, 1.0)
    assert paper.model.null_text == "empty_prompt" and tiny.model.null_text == "learned"
    assert paper.model.prediction_type is None  # the diffusion repo's own target
    assert paper.train.precision == "auto" and paper.train.use_gpu
    # keys a paper file does set win over the profile
    p = params_from_dict({"model": {"preset": "paper", "image_size": 512}, "train": {"lr": 3e-5}})
    assert p.model.image_size == 512 and p.train.lr == 3e-5 and p.train.warmup_steps == 500
    assert ModelParams(preset="paper").image_size == 256


def test_params_paper_yaml_is_the_profile() -> None:
    from_file = load_params(ROOT / "params.paper.yaml")
    from_profile = params_from_dict({"model": {"preset": "paper"}})
    for section in ("model", "train", "eval"):
        assert getattr(from_file, section) == getattr(from_profile, section), section
    assert set(PAPER_PROFILE) == {"model", "train", "eval"}


def test_params_yaml_stays_the_tiny_demo() -> None:
    p = load_params(ROOT / "params.yaml")
    assert p.model.preset == "tiny" and p.model.image_size == 32 and p.model.null_text == "learned"
    assert p.model == params_from_dict({}).model.model_copy(update={"weights": p.model.weights})


@pytest.mark.parametrize(
    ("sets", "needle"),
    [
        (["model.preset=paper"], "model.image_size 32 does not work with the paper preset"),
        (["model.preset=paper", "model.image_size=300"], "multiple of 64"),
        (["model.preset=paper", "model.image_size=128"], "at least 256"),
        (
            ["model.preset=paper", "model.image_size=256", "model.spatial_cue=true"],
            "model.spatial_cue is a tiny-preset addition",
        ),
        (
            ["model.preset=paper", "model.image_size=256", "model.spatial_cue=false"],
            "model.source_residual is a tiny-preset addition",
        ),
        (
            [
                "model.preset=paper",
                "model.image_size=256",
                "model.spatial_cue=false",
                "model.source_residual=false",
                "model.pooled_cond_embedding=true",
            ],
            "model.pooled_cond_embedding is a tiny-preset addition",
        ),
        (
            [
                "model.preset=paper",
                "model.image_size=256",
                "model.spatial_cue=false",
                "model.source_residual=false",
                "model.unet_channels=[64,128,256]",
            ],
            "set model.unet_channels=null",
        ),
        (["model.unet_channels=[32,64]"], "must be 3 positive multiples of 32"),
        (["model.unet_channels=[48,64,128]"], "must be 3 positive multiples of 32"),
    ],
)
def test_impossible_paper_combinations_are_one_line(sets: list[str], needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_params(ROOT / "params.yaml", sets)  # the tiny file with the preset switched
    text = str(err.value)
    assert needle in text and "\n" not in text and "Value error" not in text


def test_cli_preset_paper_reads_params_paper_yaml(tmp_path: Path) -> None:
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    shutil.copy(ROOT / "params.paper.yaml", tmp_path / "params.paper.yaml")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(
        [sys.executable, "-m", "reasonbrain", "train", "--preset", "paper", "--out", "o"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    # the paper recipe was read (not the tiny params.yaml + preset=paper, which is refused) and
    # training stops at the missing data set with one line
    assert "params: params.paper.yaml" in r.stdout
    assert r.returncode == 2 and "no train.jsonl" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "reasonbrain",
            "train",
            "--preset",
            "paper",
            "--params",
            "params.yaml",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert r.returncode == 2 and "does not work with the paper preset" in r.stderr


def test_use_gpu_without_a_gpu_is_refused_before_ray_waits_forever(tmp_path: Path) -> None:
    import torch

    from reasonbrain.training.trainer import train
    from tests.mini_dataset import make_mini_dataset

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    data = make_mini_dataset(tmp_path / "d", n_per_split=1)
    with pytest.raises(ConfigError, match=r"train\.use_gpu is true but this machine has no CUDA"):
        train(load_params(None, ["train.use_gpu=true"]), data, tmp_path / "o", progress=False)
