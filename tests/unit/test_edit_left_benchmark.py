"""benchmarks/edit_left.py: the verifier's criterion 2 on any split, training included."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from benchmarks.edit_left import main
from reasonbrain.data.schema import read_manifest
from reasonbrain.data.synth import FAMILIES
from tests.mini_dataset import reasonsynth_per_family

N = len(FAMILIES)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return reasonsynth_per_family(tmp_path_factory.mktemp("edit_left") / "ds")


def _run(dataset: Path, split: str, out: Path, image: str) -> Path:
    """An evaluation-like directory whose outputs are each record's ``image`` (src/tgt)."""
    (out / "images").mkdir(parents=True)
    rows = []
    for rec in read_manifest(dataset / f"{split}.jsonl"):
        name = f"{rec.id}.png"
        shutil.copy(dataset / getattr(rec, f"{image}_image"), out / "images" / name)
        rows.append(json.dumps({"id": rec.id, "image": f"images/{name}"}))
    (out / "samples.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return out


def test_target_leaves_nothing_and_source_everything_on_train_and_val(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    perfect = _run(dataset, "train", tmp_path / "perfect", "tgt")
    idle = _run(dataset, "val", tmp_path / "idle", "src")
    assert main(["--data", str(dataset), "--run", f"train={perfect}", "--run", f"val={idle}"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    done, undone = runs[f"train={perfect}"], runs[f"val={idle}"]
    assert done["samples"] == N and undone["samples"] == N  # the training split is scored
    assert done["edit_ratio_p5_p50_p95"] == [0.0, 0.0, 0.0] and done["within_edit_bound"] == 1.0
    assert undone["edit_ratio_p5_p50_p95"] == [1.0, 1.0, 1.0] and undone["within_edit_bound"] == 0
    assert done["background_error_p5_p50_p95"] == [0.0, 0.0, 0.0]


def test_a_wrong_run_is_one_line(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--data", str(dataset), "--run", f"val={tmp_path / 'missing'}"]) == 2
    assert main(["--data", str(dataset), "--run", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("error: --run") for line in err)


def test_a_run_of_another_split_is_an_error_not_zero_samples(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    val_run = _run(dataset, "val", tmp_path / "val-run", "tgt")
    assert main(["--data", str(dataset), "--run", f"train={val_run}"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "scores none of the" in err[0] and "train.jsonl" in err[0]
