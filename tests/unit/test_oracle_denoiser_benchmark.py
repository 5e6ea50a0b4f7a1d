"""benchmarks/oracle_denoiser.py: the tiny UNet drawing outcomes under oracle conditioning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmarks.oracle_denoiser import OracleDenoiser, Split, main, score_edit_left
from reasonbrain.data.synth import FAMILIES
from reasonbrain.evaluation.verifier import VerifierConfig
from tests.mini_dataset import reasonsynth_per_family

N = len(FAMILIES)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return reasonsynth_per_family(tmp_path_factory.mktemp("oracle") / "ds")


class _Answer(OracleDenoiser):
    """Outputs a fixed latent whatever it is given: the scorer's reference points."""

    def __init__(self, latent: torch.Tensor) -> None:
        torch.nn.Module.__init__(self)
        self.down, self.up = torch.nn.PixelUnshuffle(2), torch.nn.PixelShuffle(2)
        self.latent = latent

    def forward(self, source, mask, family, g):  # type: ignore[no-untyped-def]
        return self.latent[: source.shape[0]]


def test_the_scorer_is_the_verifiers_criterion_2(dataset: Path) -> None:
    families = sorted(f.name for f in FAMILIES)
    val = Split(dataset, "val", families)
    config = VerifierConfig()
    perfect = score_edit_left(_Answer(torch.nn.PixelUnshuffle(2)(val.target)), val, config)
    idle = score_edit_left(_Answer(torch.nn.PixelUnshuffle(2)(val.source)), val, config)
    assert perfect == {"median_left": 0.0, "within_bound": 1.0}
    assert idle == {"median_left": 1.0, "within_bound": 0.0}


@pytest.mark.slow
def test_it_learns_to_draw_and_reports_a_curve(
    dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--data", str(dataset), "--steps", "80", "--eval-every", "20", "--eval-n", str(N)]
    assert main(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(lines[-1])
    curve = summary["curve"]
    assert [p["step"] for p in curve] == [20, 40, 60, 80]
    assert [json.loads(line) for line in lines[:-1]] == curve  # progress lines = the curve
    assert summary["unet_parameters"] > 1_000_000 and summary["noise"] == "pure"
    # 80 steps on N samples: the share of the edit left falls on the samples it trains on
    assert curve[-1]["train"]["median_left"] < curve[0]["train"]["median_left"] - 0.05


def test_bad_data_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data", str(tmp_path / "missing"), "--steps", "1"]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert captured.out == "" and len(err) == 1 and err[0].startswith("error: --data")


def test_bad_architecture_and_counts_are_refused_before_training(
    dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--data", str(dataset), "--steps", "1"]
    assert main([*args, "--unet-channels", "30", "30", "30"]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert captured.out == "" and len(err) == 1 and "multiples of 32" in err[0]
    with pytest.raises(SystemExit) as exit_info:  # argparse: usage + one error line, exit 2
        main([*args, "--eval-every", "0"])
    assert exit_info.value.code == 2
    assert "--eval-every: must be a positive integer" in capsys.readouterr().err


def test_a_record_path_outside_the_dataset_is_refused(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Record paths resolve inside the dataset root (symlinks included), as in training and
    evaluation: an image linked to a file outside the dataset is one line, exit 2."""
    import shutil

    copy = tmp_path / "ds"
    shutil.copytree(dataset, copy)
    rel = json.loads((copy / "train.jsonl").read_text().splitlines()[0])["src_image"]
    outside = tmp_path / "outside.png"
    shutil.move(copy / rel, outside)
    (copy / rel).symlink_to(outside)
    assert main(["--data", str(copy), "--steps", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "outside the dataset root" in err[0] and rel in err[0]
