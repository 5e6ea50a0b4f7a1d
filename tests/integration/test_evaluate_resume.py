"""What a rerun into the same ``--out`` may reuse (issue 14): the resume key pins the model
(registry version, content digest) and the dataset version; ``--force`` starts over, judge cache
included; the comparison report pairs only runs of the same dataset version and split; a judge
that answers garbage is counted, never fatal."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reasonbrain.config import EvalParams, Settings
from reasonbrain.errors import ConfigError
from reasonbrain.evaluation.predictors import resolve_model
from reasonbrain.evaluation.report import render_report
from reasonbrain.evaluation.runkey import dataset_identity, run_key
from reasonbrain.evaluation.runner import evaluate
from reasonbrain.evaluation.store import JUDGE_CACHE, RUN, SAMPLES, prepare_out, write_run_file
from reasonbrain.evaluation.testing import make_synth_dataset
from reasonbrain.registry.api import open_registry
from tests.unit.test_judge import _Server

PARAMS = EvalParams(batch_size=4, bootstrap_resamples=50, metrics=["l1"])
NO_WEIGHTS = Settings(weights_dir=None)


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synth_dataset(tmp_path_factory.mktemp("synth") / "ds", n=6)


def _run(model: str, ds: Path, out: Path, **kw: Any) -> Any:
    kw.setdefault("params", PARAMS)
    return evaluate(
        model, ds, out, kw.pop("params"), settings=NO_WEIGHTS, engine="loop", progress=False, **kw
    )


def _half_done(model: str, ds: Path, out: Path) -> None:
    """``out`` as a crashed evaluation of ``model`` leaves it: its key and one row."""
    key = run_key(resolve_model(model), dataset_identity(ds, "test"), "test", PARAMS)
    prepare_out(out, key, force=False)
    write_run_file(out, key, {"limit": None})
    (out / SAMPLES).write_text(json.dumps({"id": "s000", "metrics": {}}) + "\n")


def test_a_promotion_between_two_runs_is_not_resumed(
    ds: Path, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REASONBRAIN_HOME", str(tmp_path / "home"))  # file store + SQLite
    for var in ("REASONBRAIN_STORE_URI", "REASONBRAIN_DB_URL"):
        monkeypatch.delenv(var, raising=False)
    with open_registry() as reg:
        v1 = reg.register(model_dir, "editor", aliases=["production"])
    pinned = resolve_model("registry://editor@production")
    assert pinned.ref == "registry://editor@1" and pinned.sha256 == v1.sha256
    assert pinned.path is not None and Path(pinned.path).is_dir()
    out = tmp_path / "run"
    _half_done("registry://editor@production", ds, out)
    (model_dir / "model.safetensors").write_bytes(os.urandom(1000))  # retrained …
    with open_registry() as reg:
        reg.register(model_dir, "editor", aliases=["production"])  # … and promoted
    with pytest.raises(ConfigError, match=r"another evaluation \(differs in model\)"):
        _run("registry://editor@production", ds, out)
    assert (out / SAMPLES).read_text().count("\n") == 1  # the v1 row is left alone
    key = json.loads((out / RUN).read_text())["key"]
    assert key["model"] == {"kind": "registry", "sha256": v1.sha256, "ref": "registry://editor@1"}


def test_a_model_retrained_in_place_is_not_resumed(
    ds: Path, model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    _half_done(str(model_dir), ds, out)
    moved = tmp_path / "moved-model"
    shutil.copytree(model_dir, moved)
    # the same bytes elsewhere are the same model (content, not path, identifies it)
    assert resolve_model(str(moved)).key() == resolve_model(str(model_dir)).key()
    (model_dir / "config.json").write_text('{"model_type": "reasonbrain", "preset": "paper"}')
    with pytest.raises(ConfigError, match=r"differs in model"):
        _run(str(model_dir), ds, out)


def test_a_regenerated_dataset_is_not_resumed(tmp_path: Path) -> None:
    data = make_synth_dataset(tmp_path / "data", n=4)
    out = tmp_path / "run"
    assert _run("identity", data, out, limit=2).evaluated == 2
    shutil.rmtree(data)
    make_synth_dataset(tmp_path / "data", n=5)  # same path, other records
    with pytest.raises(ConfigError, match=r"differs in data"):
        _run("identity", data, out)
    m = json.loads((out / "metrics.json").read_text())["run"]
    assert m["model"] == "identity" and m["data"] == str(data.resolve())  # stable fields
    assert m["dataset"]["manifest_sha256"] and m["model_resolved"]["kind"] == "identity"


def test_force_clears_the_judge_cache(ds: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    _run("identity", ds, out, limit=2)
    stale = out / JUDGE_CACHE / "ab" / "ab12.json"
    stale.parent.mkdir(parents=True)
    stale.write_text('{"follows": true}')
    _run("identity", ds, out, limit=2, force=True)
    assert not (out / JUDGE_CACHE).exists()


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.close()


def test_unreadable_judge_answers_are_counted_not_fatal(
    ds: Path, tmp_path: Path, server: _Server
) -> None:
    server.sc_text = '{"score": [8.5., 3]}'  # malformed JSON from the judge
    params = PARAMS.model_copy(update={"judge": "http", "judge_model": "m"})
    out = tmp_path / "run"
    summary = evaluate(
        "identity",
        ds,
        out,
        params,
        settings=Settings(weights_dir=None, judge_url=server.url),
        engine="loop",
        progress=False,
        limit=3,
    )
    overall = summary.metrics["overall"]
    assert summary.evaluated == 3 and overall["judge_errors"] == {"unreadable": 3}
    assert "instruction_alignment" not in overall["metrics"]
    assert "judge_errors" in summary.metrics["config"]["judge"]["parsing"]


def test_report_pairs_only_runs_of_the_same_dataset_version(ds: Path, tmp_path: Path) -> None:
    other = make_synth_dataset(tmp_path / "other", n=4, size=24)  # same ids s000…, other data
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    _run("identity", ds, a)
    _run("identity", ds, b)
    _run("identity", other, c)
    text = render_report([a, b, c], tmp_path / "r.md", gallery_per_category=0, resamples=50)
    assert "| b | reasoning_acc ↑ | 6 |" in text  # same dataset version: paired
    assert "| c | reasoning_acc" not in text  # another dataset version: never paired by id
    assert "`c` is not paired with `a`: different dataset versions" in text
