import json
from pathlib import Path

import pytest

from reasonbrain.data.schema import (
    ManifestLineError,
    Record,
    SynthMeta,
    existing_splits,
    iter_manifest,
    read_manifest,
    resolve_in_root,
    write_manifest,
)
from reasonbrain.errors import DatasetError


def _rec(**kw: object) -> Record:
    base: dict[str, object] = {
        "id": "a1",
        "category": "physical",
        "src_image": "images/src/a1.png",
        "tgt_image": "images/tgt/a1.png",
        "instruction": "What would happen if the ice cube were left in the sun?",
        "objects": ["ice cube"],
    }
    base.update(kw)
    return Record.model_validate(base)


def test_round_trip_preserves_every_field(tmp_path: Path) -> None:
    recs = [
        _rec(),
        _rec(
            id="a2",
            target_caption="a puddle of water",
            meta={"family": "melt", "mask": "images/mask/a2.png", "holdout": "phrasing"},
        ),
        _rec(id="a3", instruction="Imagine the café’s clock after a century — ünïcode"),
    ]
    path = tmp_path / "train.jsonl"
    assert write_manifest(path, recs) == 3
    assert read_manifest(path) == recs
    first = json.loads(path.read_text().splitlines()[0])
    assert "target_caption" not in first and "meta" not in first  # unset optionals left out


@pytest.mark.parametrize(
    "bad", ["/abs/a.png", "../outside.png", "images/../../x.png", "images\\a.png", ""]
)
def test_paths_must_stay_inside_the_root(bad: str) -> None:
    with pytest.raises(ValueError):
        _rec(src_image=bad)


def test_unknown_fields_are_rejected() -> None:
    with pytest.raises(ValueError):
        _rec(colour="red")


def test_bad_lines_carry_file_and_line_number(tmp_path: Path) -> None:
    path = tmp_path / "val.jsonl"
    good = _rec().to_json()
    path.write_text(good + "\n\n" + good.replace('"id":"a1"', '"id":"a2"') + "\n{not json\n")
    it = iter_manifest(path)
    assert next(it)[0] == 1
    assert next(it)[0] == 3  # blank line skipped, numbering kept
    with pytest.raises(ManifestLineError) as exc:
        next(it)
    assert exc.value.lineno == 4
    assert f"{path}:4" in str(exc.value)


def test_schema_error_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "val.jsonl"
    path.write_text(json.dumps({"id": "x", "category": "physical"}) + "\n")
    with pytest.raises(ManifestLineError, match="src_image"):
        read_manifest(path)


def test_resolve_in_root_refuses_symlink_escape(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    (root / "images").mkdir(parents=True)
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"x")
    (root / "images" / "link.png").symlink_to(outside)
    with pytest.raises(DatasetError, match="outside"):
        resolve_in_root(root, "images/link.png")
    assert resolve_in_root(root, "images/a.png") == (root / "images" / "a.png").resolve()


def test_existing_splits(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        existing_splits(tmp_path / "missing")
    with pytest.raises(DatasetError, match="no train/val/test"):
        existing_splits(tmp_path)
    (tmp_path / "test.jsonl").write_text("")
    (tmp_path / "train.jsonl").write_text("")
    assert existing_splits(tmp_path) == ["train", "test"]


def test_synth_meta_parses_ground_truth() -> None:
    m = SynthMeta.model_validate(
        {
            "family": "melt",
            "affected_object": "red ice cube",
            "mask": "images/mask/a.png",
            "counterfactuals": {"no_change": "images/src/a.png"},
            "holdout": "combination",
            "extra": 1,
        }
    )
    assert m.holdout == "combination" and m.model_extra == {"extra": 1}
    with pytest.raises(ValueError):
        SynthMeta.model_validate({"family": "f", "affected_object": "o", "mask": "/abs.png"})
