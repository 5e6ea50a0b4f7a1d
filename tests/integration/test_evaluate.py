"""Batch evaluation end to end: resumption, crash safety, run keys, Ray Data, CLI, report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from reasonbrain.config import EvalParams, Settings
from reasonbrain.data.schema import read_manifest
from reasonbrain.errors import ConfigError
from reasonbrain.evaluation.describe import write_metrics
from reasonbrain.evaluation.predictors import ResolvedModel, sample_seed
from reasonbrain.evaluation.report import render_report
from reasonbrain.evaluation.runkey import run_key
from reasonbrain.evaluation.runner import evaluate
from reasonbrain.evaluation.scoring import Scorer
from reasonbrain.evaluation.store import IMAGES, SAMPLES, image_name, read_done
from reasonbrain.evaluation.testing import make_synth_dataset
from reasonbrain.evaluation.worker import predictor_threads

PARAMS = EvalParams(batch_size=4, bootstrap_resamples=200, metrics=["l1", "psnr", "ssim"])
NO_WEIGHTS = Settings(weights_dir=None)


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synth_dataset(tmp_path_factory.mktemp("synth") / "ds", n=12)


def _lines(out: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (out / SAMPLES).read_text().splitlines() if x.strip()]


def _run(ds: Path, out: Path, **kw: Any) -> Any:
    kw.setdefault("engine", "loop")
    return evaluate(
        "identity", ds, out, kw.pop("params", PARAMS), settings=NO_WEIGHTS, progress=False, **kw
    )


def test_outputs_and_resumption(ds: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = _run(ds, out, limit=5)
    assert (first.evaluated, first.skipped_done) == (5, 0)
    assert len(_lines(out)) == 5
    second = _run(ds, out)  # resumes: only the 7 missing samples are evaluated
    assert (second.evaluated, second.skipped_done, second.total) == (7, 5, 12)
    rows = _lines(out)
    assert sorted(r["id"] for r in rows) == sorted(r.id for r in read_manifest(ds / "test.jsonl"))
    for r in rows:
        assert (out / r["image"]).is_file() and r["image"] == f"{IMAGES}/{image_name(r['id'])}"
        assert r["seed"] == sample_seed(r["id"], PARAMS.seed)
        assert r["metrics"]["reasoning_acc"] == 0.0 and r["verifier"]["nearest"] == "no_change"
    m = json.loads((out / "metrics.json").read_text())
    assert m["run"]["samples"] == 12 and m["run"]["resumed_from"] == 5
    assert m["overall"]["metrics"]["reasoning_acc"]["mean"] == 0.0
    assert m["overall"]["metrics"]["chance"]["mean"] == 0.25
    assert set(m["by_category"]) == {"physical", "temporal", "causal", "story"}
    assert (
        m["config"]["models"]["clip"].startswith("skipped")
        or m["config"]["models"]["clip"] == "not requested"
    )
    assert m["config"]["pixel"]["resize"].startswith("output resized")
    per_cat = json.loads((out / "per_category.json").read_text())
    assert {r["category"] for r in per_cat} == set(m["by_category"])
    third = _run(ds, out)  # nothing left to do
    assert third.evaluated == 0 and len(_lines(out)) == 12


def test_a_crash_mid_line_loses_only_that_sample(ds: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    _run(ds, out, limit=4)
    data = (out / SAMPLES).read_bytes()
    last_start = data.rstrip(b"\n").rfind(b"\n") + 1
    (out / SAMPLES).write_bytes(data[: last_start + 20])  # a half-written last row
    assert len(read_done(out)) == 3  # the partial row is cut off …
    assert (out / SAMPLES).read_bytes() == data[:last_start]  # … and the file repaired
    again = _run(ds, out, limit=4)
    assert again.evaluated == 1 and len(_lines(out)) == 4


def test_a_different_run_is_refused_unless_forced(ds: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    _run(ds, out, limit=2)
    other = PARAMS.model_copy(update={"verifier_region": "mask"})
    with pytest.raises(ConfigError, match=r"another evaluation .*eval"):
        _run(ds, out, limit=2, params=other)
    # operational settings (batch size, bootstrap) do not change results: resuming is fine
    assert _run(ds, out, limit=2, params=PARAMS.model_copy(update={"batch_size": 1})).evaluated == 0
    forced = _run(ds, out, limit=2, params=other, force=True)
    assert forced.evaluated == 2 and len(_lines(out)) == 2


def test_per_sample_seeds_are_stable_and_distinct() -> None:
    assert sample_seed("a", 0) == sample_seed("a", 0)
    assert len({sample_seed("a", 0), sample_seed("b", 0), sample_seed("a", 1)}) == 3
    assert 0 <= sample_seed("x", 7) < 2**63
    assert image_name("ok-id_1.2") == "ok-id_1.2.png"
    assert "/" not in image_name("a/b c") and image_name("a/b") != image_name("a_b")


@pytest.mark.ray
@pytest.mark.slow
def test_predictor_threads_use_the_machine_not_rays_one_cpu_pin(monkeypatch: Any) -> None:
    import os

    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert predictor_threads(EvalParams(concurrency=1)) == 8
    assert predictor_threads(EvalParams()) == 8 // EvalParams().concurrency
    assert predictor_threads(EvalParams(concurrency=3)) == 2
    assert predictor_threads(EvalParams(concurrency=16)) == 1
    assert predictor_threads(EvalParams(torch_threads=3, concurrency=2)) == 3
    # how fast, not what: a changed thread count still resumes the same run
    model, data = ResolvedModel("identity", "identity"), {"path": "d", "manifest_sha256": "x"}
    base = run_key(model, data, "test", EvalParams())
    assert run_key(model, data, "test", EvalParams(torch_threads=1)) == base


def test_ray_data_gives_the_same_rows_as_the_loop(
    ds: Path, tmp_path: Path, ray_session: Any
) -> None:
    loop = _run(ds, tmp_path / "loop", limit=8)
    ray_run = _run(ds, tmp_path / "ray", limit=8, engine="ray")
    assert ray_run.evaluated == 8
    by_id = {r["id"]: r for r in _lines(tmp_path / "loop")}
    for r in _lines(tmp_path / "ray"):
        assert r["metrics"] == by_id[r["id"]]["metrics"] and r["seed"] == by_id[r["id"]]["seed"]
    assert ray_run.metrics["overall"] == loop.metrics["overall"]


def _perfect_run(ds: Path, out: Path) -> Path:
    """A run whose outputs are the true targets (built with the library's scorer and writer)."""
    scorer = Scorer(PARAMS, NO_WEIGHTS)
    from reasonbrain.evaluation.judges.oracle import OracleJudge

    scorer.judge = OracleJudge()
    rows = []
    (out / IMAGES).mkdir(parents=True)
    for rec in read_manifest(ds / "test.jsonl"):
        img = Image.open(ds / rec.tgt_image)
        img.save(out / IMAGES / image_name(rec.id))
        row = scorer.score(rec, ds, img, rationale="the red box melts into a yellow puddle")
        row["image"] = f"{IMAGES}/{image_name(rec.id)}"
        rows.append(row)
    (out / SAMPLES).write_text("".join(json.dumps(r) + "\n" for r in rows))
    write_metrics(
        out, rows, PARAMS, NO_WEIGHTS, {"model": "perfect", "data": str(ds), "split": "test"}
    )
    return out


def test_report_tables_pairs_and_gallery(ds: Path, tmp_path: Path) -> None:
    ident = tmp_path / "identity"
    _run(ds, ident)
    perfect = _perfect_run(ds, tmp_path / "perfect")
    md = tmp_path / "reports" / "compare.md"
    text = render_report([ident, perfect], md, gallery_per_family=1, resamples=200)
    assert md.read_text() == text
    assert "| identity | 12 | 0.000 [0.000, 0.000]" in text
    assert "| perfect | 12 | 1.000 [1.000, 1.000]" in text
    assert (
        "## reasoning_acc ↑ by category" in text and "## reasoning_acc ↑ by hold-out type" in text
    )
    assert "Chance level of reasoning accuracy: 0.250" in text
    # paired: perfect − identity = +1 on every sample, significant
    assert (
        "| perfect | reasoning_acc ↑ | 12 | 0.000 | 1.000 | 1.000 [1.000, 1.000] ✱ | 100% |" in text
    )
    # gallery: the worst failure per family (2 families; the perfect run has none), images as
    # relative links that exist
    assert text.count("![output](") == 2 and "No failures." in text
    for link in [s.split(")")[0] for s in text.split("](")[1:]]:
        assert (md.parent / link).is_file(), link
    assert "| no_change | nearest no_change, edit left 1.00, background 0.00" in text  # why
    with pytest.raises(ConfigError, match="not an evaluation output"):
        render_report([tmp_path], tmp_path / "x.md")


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reasonbrain", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=180,
    )


@pytest.mark.slow
def test_cli_evaluate_and_report(ds: Path, tmp_path: Path) -> None:
    out = tmp_path / "ev"
    r = _cli(
        "evaluate",
        "--model",
        "identity",
        "--data",
        str(ds),
        "--out",
        str(out),
        "--engine",
        "loop",
        "--limit",
        "3",
        "--set",
        "eval.metrics=[l1]",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert "evaluated 3 new, 0 already done" in r.stdout
    r = _cli("report", "--runs", str(out), "--out", str(tmp_path / "c.md"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr and (tmp_path / "c.md").is_file()
    r = _cli(
        "evaluate",
        "--model",
        str(tmp_path / "missing"),
        "--data",
        str(ds),
        "--out",
        str(out),
        cwd=tmp_path,
    )
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "model directory not found" in lines[0]
