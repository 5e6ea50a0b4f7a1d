"""benchmarks/verifier_calibration.py: the bounds' calibration table of the README."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from benchmarks.verifier_calibration import main
from reasonbrain.data.schema import read_manifest
from reasonbrain.data.synth import FAMILIES
from tests.mini_dataset import reasonsynth_per_family


def test_near_perfect_outputs_pass_and_no_adversary_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = reasonsynth_per_family(tmp_path / "ds", train=False)
    n = len(FAMILIES)
    run = tmp_path / "run"  # an evaluation whose outputs are the targets
    (run / "images").mkdir(parents=True)
    rows = []
    for rec in read_manifest(data / "val.jsonl"):
        shutil.copy(data / rec.tgt_image, run / "images" / f"{rec.id}.png")
        rows.append(json.dumps({"id": rec.id, "image": f"images/{rec.id}.png"}))
    (run / "samples.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")

    main(["--data", str(data), "--split", "val", "--runs", str(run)])
    out = json.loads(capsys.readouterr().out)
    assert out["samples"] == n
    for name, row in out["near_perfect"].items():
        assert row["accuracy"] == 1.0, name
    for name, row in out["adversarial"].items():
        assert row["accuracy"] == 0.0, name
    assert out["adversarial"]["constant_grey"]["accuracy_nearest_rule"] > 0  # the old rule's hole
    assert out["runs"][str(run)]["accuracy"] == 1.0
    assert out["runs"][str(run)]["edit_ratio_p5_p50_p95"] == [0.0, 0.0, 0.0]
