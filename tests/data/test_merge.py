"""Stage ``data`` appends the merged landing-zone drops (``data.ingested_dir``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reasonbrain.config import DataParams, SynthParams
from reasonbrain.data.merge import merge_ingested
from reasonbrain.data.prepare import prepare_dataset
from reasonbrain.data.schema import read_manifest, resolve_in_root
from reasonbrain.errors import DatasetError
from tests.mini_dataset import make_mini_dataset


def _drop(ingested: Path, name: str, prefix: str) -> Path:
    d = make_mini_dataset(ingested / name, n_per_split=2)
    for split in ("train", "val", "test"):
        path = d / f"{split}.jsonl"
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        for r in rows:
            r["id"] = f"{prefix}-{r['id']}"
            r["meta"] = {"mask": r["tgt_image"], "counterfactuals": {"no_change": r["src_image"]}}
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d


def test_prepare_appends_drops_with_rebased_paths(tmp_path: Path) -> None:
    ingested = tmp_path / "ingested"
    _drop(ingested, "b-drop", "b")
    _drop(ingested, "a-drop", "a")
    (ingested / "README.md").write_text("not a drop")
    params = DataParams(
        dir=tmp_path / "ds",
        ingested_dir=ingested,
        synth=SynthParams(n_train=4, n_val=2, n_test=2, size=32, workers=1),
    )
    summary = prepare_dataset(params, force=True, progress=False)
    assert summary.counts == {"train": 8, "val": 6, "test": 6}
    test = read_manifest(tmp_path / "ds" / "test.jsonl")
    assert [r.id for r in test[2:]] == ["a-test-0", "a-test-1", "b-test-0", "b-test-1"]
    rec = test[2]
    assert rec.src_image == "ingested/a-drop/images/test-0-src.png"
    assert rec.meta == {
        "mask": "ingested/a-drop/images/test-0-tgt.png",
        "counterfactuals": {"no_change": "ingested/a-drop/images/test-0-src.png"},
    }
    for rel in (rec.src_image, rec.tgt_image):
        assert resolve_in_root(tmp_path / "ds", rel).is_file()
    # the same inputs give the same bytes (DVC's md5 is stable)
    before = (tmp_path / "ds" / "train.jsonl").read_bytes()
    prepare_dataset(params, force=True, progress=False)
    assert (tmp_path / "ds" / "train.jsonl").read_bytes() == before


def test_duplicate_ids_and_missing_tracked_drops_are_errors(tmp_path: Path) -> None:
    base = make_mini_dataset(tmp_path / "ds")
    ingested = tmp_path / "ingested"
    _drop(ingested, "d1", "x")
    _drop(ingested, "d2", "x")  # same ids again
    with pytest.raises(DatasetError, match="already in the dataset"):
        merge_ingested(base, ingested)
    ingested2 = tmp_path / "ingested2"
    ingested2.mkdir()
    (ingested2 / "gone.dvc").write_text("outs: []\n")
    with pytest.raises(DatasetError, match="dvc pull"):
        merge_ingested(base, ingested2)
    assert merge_ingested(base, tmp_path / "nothing") == {}
