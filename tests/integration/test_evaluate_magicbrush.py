"""MagicBrush's two evaluation protocols on the importer's fixture (``eval.magicbrush_protocol``).

Fixture (``make_magicbrush``): session ``a1`` with 2 turns, ``b2`` with 1 turn; every image is a
distinct solid colour, so "which image did the editor start from" is a pixel-exact question.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from reasonbrain.config import EvalParams, Settings
from reasonbrain.data.importers import import_dataset
from reasonbrain.data.schema import Record, read_manifest, resolve_in_root
from reasonbrain.errors import ConfigError, DatasetError
from reasonbrain.evaluation import pixel
from reasonbrain.evaluation.images import load_rgb, to_array
from reasonbrain.evaluation.predictors import Edit, EditRequest, ResolvedModel, sample_seed
from reasonbrain.evaluation.protocols import eval_units, plan_sample
from reasonbrain.evaluation.runner import evaluate
from reasonbrain.evaluation.store import RUN, SAMPLES
from reasonbrain.evaluation.worker import EvalWorker, to_batch
from tests.data.test_importers_fixtures import make_magicbrush

SINGLE = EvalParams(bootstrap_resamples=200, metrics=["l1", "l2"], judge="none")
FINAL = SINGLE.model_copy(update={"magicbrush_protocol": "final_turn"})
NO_WEIGHTS = Settings(weights_dir=None)


@pytest.fixture(scope="module")
def mb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("mb")
    import_dataset("magicbrush", make_magicbrush(base / "src"), base / "ds")
    return base / "ds"


def _rows(out: Path) -> dict[str, dict[str, Any]]:
    lines = (out / SAMPLES).read_text().splitlines()
    return {r["id"]: r for r in (json.loads(x) for x in lines if x.strip())}


def _run(mb: Path, out: Path, params: EvalParams, **kw: Any) -> Any:
    kw.setdefault("engine", "loop")
    return evaluate("identity", mb, out, params, settings=NO_WEIGHTS, progress=False, **kw)


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _records(mb: Path) -> dict[str, Record]:
    return {r.id: r for r in read_manifest(mb / "test.jsonl")}


def test_final_turn_is_one_sample_per_session_chained_on_own_outputs(
    mb: Path, tmp_path: Path
) -> None:
    recs = _records(mb)
    single, final = tmp_path / "single", tmp_path / "final"
    s = _run(mb, single, SINGLE)
    f = _run(mb, final, FINAL)
    assert (s.total, s.evaluated) == (3, 3)
    assert (f.total, f.evaluated) == (2, 2)
    single_rows, final_rows = _rows(single), _rows(final)
    assert sorted(single_rows) == ["a1-t1", "a1-t2", "b2-t1"]
    assert sorted(final_rows) == ["a1-t2", "b2-t1"]  # one row per session, the final turn's id
    assert "session" not in single_rows["a1-t2"]
    a1 = final_rows["a1-t2"]
    assert a1["session"] == {
        "id": "a1",
        "protocol": "final_turn",
        "turns_applied": 2,
        "turn_ids": ["a1-t1", "a1-t2"],
        "turn_seeds": [sample_seed("a1-t1", 0), sample_seed("a1-t2", 0)],
    }
    assert a1["seed"] == sample_seed("a1-t2", 0) and a1["image"] == "images/a1-t2.png"
    assert final_rows["b2-t1"]["session"]["turns_applied"] == 1

    # Identity editor: under final-turn turn 2 edits turn 1's *model* output (= the session
    # input), so the final image is the session input; under single-turn turn 2 edits its own
    # ground-truth input (= turn 1's ground-truth output), which has another colour.
    t2 = recs["a1-t2"]
    assert t2.meta is not None
    session_input = _pixels(resolve_in_root(mb, t2.meta["session_input"]))
    gt_input = _pixels(resolve_in_root(mb, t2.src_image))
    assert not np.array_equal(session_input, gt_input)
    assert np.array_equal(_pixels(final / "images/a1-t2.png"), session_input)
    assert np.array_equal(_pixels(single / "images/a1-t2.png"), gt_input)

    # metrics are against the *final* turn's ground truth
    target = to_array(load_rgb(resolve_in_root(mb, t2.tgt_image)))
    want = pixel.l1(to_array(load_rgb(resolve_in_root(mb, t2.meta["session_input"]))), target)
    assert want is not None and want > 0.05
    assert a1["metrics"]["l1"] == pytest.approx(want)
    assert single_rows["a1-t2"]["metrics"]["l1"] != pytest.approx(want)
    assert a1["caption"] == "target_caption"  # the final turn's local caption (CLIP-T's text)


class _Brighten:
    """A test editor whose output depends on its input: +10 per channel per edit; logs calls."""

    name = "brighten"

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], list[int]]] = []

    def predict(self, requests: list[EditRequest]) -> list[Edit]:
        self.calls.append(([r.instruction for r in requests], [r.seed for r in requests]))
        out: list[Edit] = []
        for r in requests:
            arr = np.asarray(r.image.convert("RGB")).astype(np.int16) + 10
            out.append(Edit(Image.fromarray(arr.clip(0, 255).astype(np.uint8)), None))
        return out

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}


def test_one_worker_call_runs_whole_chains_turn_by_turn(mb: Path) -> None:
    params = FINAL
    worker = EvalWorker(
        ResolvedModel("identity", "identity").to_dict(),
        str(mb),
        params.model_dump(mode="json"),
        NO_WEIGHTS.model_dump(mode="json"),
    )
    editor = _Brighten()
    worker.predictor = editor
    units = eval_units(read_manifest(mb / "test.jsonl"), params.magicbrush_protocol)
    result = worker(to_batch([plan_sample(u, params.seed) for u in units]))  # one call
    assert list(result["id"]) == ["a1-t2", "b2-t1"]
    # turn 1 of both sessions together, then turn 2 of a1 alone, each with its record's seed
    assert editor.calls == [
        (
            ["make it brighter, step 1", "make it brighter, step 1"],
            [sample_seed("a1-t1", 0), sample_seed("b2-t1", 0)],
        ),
        (["make it brighter, step 2"], [sample_seed("a1-t2", 0)]),
    ]
    recs = _records(mb)
    for sid, png, applied in zip(result["id"], result["png"], (2, 1), strict=True):
        meta = recs[str(sid)].meta
        assert meta is not None
        start = _pixels(resolve_in_root(mb, meta["session_input"])).astype(np.int16)
        with Image.open(io.BytesIO(bytes(png))) as im:
            got = np.asarray(im.convert("RGB")).astype(np.int16)
        assert np.array_equal(got, np.clip(start + 10 * applied, 0, 255))


def test_final_turn_resumes_by_session_and_records_the_protocol(mb: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = _run(mb, out, FINAL, limit=1)  # --limit counts sessions: a1 is never cut short
    assert (first.total, first.evaluated) == (1, 1) and sorted(_rows(out)) == ["a1-t2"]
    before = (out / "images/a1-t2.png").stat().st_mtime_ns
    second = _run(mb, out, FINAL)
    assert (second.total, second.skipped_done, second.evaluated) == (2, 1, 1)
    assert sorted(_rows(out)) == ["a1-t2", "b2-t1"]
    assert (out / "images/a1-t2.png").stat().st_mtime_ns == before  # done session not redone
    assert second.metrics["run"]["resumed_from"] == 1
    assert _run(mb, out, FINAL).evaluated == 0

    run = json.loads((out / RUN).read_text())
    assert run["key"]["eval"]["magicbrush_protocol"] == "final_turn"
    m = json.loads((out / "metrics.json").read_text())
    assert m["run"]["eval"]["magicbrush_protocol"] == "final_turn"
    assert m["config"]["magicbrush_protocol"]["name"] == "final_turn"
    assert m["config"]["magicbrush_protocol"]["sessions"] == 2
    assert m["run"]["samples"] == 2 and m["run"]["resumed_from"] == 2

    with pytest.raises(ConfigError, match=r"another evaluation .*eval"):
        _run(mb, out, SINGLE)  # switching protocol needs --force
    forced = _run(mb, out, SINGLE, force=True)
    assert forced.evaluated == 3 and sorted(_rows(out)) == ["a1-t1", "a1-t2", "b2-t1"]
    m = json.loads((out / "metrics.json").read_text())
    assert m["config"]["magicbrush_protocol"] == {
        "name": "single_turn",
        "rule": m["config"]["magicbrush_protocol"]["rule"],
        "sessions": 0,
    }


def test_units_leave_other_records_alone_and_refuse_broken_sessions(mb: Path) -> None:
    recs = read_manifest(mb / "test.jsonl")
    other = Record(id="x", category="c", src_image="a.png", tgt_image="b.png", instruction="i")
    units = eval_units([other, *recs], "final_turn")
    assert [(u.id, u.session, len(u.turns)) for u in units] == [
        ("x", None, 1),
        ("a1-t2", "a1", 2),
        ("b2-t1", "b2", 1),
    ]
    assert [u.id for u in eval_units([other, *recs], "single_turn")] == [
        "x",
        "a1-t1",
        "a1-t2",
        "b2-t1",
    ]
    assert all(u.session is None for u in eval_units(recs, "single_turn"))
    without_turn_1 = [r for r in recs if r.id != "a1-t1"]
    with pytest.raises(DatasetError, match=r"session 'a1' .*turns \[2\] are not 1..num_turns"):
        eval_units(without_turn_1, "final_turn")
    assert len(eval_units(without_turn_1, "single_turn")) == 2


@pytest.mark.ray
@pytest.mark.slow
def test_ray_data_runs_final_turn_sessions_like_the_loop(
    mb: Path, tmp_path: Path, ray_session: Any
) -> None:
    loop = _run(mb, tmp_path / "loop", FINAL)
    ray_run = _run(mb, tmp_path / "ray", FINAL, engine="ray")
    assert ray_run.evaluated == 2
    assert _rows(tmp_path / "ray") == _rows(tmp_path / "loop")
    for sid in ("a1-t2", "b2-t1"):
        a = _pixels(tmp_path / "ray/images" / f"{sid}.png")
        assert np.array_equal(a, _pixels(tmp_path / "loop/images" / f"{sid}.png"))
    assert ray_run.metrics["overall"] == loop.metrics["overall"]
