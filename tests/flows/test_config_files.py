"""dvc.yaml, prefect.yaml and params.yaml agree with the code (fast; no DVC run)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from reasonbrain.config import Params, load_params
from reasonbrain.errors import ConfigError
from reasonbrain.pipeline.dvc import overlay_overrides, write_params
from reasonbrain.pipeline.project import EVAL_DIR, MODELS_DIR, VERDICT

REPO = Path(__file__).resolve().parents[2]
DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]

#: keys that say how a stage runs, not what it computes: no stage may declare them
OPERATIONAL = {
    "train": {
        "workers",
        "cpus_per_worker",
        "placement_strategy",
        "strategy",
        "gradient_checkpointing",
        "checkpoint_every",
        "keep_checkpoints",
        "max_failures",
        "preload",
        "data_cpus",
        "prefetch_batches",
    },
    "eval": {
        "batch_size",
        "concurrency",
        "num_cpus_per_actor",
        "num_gpus_per_actor",
        "torch_threads",
        "judge_requests_per_s",
        "judge_max_retries",
        "judge_timeout_s",
    },
    "data.synth": {"workers"},
}


def _stage(name: str) -> dict[str, Any]:
    s = DVC[name]
    return dict(s.get("do", s))


def _declared(name: str) -> set[str]:
    return {p if isinstance(p, str) else next(iter(p)) for p in _stage(name).get("params", [])}


def _keys(section: dict[str, Any], prefix: str) -> set[str]:
    return {f"{prefix}.{k}" for k in section}


def test_every_declared_param_exists() -> None:
    flat: set[str] = set()

    def walk(d: dict[str, Any], prefix: str) -> None:
        for k, v in d.items():
            flat.add(f"{prefix}{k}")
            if isinstance(v, dict):
                walk(v, f"{prefix}{k}.")

    walk(Params().to_dict(), "")
    for name in DVC:
        assert _declared(name) <= flat, f"{name} declares unknown params"


def test_training_declares_exactly_the_learning_keys() -> None:
    d = Params().to_dict()
    expected = (_keys(d["model"], "model") - {"model.kind"}) | (
        _keys(d["train"], "train") - {f"train.{k}" for k in OPERATIONAL["train"]}
    )
    assert _declared("train") == expected  # model.kind comes from pipeline.models items


def test_evaluation_declares_exactly_the_result_keys() -> None:
    d = Params().to_dict()
    expected = _keys(d["eval"], "eval") - {f"eval.{k}" for k in OPERATIONAL["eval"]}
    galleries = {"eval.gallery_per_category", "eval.gallery_per_family"}  # the report's
    assert _declared("evaluate") == expected - galleries
    assert _declared("evaluate_identity") == _declared("evaluate")
    assert _declared("report") == {
        "eval.bootstrap_resamples",
        "eval.ci_level",
        "eval.gallery_per_category",
        "eval.gallery_per_family",
    }


def test_data_stage_declares_every_key_but_the_worker_count() -> None:
    d = Params().to_dict()["data"]
    expected = (_keys(d, "data") - {"data.synth"}) | (
        _keys(d["synth"], "data.synth") - {"data.synth.workers"}
    )
    assert _declared("data") == expected
    assert "data.ingested_dir" in expected and "${data.ingested_dir}" in _stage("data")["deps"]


def test_training_depends_on_the_verdict_not_the_timed_report() -> None:
    train = _stage("train")
    assert str(VERDICT) in train["deps"]
    assert not any("validation.json" in d for d in train["deps"])
    outs = [next(iter(o)) if isinstance(o, dict) else o for o in _stage("validate")["outs"]]
    assert str(VERDICT) in outs
    assert "--verdict reports/validation_verdict.json" in _stage("validate")["cmd"]


def test_layout_the_flows_expect_is_what_dvc_writes() -> None:
    train = _stage("train")
    outs = {next(iter(o)) if isinstance(o, dict) else o for o in train["outs"]}
    assert f"{MODELS_DIR}/${{key}}/model" in outs and f"{MODELS_DIR}/${{key}}/run.json" in outs
    ev = _stage("evaluate")
    assert f"--out {EVAL_DIR}/${{key}}" in ev["cmd"] and "--model models/${key}/model" in ev["cmd"]
    assert DVC["train"]["foreach"] == DVC["evaluate"]["foreach"] == "${pipeline.models}"
    assert "--out reports/eval/identity" in _stage("evaluate_identity")["cmd"]


def test_stage_commands_do_not_depend_on_the_python_on_path() -> None:
    for name in DVC:
        cmd = _stage(name)["cmd"]
        assert cmd.startswith("bin/reasonbrain "), name
    assert (REPO / "bin" / "reasonbrain").stat().st_mode & 0o111


def test_prefect_yaml_schedules_match_params() -> None:
    doc = yaml.safe_load((REPO / "prefect.yaml").read_text())
    deps = {d["entrypoint"]: d for d in doc["deployments"]}
    p = Params()
    (cron,) = deps["flows/pipeline.py:pipeline"]["schedules"]
    assert cron == {"cron": p.pipeline.cron, "timezone": p.pipeline.timezone}
    (interval,) = deps["flows/ingest.py:ingest"]["schedules"]
    assert interval == {"interval": p.ingest.interval_s}
    for entry in deps:
        path, name = entry.split(":")
        assert f"def {name}(" in (REPO / path).read_text()


def test_gate_names_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"promote\.model"):
        load_params(None, ["promote.model=nope"])
    with pytest.raises(ConfigError, match=r"promote\.baselines"):
        load_params(None, ["promote.baselines=[identity, gan]"])


def test_write_params_keeps_comments_and_refuses_bad_values(tmp_path: Path) -> None:
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    before = (tmp_path / "params.yaml").read_text()
    with pytest.raises(ConfigError, match="unknown key"):
        write_params(tmp_path, ["train.max_stepz=3"])
    assert (tmp_path / "params.yaml").read_text() == before  # untouched
    params, changed = write_params(tmp_path, ["train.max_steps=20", "eval.seed=0"])
    assert params.train.max_steps == 20 and changed == ["train.max_steps"]
    after = (tmp_path / "params.yaml").read_text()
    assert "# demo budget" in after and "max_steps: 20 " in after
    assert load_params(tmp_path / "params.yaml").train.max_steps == 20
    assert len(after.splitlines()) == len(before.splitlines())


def test_params_file_overlay_becomes_overrides(tmp_path: Path) -> None:
    f = tmp_path / "micro.yaml"
    f.write_text("train: {max_steps: 5, betas: [0.8, 0.9]}\npromote: {margin: 0.02}\n")
    items = overlay_overrides(f)
    assert items == ["train.max_steps=5", "train.betas=[0.8, 0.9]", "promote.margin=0.02"]
    p = load_params(REPO / "params.yaml", items)
    assert p.train.betas == (0.8, 0.9) and p.promote.margin == 0.02
