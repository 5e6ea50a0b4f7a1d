"""``reasonbrain evaluate --predictions DIR``: edits made elsewhere, scored like a model's.

A predictions directory holds one image per sample, ``<id>.png`` (or ``.jpg``/``.webp``). What
must hold: the same verifier and metrics as a model run (re-scoring an evaluation's own images
gives its rows back); a missing, unreadable or ambiguous prediction is a counted failure — wrong,
recorded per sample and in ``metrics.json``, never a crash, never left out of the accuracy; the
resume key follows the directory's content; and no adversarial output written there beats
chance on any ReasonSynth family (issue 13's adversarial-output test, through this path).
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from reasonbrain.config import EvalParams, Settings, SynthParams
from reasonbrain.data.schema import read_manifest
from reasonbrain.errors import ConfigError
from reasonbrain.evaluation.adversarial import ADVERSARIES, Case, to_image
from reasonbrain.evaluation.images import load_rgb, to_array
from reasonbrain.evaluation.predictors import PREDICTIONS_PREFIX
from reasonbrain.evaluation.runner import evaluate
from reasonbrain.evaluation.store import SAMPLES
from reasonbrain.evaluation.testing import make_synth_dataset

PARAMS = EvalParams(batch_size=8, bootstrap_resamples=20, metrics=["l1"], judge="oracle")
NO_WEIGHTS = Settings(weights_dir=None)


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synth_dataset(tmp_path_factory.mktemp("pred") / "ds", n=8)


def _rows(out: Path) -> dict[str, dict[str, Any]]:
    lines = (out / SAMPLES).read_text().splitlines()
    return {r["id"]: r for r in map(json.loads, lines) if r}


def _evaluate(spec: str, ds: Path, out: Path, **kw: Any) -> Any:
    return evaluate(
        spec, ds, out, kw.pop("params", PARAMS), settings=NO_WEIGHTS, engine="loop",
        progress=False, **kw,
    )  # fmt: skip


def test_missing_unreadable_and_ambiguous_predictions_are_counted_failures(
    ds: Path, tmp_path: Path
) -> None:
    recs = read_manifest(ds / "test.jsonl")
    pred = tmp_path / "pred"
    pred.mkdir()
    # 0-3: the true target as PNG, WebP (lossless), upper-case PNG, and RGBA: all correct
    Image.open(ds / recs[0].tgt_image).save(pred / f"{recs[0].id}.png")
    Image.open(ds / recs[1].tgt_image).save(pred / f"{recs[1].id}.webp", lossless=True)
    Image.open(ds / recs[2].tgt_image).save(pred / f"{recs[2].id}.PNG")
    Image.open(ds / recs[3].tgt_image).convert("RGBA").save(pred / f"{recs[3].id}.png")
    # 4: missing; 5: not an image; 6: a truncated PNG; 7: two files for one id
    (pred / f"{recs[5].id}.png").write_bytes(b"this is not a png")
    good = (pred / f"{recs[0].id}.png").read_bytes()
    (pred / f"{recs[6].id}.png").write_bytes(good[: len(good) // 2])
    Image.open(ds / recs[7].tgt_image).save(pred / f"{recs[7].id}.png")
    Image.open(ds / recs[7].tgt_image).save(pred / f"{recs[7].id}.jpg")
    (pred / "not-a-sample.png").write_bytes(good)  # a naming mistake: claimed by no sample
    (pred / "notes.txt").write_text("ignored: not an image type")

    out = tmp_path / "ev"
    summary = _evaluate(PREDICTIONS_PREFIX + str(pred), ds, out)
    assert summary.evaluated == 8
    rows = _rows(out)
    status = {i: rows[r.id]["prediction"]["status"] for i, r in enumerate(recs)}
    assert status == {
        0: "ok",
        1: "ok",
        2: "ok",
        3: "ok",
        4: "missing",
        5: "unreadable",
        6: "unreadable",
        7: "ambiguous",
    }
    assert rows[recs[2].id]["prediction"]["file"] == f"{recs[2].id}.PNG"
    assert "OSError" in rows[recs[6].id]["prediction"]["error"]  # truncated: fails on load()
    assert sorted(rows[recs[7].id]["prediction"]["files"]) == [
        f"{recs[7].id}.jpg",
        f"{recs[7].id}.png",
    ]
    for i in range(4):
        row = rows[recs[i].id]
        assert row["metrics"]["reasoning_acc"] == 1.0 and row["verifier"]["outcome"] == "target"
        assert (out / row["image"]).is_file()
    for i in range(4, 8):
        row = rows[recs[i].id]
        # wrong under both rules, no image, no distance-based metric guessed
        assert row["metrics"]["reasoning_acc"] == row["metrics"]["reasoning_acc_nearest"] == 0.0
        assert row["metrics"]["instruction_alignment"] == 0.0  # the judge had nothing to read
        assert "l1" not in row["metrics"] and "edit_error" not in row["metrics"]
        assert row["verifier"]["outcome"] == "no_output" and row["verifier"]["nearest"] == "none"
        assert row["image"] is None and row["judge"] is None
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(
        f"{r.id}.png" for r in recs[:4]
    )
    m = json.loads((out / "metrics.json").read_text())
    overall = m["overall"]
    assert overall["predictions"] == {"ambiguous": 1, "missing": 1, "ok": 4, "unreadable": 2}
    acc = overall["metrics"]["reasoning_acc"]
    assert acc["n"] == 8 and acc["mean"] == 0.5  # failures count in the denominator
    assert overall["verdict_counts"] == {"target": 4, "no_output": 4}
    assert m["run"]["model"] == PREDICTIONS_PREFIX + str(pred.resolve())
    assert m["run"]["model_resolved"]["kind"] == "predictions"
    cover = m["run"]["predictions"]
    assert cover["unused_files"] == 1 and cover["unused_examples"] == ["not-a-sample.png"]
    assert cover["split_samples_with_a_file"] == 7  # the ambiguous sample has files

    # the fingerprint is the directory's content: a new file means another evaluation
    Image.open(ds / recs[4].tgt_image).save(pred / f"{recs[4].id}.png")
    with pytest.raises(ConfigError, match="another evaluation"):
        _evaluate(PREDICTIONS_PREFIX + str(pred), ds, out)
    redo = _evaluate(PREDICTIONS_PREFIX + str(pred), ds, out, force=True)
    assert redo.metrics["overall"]["predictions"]["ok"] == 5


def test_rescoring_an_evaluations_images_gives_its_rows_back(ds: Path, tmp_path: Path) -> None:
    first = tmp_path / "identity"
    _evaluate("identity", ds, first)
    again = tmp_path / "again"
    _evaluate(PREDICTIONS_PREFIX + str(first / "images"), ds, again)
    a, b = _rows(first), _rows(again)
    assert set(a) == set(b)
    for sid in a:
        assert b[sid]["metrics"] == a[sid]["metrics"]
        assert b[sid]["verifier"] == a[sid]["verifier"]
        assert b[sid]["prediction"] == {"status": "ok", "file": f"{sid}.png"}


def test_a_predictions_directory_that_does_not_exist_is_one_clear_error(
    ds: Path, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="predictions directory not found"):
        _evaluate(PREDICTIONS_PREFIX + str(tmp_path / "nope"), ds, tmp_path / "ev")


def test_cli_scores_a_predictions_directory(
    ds: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from reasonbrain.cli.evaluate import evaluate as cli_evaluate

    recs = read_manifest(ds / "test.jsonl")
    pred = tmp_path / "pred"
    pred.mkdir()
    for r in recs[:5]:
        shutil.copy(ds / r.tgt_image, pred / f"{r.id}.png")
    (pred / "typo-id.png").write_bytes((pred / f"{recs[0].id}.png").read_bytes())
    cli_evaluate(
        model=None,
        predictions=pred,
        data=ds,
        split="test",
        out=tmp_path / "ev",
        limit=None,
        engine="loop",
        force=False,
        params_path=None,
        sets=["eval.metrics=[l1]", "eval.bootstrap_resamples=20"],
    )
    out = " ".join(capsys.readouterr().out.split())
    assert "reasoning_acc 0.625" in out  # 5 of 8 right, 3 missing count as wrong
    assert "missing 3" in out and "1 file(s) match no sample id, e.g. typo-id.png" in out


def test_the_cli_wants_exactly_one_of_model_and_predictions(ds: Path, tmp_path: Path) -> None:
    from reasonbrain.cli.evaluate import evaluate as cli_evaluate

    common: dict[str, Any] = {
        "data": ds,
        "split": "test",
        "out": tmp_path / "x",
        "limit": None,
        "engine": "loop",
        "force": False,
        "params_path": None,
        "sets": None,
    }
    for model, predictions in (("identity", tmp_path), (None, None)):
        with pytest.raises(ConfigError, match="exactly one of --model and --predictions"):
            cli_evaluate(model=model, predictions=predictions, **common)


# ---------------------------------------------------------------- adversarial outputs, via files
@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from reasonbrain.data.synth.generate import generate_dataset

    root = tmp_path_factory.mktemp("adv") / "data"
    params = SynthParams(n_train=0, n_val=0, n_test=104, size=32, seed=5, workers=1)
    generate_dataset(root, params, progress=False)
    return root


@pytest.mark.slow
def test_no_adversarial_prediction_directory_beats_chance_on_any_family(
    synth: Path, tmp_path: Path
) -> None:
    recs = read_manifest(synth / "test.jsonl")
    cases = []
    for i, rec in enumerate(recs):
        meta = rec.meta or {}
        cfs = {k: to_array(load_rgb(synth / v)) for k, v in meta["counterfactuals"].items()}
        src, tgt = (
            to_array(load_rgb(synth / rec.src_image)),
            to_array(load_rgb(synth / rec.tgt_image)),
        )
        cases.append((rec.id, Case(src, tgt, cfs, i)))
    assert len({(r.meta or {})["family"] for r in recs}) == 26
    params = EvalParams(batch_size=16, bootstrap_resamples=10, metrics=[], judge="none")
    worst: dict[str, tuple[str, float]] = {}
    for name, adversary in sorted(ADVERSARIES.items()):
        pred = tmp_path / name
        pred.mkdir()
        for sid, case in cases:
            to_image(adversary(case)).save(pred / f"{sid}.png")
        out = tmp_path / f"ev-{name}"
        summary = _evaluate(PREDICTIONS_PREFIX + str(pred), synth, out, params=params)
        by_family = {
            fam: g["metrics"]["reasoning_acc"]["mean"]
            for fam, g in summary.metrics["by_family"].items()
        }
        assert len(by_family) == 26 and summary.metrics["overall"]["predictions"] == {"ok": 104}
        fam = max(by_family, key=by_family.__getitem__)
        worst[name] = (fam, by_family[fam])
    above = {k: v for k, v in worst.items() if v[1] > 0.25}
    assert not above, f"adversarial outputs above chance (25 %) on a family: {above}"
    # and the old rule alone would have been fooled somewhere (why the bounds exist)
    nearest: dict[str, list[float]] = defaultdict(list)
    for row in _rows(tmp_path / "ev-constant_sky").values():
        if row["metrics"].get("reasoning_acc_nearest") is not None:
            nearest[row["family"]].append(row["metrics"]["reasoning_acc_nearest"])
    assert max(sum(v) / len(v) for v in nearest.values()) > 0.25
