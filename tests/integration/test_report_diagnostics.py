"""The learning diagnostics of ``reports/compare.md`` (issue 13, item 6): old vs new verifier
rule side by side, accuracy per family, the confusion of verdicts, the worst failures per family
and training curves from the step log beside the evaluated model."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from reasonbrain.config import EvalParams, Settings
from reasonbrain.data.schema import read_manifest
from reasonbrain.evaluation.adversarial import ADVERSARIES, BENIGN, Case, to_image
from reasonbrain.evaluation.curves import curve_table, read_train_log
from reasonbrain.evaluation.images import load_rgb, to_array
from reasonbrain.evaluation.predictors import PREDICTIONS_PREFIX
from reasonbrain.evaluation.report import render_report
from reasonbrain.evaluation.runner import evaluate
from reasonbrain.evaluation.testing import make_synth_dataset

PARAMS = EvalParams(batch_size=8, bootstrap_resamples=20, metrics=[], judge="none")


def _half_twin(case: Case) -> np.ndarray:
    wrong = case.counterfactuals["wrong_object"]
    twin = np.abs(wrong - case.source).max(axis=-1, keepdims=True) > 0.02
    return np.where(twin, 0.5 * case.target + 0.5 * wrong, case.target).astype(np.float32)


def _background_shift(case: Case) -> np.ndarray:
    edited = np.zeros(case.target.shape[:2], dtype=bool)
    for other in (case.source, *case.counterfactuals.values()):
        edited |= np.abs(other - case.target).max(axis=-1) > 0.02
    brighter = np.clip(case.target + 0.1, 0.0, 1.0)
    return np.where(edited[..., None], case.target, brighter).astype(np.float32)


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One output of each kind on the 8 toy records (the last one has no prediction)."""
    root = tmp_path_factory.mktemp("diag")
    ds = make_synth_dataset(root / "ds", n=8)
    recs = read_manifest(ds / "test.jsonl")
    makers = [
        BENIGN["target"],
        BENIGN["target"],
        ADVERSARIES["source"],
        lambda c: c.counterfactuals["wrong_object"],
        _half_twin,  # the right edit, and half of it on the twin too
        lambda c: (0.45 * c.source + 0.55 * c.target).astype(np.float32),  # faint edit
        _background_shift,  # the right edit, the rest of the image brighter
    ]
    pred = root / "pred"
    pred.mkdir()
    for i, (rec, make) in enumerate(zip(recs, makers, strict=False)):
        meta = rec.meta or {}
        cfs = {k: to_array(load_rgb(ds / v)) for k, v in meta["counterfactuals"].items()}
        case = Case(
            to_array(load_rgb(ds / rec.src_image)), to_array(load_rgb(ds / rec.tgt_image)), cfs, i
        )
        to_image(make(case)).save(pred / f"{rec.id}.png")
    out = root / "mixed"
    evaluate(
        PREDICTIONS_PREFIX + str(pred), ds, out, PARAMS, settings=Settings(weights_dir=None),
        engine="loop", progress=False,
    )  # fmt: skip
    return ds, out


def _rows(out: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]


def test_verdict_confusion_and_old_vs_new_rule(
    mixed_run: tuple[Path, Path], tmp_path: Path
) -> None:
    _, run = mixed_run
    outcomes = [r["verifier"]["outcome"] for r in sorted(_rows(run), key=lambda r: r["id"])]
    assert outcomes == [
        "target",
        "target",
        "no_change",
        "wrong_object",
        "collateral_edit",
        "faint_edit",
        "background_changed",
        "no_output",
    ]
    m = json.loads((run / "metrics.json").read_text())["overall"]
    assert m["verdict_counts"] == {
        "target": 2,
        "no_change": 1,
        "wrong_object": 1,
        "faint_edit": 1,
        "collateral_edit": 1,
        "background_changed": 1,
        "no_output": 1,
    }
    assert m["verdict_rates"]["target"] == 0.25
    assert m["metrics"]["reasoning_acc"]["mean"] == 0.25
    assert m["metrics"]["reasoning_acc_nearest"]["mean"] == 0.625  # the bounds' three failures

    md = tmp_path / "compare.md"
    text = render_report([run], md, resamples=20)
    # old vs new, side by side, with the gap in points
    assert re.search(r"\| mixed \| 8 \| 0\.250 \[[^]]+\] \| 0\.625 \[[^]]+\] \| \+37\.5 \|", text)
    # the confusion of verdicts: counts and shares of the 8 verifiable samples, in outcome order
    header = (
        "| run | verifiable | target | no_change | wrong_object | faint_edit | collateral_edit "
        "| background_changed | no_output |"
    )
    assert header in text
    assert (
        "| mixed | 8 | 2 (25 %) | 1 (12 %) | 1 (12 %) | 1 (12 %) | 1 (12 %) | 1 (12 %) | 1 (12 %) |"
        in text
    )
    assert "### By hold-out type" in text and "| mixed · seen |" in text
    # per family, under its category
    assert "## Reasoning accuracy by family" in text
    assert re.search(r"\| physical \| melt \| 4 \| 0\.250 \[", text)  # 1 right of 4
    # the worst failure per family: the sample without output comes first, said why
    gallery = text.split("## Failure gallery")[1]
    assert "(no output)" in gallery and "prediction missing" in gallery
    assert gallery.count("\n| paint |") == 1 and gallery.count("\n| melt |") == 1


def _write_log(path: Path, steps: int) -> None:
    rows = []
    for s in range(1, steps + 1):
        row: dict[str, Any] = {"step": s, "loss": 5.0 / s, "loss_dm": 0.1 / s**0.5}
        row["loss_mllm"], row["loss_ground"] = 4.0 / s, 0.3
        if s % 10 == 0:
            row["val_loss"] = 5.5 / s
        rows.append(json.dumps(row))
    path.write_text("\n".join(rows) + "\n{partial")  # a log being written: last line cut


def test_training_curves_from_the_log_beside_the_model(
    mixed_run: tuple[Path, Path], tmp_path: Path
) -> None:
    _, run = mixed_run
    # pretend the run evaluated a trained model directory with its step log beside it
    model = tmp_path / "train-out" / "model"
    model.mkdir(parents=True)
    _write_log(model.parent / "train_log.jsonl", 40)
    ev = tmp_path / "ev-model"
    ev.mkdir()
    (ev / "samples.jsonl").write_bytes((run / "samples.jsonl").read_bytes())
    doc = json.loads((run / "metrics.json").read_text())
    doc["run"]["model_resolved"] = {"kind": "directory", "path": str(model), "spec": str(model)}
    (ev / "metrics.json").write_text(json.dumps(doc))

    rows = read_train_log(model.parent / "train_log.jsonl")
    header, body = curve_table(rows)
    assert header == ["step", "loss", "loss_dm", "loss_mllm", "loss_ground", "val_loss"]
    assert [r[0] for r in body] == ["1", "11", "21", "30", "40"]
    assert body[0][-1] == "—" and body[1][-1] == f"{5.5 / 10:.4f}"  # latest validation so far

    md = tmp_path / "reports" / "compare.md"
    charts = md.parent / "compare-curves"
    charts.mkdir(parents=True)
    (charts / "9-stale.png").write_bytes(b"from an earlier report")
    text = render_report([run, ev], md, resamples=20)
    assert "## Training curves" in text and "### ev-model" in text
    assert "### mixed\n\nStep log" not in text  # a predictions run has no training log
    pngs = sorted(p.name for p in charts.iterdir())
    assert pngs == ["1-ev-model.png"]  # the stale chart is gone
    with Image.open(charts / pngs[0]) as img:
        assert img.size == (720, 360) and img.mode == "RGB"
        # something was drawn in the loss colour (not a blank canvas)
        assert (np.asarray(img) == np.array([0x1F, 0x4E, 0x9C])).all(-1).sum() > 100
    assert "![training curves of ev-model](compare-curves/1-ev-model.png)" in text
    assert "| 40 | 0.1250 |" in text

    text = render_report([ev], md, resamples=20, curves=False)  # tables only
    assert "![training curves" not in text and "| 40 | 0.1250 |" in text
    assert not list(charts.iterdir())
