"""The ablation ladder runner: rung switches, seeds, evaluation, report (training injected).

Evaluation is the real evaluation library; each "trained" rung here is a predictions directory
whose right answers are chosen, so every figure of the report (accuracy over seeds, its spread,
paired differences against ``full``) can be checked by hand.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from reasonbrain.config import EvalParams, Params, Settings, load_params
from reasonbrain.data.schema import read_manifest
from reasonbrain.errors import ConfigError
from reasonbrain.evaluation.predictors import IDENTITY, PREDICTIONS_PREFIX
from reasonbrain.evaluation.runner import evaluate
from reasonbrain.evaluation.testing import make_synth_dataset
from reasonbrain.training.ablation import (
    LADDER,
    RUNGS,
    rebuild_report,
    run_ablation,
    rung_params,
)
from reasonbrain.training.trainer import TrainResult


def test_rungs_set_the_paper_switches() -> None:
    base = load_params(None, [])
    full = rung_params(base, "full").model
    assert (full.use_patch_branch, full.use_region_branch, full.use_id_controller) == (
        True,
        True,
        True,
    )
    assert full.use_cme and full.spatial_cue and full.kind == "reasonbrain"
    b = rung_params(base, "baseline").model
    assert not (b.use_patch_branch or b.use_region_branch or b.use_id_controller or b.use_cme)
    ip2p = rung_params(base, "ip2p").model
    assert ip2p.kind == "ip2p" and not ip2p.ip2p_spatial_cue
    cue = rung_params(base, "ip2p_cue").model
    assert cue.kind == "ip2p" and cue.ip2p_spatial_cue
    # the plain ip2p rung stays plain even if the base params ask for the baseline's cue
    asked = load_params(None, ["model.ip2p_spatial_cue=true"])
    assert not rung_params(asked, "ip2p").model.ip2p_spatial_cue
    r = rung_params(base, "region").model
    assert r.use_region_branch and not r.use_patch_branch
    assert not rung_params(base, "no_cue").model.spatial_cue
    assert rung_params(base, "full", seed=7).train.seed == 7
    assert list(RUNGS) == [
        "ip2p",
        "ip2p_cue",
        "baseline",
        "patch",
        "region",
        "frce",
        "frce_id",
        "full",
        "no_cue",
    ]
    assert LADDER[0] == "identity"


def _fake_train(results: dict[tuple[str, int], Path]) -> Any:
    def train(p: Params, data: Path, out: Path, **_: Any) -> TrainResult:
        m = p.model
        rung = "ip2p" if m.kind == "ip2p" else "full" if m.use_cme else "baseline"
        return TrainResult(
            run_name=f"{rung}-{p.train.seed}",
            run_uri="x",
            checkpoint_uri="x",
            out_dir=out,
            model_dir=results.get((rung, p.train.seed), out / "model"),
            metrics={"steps": p.train.max_steps, "loss_start": 2.0, "loss_end": 0.5},
            seconds=1.0,
        )

    return train


def test_training_only_report_and_table(tmp_path: Path) -> None:
    base = load_params(None, ["train.max_steps=7"])
    report_path = tmp_path / "reports" / "ablation.json"
    rep = run_ablation(
        base,
        tmp_path,
        tmp_path / "models",
        rungs=["full", "baseline", "identity"],
        report_path=report_path,
        train_fn=_fake_train({}),
        evaluate=False,
    )
    assert list(rep["rungs"]) == ["baseline", "full"]  # ladder order; identity needs evaluation
    on_disk = json.loads(report_path.read_text())
    assert on_disk["rungs"]["full"]["switches"]["use_cme"] is True
    assert on_disk["rungs"]["full"]["metrics"]["steps"] == 7  # one fixed budget
    assert on_disk["rungs"]["full"]["eval"] is None
    assert on_disk["rungs"]["full"]["seeds"]["0"]["model_dir"].endswith("full/seed-0/model")
    table = report_path.with_suffix(".md").read_text()
    assert "| `baseline` |" in table and "2.000 → 0.500" in table and "Not evaluated" in table
    for rungs, seeds, needle in (
        (["nope"], [0], "unknown ablation rungs"),
        (["full"], [1, 1], "seeds must be distinct"),
        (["full"], [], "seeds must be distinct"),
    ):
        with pytest.raises(ConfigError, match=needle):
            run_ablation(
                base, tmp_path, tmp_path, rungs=rungs, seeds=seeds, train_fn=_fake_train({})
            )


def test_seeds_are_summarised_and_rungs_paired_with_full(tmp_path: Path) -> None:
    ds = make_synth_dataset(tmp_path / "ds", n=8)
    recs = read_manifest(ds / "test.jsonl")
    right = {("full", 0): 6, ("full", 1): 8, ("ip2p", 0): 2, ("ip2p", 1): 3}
    dirs = {}
    for (rung, seed), n in right.items():  # the first n samples right, the rest "no change"
        d = tmp_path / "pred" / f"{rung}-{seed}"
        d.mkdir(parents=True)
        for i, r in enumerate(recs):
            Image.open(ds / (r.tgt_image if i < n else r.src_image)).save(d / f"{r.id}.png")
        dirs[(rung, seed)] = d

    def fake_evaluate(model: str, *args: Any, **kw: Any) -> Any:
        spec = model if model == IDENTITY else PREDICTIONS_PREFIX + model
        return evaluate(spec, *args, settings=Settings(weights_dir=None), **kw)

    params = load_params(
        None, ["eval.bootstrap_resamples=200", "eval.judge=none", "eval.metrics=[]"]
    )
    assert isinstance(params.eval, EvalParams)
    report_path = tmp_path / "reports" / "ablation.json"
    rep = run_ablation(
        params,
        ds,
        tmp_path / "models",
        rungs=["full", "ip2p", "identity"],
        seeds=[0, 1],
        report_path=report_path,
        train_fn=_fake_train(dirs),
        engine="loop",
        evaluate_fn=fake_evaluate,
        progress=False,
    )
    assert list(rep["rungs"]) == ["identity", "ip2p", "full"]
    full, ip2p, ident = rep["rungs"]["full"], rep["rungs"]["ip2p"], rep["rungs"]["identity"]
    acc = full["summary"]["reasoning_acc"]
    assert acc["values"] == {"0": 0.75, "1": 1.0} and acc["mean"] == 0.875
    assert acc["sd"] == pytest.approx(math.sqrt(2 * 0.125**2))
    assert (acc["min"], acc["max"], acc["n_seeds"]) == (0.75, 1.0, 2)
    assert full["seeds"]["0"]["eval"]["reasoning_acc"]["ci_low"] is not None  # per-seed CI
    assert full["eval"]["reasoning_acc"] == {"mean": 0.875, "sd": acc["sd"], "n_seeds": 2}
    assert ip2p["summary"]["no_change_rate"]["values"] == {"0": 0.75, "1": 0.625}
    # paired with full, seed by seed on the same samples: 0.25 − 0.75 and 0.375 − 1.0
    d = ip2p["paired"]["reasoning_acc"]
    assert [d["per_seed"][s]["diff"]["mean"] for s in ("0", "1")] == [-0.5, -0.625]
    assert d["mean"] == pytest.approx(-0.5625) and d["significant_seeds"] == d["seeds"] == 2
    assert ident["summary"]["reasoning_acc"]["mean"] == 0.0 and "paired" not in full
    assert ident["seeds"]["0"]["eval_dir"] == str(tmp_path / "models" / "identity" / "eval")
    assert (tmp_path / "models" / "full" / "seed-1" / "eval" / "samples.jsonl").is_file()

    md = report_path.with_suffix(".md").read_text()
    assert "Training seeds: 0, 1. Evaluated on the `test` split" in md
    full_row = "| `full` | + FRCE + ID controller + CME (ReasonBrain) | 2 | 2.000 → 0.500 |"
    assert full_row + " 87.5 ± 17.7 (75.0–100.0) | — |" in md
    assert "| -56.2 ± 8.8 (CI excludes 0 in 2/2) |" in md

    # one seed: CIs instead of a spread; rerunning a rung keeps the others' entries
    rep = run_ablation(
        params,
        ds,
        tmp_path / "models",
        rungs=["ip2p"],
        seeds=[0],
        report_path=report_path,
        train_fn=_fake_train(dirs),
        engine="loop",
        evaluate_fn=fake_evaluate,
        progress=False,
    )
    assert list(rep["rungs"]) == ["identity", "ip2p", "full"]
    assert rep["rungs"]["ip2p"]["summary"]["reasoning_acc"]["sd"] is None
    md = report_path.with_suffix(".md").read_text()
    row = next(x for x in md.splitlines() if x.startswith("| `ip2p` |"))
    assert "| 25.0 [" in row and "| -50.0 [" in row and "✱" in row
    # the nearest rule beside it (exact targets or sources here: the same −50 points) and its
    # per-hold-out means, which must add up to the overall figure over the 8 samples
    assert "| Δ vs full, nearest rule | nearest rule: seen / phrasing / combination |" in md
    assert row.count("| -50.0 [") == 2
    summary = rep["rungs"]["ip2p"]["summary"]
    holdouts = [(r.meta or {}).get("holdout", "seen") for r in recs]
    counts = {h: holdouts.count(h) for h in set(holdouts)}
    total = sum(counts[h] * summary[f"nearest_{h}"]["mean"] for h in counts)
    assert total / len(recs) == pytest.approx(summary["reasoning_acc_nearest"]["mean"])

    # --report-only: a report written by older code (no nearest-rule figures, no pairing) is
    # rebuilt from the evaluations it names, with the same figures and today's columns
    old = json.loads(report_path.read_text())
    for entry in old["rungs"].values():
        entry.pop("paired", None)
        for one in [entry, *entry["seeds"].values()]:
            for key in ("summary", "eval"):
                if isinstance(one.get(key), dict):
                    for n in ("nearest_seen", "nearest_phrasing", "nearest_combination"):
                        one[key].pop(n, None)
    report_path.write_text(json.dumps(old))
    report_path.with_suffix(".md").unlink()
    rebuilt = rebuild_report(params, report_path)
    assert rebuilt["rungs"]["ip2p"]["summary"] == rep["rungs"]["ip2p"]["summary"]
    assert rebuilt["rungs"]["ip2p"]["paired"] == rep["rungs"]["ip2p"]["paired"]
    assert report_path.with_suffix(".md").read_text() == md
    # an evaluation that is gone is named, not silently dropped
    gone = Path(rebuilt["rungs"]["ip2p"]["seeds"]["0"]["eval_dir"]) / "metrics.json"
    gone.unlink()
    with pytest.raises(ConfigError, match="rung 'ip2p' seed 0: its evaluation is gone"):
        rebuild_report(params, report_path)
    with pytest.raises(ConfigError, match="no ablation report to rebuild"):
        rebuild_report(params, tmp_path / "nothing.json")


def test_the_cli_refuses_bad_seeds_before_training(tmp_path: Path) -> None:
    from reasonbrain.cli.train import ablate

    kw: dict[str, Any] = {
        "data": tmp_path,
        "out": tmp_path / "m",
        "max_steps": 1,
        "rungs": "full",
        "evaluate": False,
        "split": None,
        "limit": None,
        "engine": "loop",
        "report": tmp_path / "r.json",
        "storage": None,
        "report_only": False,
        "params_path": None,
        "sets": None,
    }
    with pytest.raises(ConfigError, match="not a comma-separated list of integers"):
        ablate(seeds="0,one", **kw)
    with pytest.raises(ConfigError, match="seeds must be distinct"):
        ablate(seeds="2,2", **kw)
    with pytest.raises(ConfigError, match="unknown engine"):
        ablate(seeds="0", **{**kw, "engine": "gpu"})
    assert not (tmp_path / "m").exists()
