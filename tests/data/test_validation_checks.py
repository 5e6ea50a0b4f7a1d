"""Each validation check is triggered by a fixture that breaks exactly that rule (issue 2 §5)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from reasonbrain.config import ValidateParams
from reasonbrain.data.validation import CHECKS, validate_dataset
from reasonbrain.data.validation.facts import head_nouns, unmentioned_objects
from reasonbrain.errors import DatasetError
from tests.data.validation_fixtures import (
    SIZE,
    append_line,
    make_valid_dataset,
    read_records,
    update_record,
    write_image,
    write_mask,
)

PARAMS = ValidateParams()


@pytest.fixture(scope="module")
def valid_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_valid_dataset(tmp_path_factory.mktemp("template") / "ds")


@pytest.fixture
def ds(valid_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the valid dataset for one test to break."""
    return Path(shutil.copytree(valid_template, tmp_path / "ds", symlinks=True))


def test_valid_dataset_passes_every_check(ds: Path) -> None:
    report = validate_dataset(ds, PARAMS)
    assert report.ok
    assert report.failed_checks == []
    assert [c.name for c in report.checks] == [c.name for c in CHECKS]
    assert report.rows == 8
    assert report.rows_per_split == {"train": 4, "val": 2, "test": 2}
    assert report.invalid_rows == 0
    # 8 sources (one shared by two rows → 7 files) + 8 targets + 4 masks + 12 counterfactuals
    assert report.images_probed == 7 + 8 + 4 + 12


# --------------------------------------------------------------------------- one rule each
def _missing_file(ds: Path) -> str:
    (ds / "images/tgt/001.png").unlink()
    return "train.jsonl:1"


def _directory_instead_of_file(ds: Path) -> str:
    p = ds / "images/src/004.png"
    p.unlink()
    p.mkdir()
    return "train.jsonl:4"


def _missing_counterfactual(ds: Path) -> str:
    (ds / "images/cf/006_wrong_object.png").unlink()
    return "val.jsonl:2"


def _absolute_path(ds: Path) -> str:
    update_record(ds, "train", 0, src_image=str((ds / "images/src/001.png").resolve()))
    return "train.jsonl:1"


def _dotdot_path(ds: Path) -> str:
    write_image(ds.parent / "outside.png", seed=1)
    update_record(ds, "test", 1, tgt_image="../outside.png")
    return "test.jsonl:2"


def _symlink_escape(ds: Path) -> str:
    outside = ds.parent / "outside.png"
    shutil.copy(ds / "images/tgt/001.png", outside)
    (ds / "images/tgt/001.png").unlink()
    (ds / "images/tgt/001.png").symlink_to(outside)
    return "train.jsonl:1"


def _mask_path_escapes(ds: Path) -> str:
    rec = read_records(ds, "val")[0]
    write_mask(ds.parent / "m.png")
    update_record(ds, "val", 0, meta={**rec["meta"], "mask": "../m.png"})
    return "val.jsonl:1"


def _mask_not_a_string(ds: Path) -> str:
    rec = read_records(ds, "test")[0]
    update_record(ds, "test", 0, meta={**rec["meta"], "mask": 7})
    return "test.jsonl:1"


def _truncated_image(ds: Path) -> str:
    p = ds / "images/tgt/002.png"
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return "train.jsonl:2"


def _not_an_image(ds: Path) -> str:
    (ds / "images/mask/005.png").write_text("this is not a PNG", encoding="utf-8")
    return "val.jsonl:1"


def _wrong_mode(ds: Path) -> str:
    write_image(ds / "images/tgt/004.png", seed=77, mode="L")
    return "train.jsonl:4"


def _mask_in_rgb(ds: Path) -> str:
    write_image(ds / "images/mask/007.png", seed=5, mode="RGB")
    return "test.jsonl:1"


def _too_small(ds: Path) -> str:
    write_image(ds / "images/src/001.png", seed=1, size=(8, 8))
    write_image(ds / "images/tgt/001.png", seed=2, size=(8, 8))
    return "train.jsonl:1"


def _size_mismatch(ds: Path) -> str:
    write_image(ds / "images/tgt/004.png", seed=9, size=(SIZE, SIZE - 8))
    return "train.jsonl:4"


def _counterfactual_size_mismatch(ds: Path) -> str:
    write_image(ds / "images/cf/008_no_change.png", seed=9, size=(SIZE + 8, SIZE + 8))
    return "test.jsonl:2"


def _empty_instruction(ds: Path) -> str:
    update_record(ds, "train", 3, instruction="   ", objects=[])
    return "train.jsonl:4"


def _short_instruction(ds: Path) -> str:
    update_record(ds, "val", 1, instruction="Melt it", objects=[])
    return "val.jsonl:2"


def _long_instruction(ds: Path) -> str:
    update_record(ds, "test", 0, instruction="What if the sapling grew? " * 40)
    return "test.jsonl:1"


def _unknown_category(ds: Path) -> str:
    update_record(ds, "val", 0, category="chemical")
    return "val.jsonl:1"


def _duplicate_id_across_splits(ds: Path) -> str:
    update_record(ds, "test", 1, id="train-001")
    return "test.jsonl:2"


def _train_test_leakage(ds: Path) -> str:
    # a re-encoded copy of a train source under another name: caught by content, not path
    from PIL import Image

    with Image.open(ds / "images/src/002.png") as im:
        im.save(ds / "images/src/007.png", compress_level=9)
    return "test.jsonl:1"


def _target_equals_source(ds: Path) -> str:
    shutil.copy(ds / "images/src/005.png", ds / "images/tgt/005.png")
    return "val.jsonl:1"


def _malformed_json(ds: Path) -> str:
    n = append_line(ds, "val", '{"id": "val-x", "category": ')
    return f"val.jsonl:{n}"


def _schema_invalid_line(ds: Path) -> str:
    rec = read_records(ds, "train")[0]
    del rec["instruction"]
    rec["id"] = "train-new"
    import json

    n = append_line(ds, "train", json.dumps(rec))
    return f"train.jsonl:{n}"


def _unknown_field(ds: Path) -> str:
    update_record(ds, "test", 0, colour="red")
    return "test.jsonl:1"


def _not_utf8(ds: Path) -> str:
    n = append_line(ds, "test", b'{"id": "\xff\xfe"}')
    return f"test.jsonl:{n}"


BREAKERS: list[tuple[Callable[[Path], str], str]] = [
    (_missing_file, "images_exist"),
    (_directory_instead_of_file, "images_exist"),
    (_missing_counterfactual, "images_exist"),
    (_absolute_path, "paths_inside_root"),
    (_dotdot_path, "paths_inside_root"),
    (_symlink_escape, "paths_inside_root"),
    (_mask_path_escapes, "paths_inside_root"),
    (_mask_not_a_string, "paths_inside_root"),
    (_truncated_image, "images_decode"),
    (_not_an_image, "images_decode"),
    (_wrong_mode, "image_modes"),
    (_mask_in_rgb, "image_modes"),
    (_too_small, "image_sizes"),
    (_size_mismatch, "image_sizes_match"),
    (_counterfactual_size_mismatch, "image_sizes_match"),
    (_empty_instruction, "instruction_length"),
    (_short_instruction, "instruction_length"),
    (_long_instruction, "instruction_length"),
    (_unknown_category, "category_known"),
    (_duplicate_id_across_splits, "ids_unique"),
    (_train_test_leakage, "no_train_test_leakage"),
    (_target_equals_source, "target_differs"),
    (_malformed_json, "manifest_lines_parse"),
    (_schema_invalid_line, "manifest_lines_parse"),
    (_unknown_field, "manifest_lines_parse"),
    (_not_utf8, "manifest_lines_parse"),
]


@pytest.mark.parametrize(("breaker", "check"), BREAKERS, ids=[b.__name__[1:] for b, _ in BREAKERS])
def test_breaking_one_rule_fails_exactly_that_check(
    ds: Path, breaker: Callable[[Path], str], check: str
) -> None:
    where = breaker(ds)
    report = validate_dataset(ds, PARAMS)
    assert report.failed_checks == [check], report.to_dict()["checks"]
    assert not report.ok
    result = report.check(check)
    assert result.severity == "blocking"
    assert result.failing_rows == 1
    assert [e.where for e in result.examples] == [where]
    assert result.examples[0].detail
    assert report.invalid_rows == 1


def test_every_check_is_covered_by_a_breaker() -> None:
    covered = {check for _, check in BREAKERS} | {"objects_mentioned", "rows_present"}
    assert covered == {c.name for c in CHECKS}


def test_oversized_images_fail_image_sizes(ds: Path) -> None:
    write_image(ds / "images/src/004.png", seed=3, size=(40, 40))
    write_image(ds / "images/tgt/004.png", seed=4, size=(40, 40))
    report = validate_dataset(ds, ValidateParams(max_image_size=36))
    assert report.failed_checks == ["image_sizes"]
    assert report.check("image_sizes").examples[0].where == "train.jsonl:4"
    assert "40" in report.check("image_sizes").examples[0].detail


def test_details_say_what_is_wrong(ds: Path) -> None:
    _symlink_escape(ds)
    _unknown_category(ds)
    report = validate_dataset(ds, PARAMS)
    assert "outside the dataset root" in report.check("paths_inside_root").examples[0].detail
    assert "'chemical'" in report.check("category_known").examples[0].detail
    assert report.check("category_known").examples[0].id == "val-005"


def test_duplicate_ids_keep_the_first_occurrence(ds: Path) -> None:
    update_record(ds, "val", 1, id="train-002")
    update_record(ds, "test", 1, id="train-002")
    result = validate_dataset(ds, PARAMS).check("ids_unique")
    assert [e.where for e in result.examples] == ["val.jsonl:2", "test.jsonl:2"]
    assert all("train.jsonl:2" in e.detail for e in result.examples)


def test_unmentioned_objects_only_warn(ds: Path) -> None:
    update_record(ds, "train", 0, objects=["ice cube", "blue kettle"])
    report = validate_dataset(ds, PARAMS)
    assert report.ok
    assert report.failed_checks == ["objects_mentioned"]
    result = report.check("objects_mentioned")
    assert result.severity == "warning" and not result.passed
    assert result.examples[0].where == "train.jsonl:1"
    assert (
        "blue kettle" in result.examples[0].detail and "ice cube" not in result.examples[0].detail
    )
    assert report.invalid_rows == 0


def test_head_noun_matching() -> None:
    assert head_nouns("Red  Candle") == ["red candle", "candle"]
    assert head_nouns("glass of water") == ["glass of water", "water", "glass"]
    assert unmentioned_objects("Imagine the CANDLES after an hour", ["red candle"]) == []
    assert unmentioned_objects("What if the glass fell?", ["glass of water"]) == []
    assert unmentioned_objects("What if the cat slept?", ["dog", "cat"]) == ["dog"]
    # whole words only: "can" is not mentioned by "candle"
    assert unmentioned_objects("Imagine the candle melting", ["can"]) == ["can"]


def test_empty_manifests_fail_rows_present(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text("\n\n", encoding="utf-8")
    report = validate_dataset(tmp_path, PARAMS)
    assert report.failed_checks == ["rows_present"]
    assert report.rows == 0 and report.blank_lines == {"train": 2}
    assert report.check("rows_present").examples[0].where == "dataset"


def test_missing_directory_or_manifests_is_a_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="dataset directory not found"):
        validate_dataset(tmp_path / "nope", PARAMS)
    with pytest.raises(DatasetError, match="no train/val/test"):
        validate_dataset(tmp_path, PARAMS)


def test_many_bad_rows_are_all_counted_and_examples_capped(ds: Path) -> None:
    for i in range(15):
        append_line(ds, "train", f"not json {i}")
    result = validate_dataset(ds, PARAMS).check("manifest_lines_parse")
    assert result.failing_rows == 15
    assert len(result.examples) == 10
    assert result.examples[0].where == "train.jsonl:5"


def test_parallel_probing_matches_serial(ds: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from reasonbrain.data.validation import images

    _truncated_image(ds)
    _symlink_escape(ds)
    rels = [
        rel
        for split in ("train", "val", "test")
        for rec in read_records(ds, split)
        for rel in (rec["src_image"], rec["tgt_image"])
    ]
    serial = images.probe_images(str(ds), rels, workers=1)
    monkeypatch.setattr(images, "_PARALLEL_MIN_FILES", 1)
    monkeypatch.setattr(images, "_CHUNK", 3)
    progress: list[int] = []
    parallel = images.probe_images(str(ds), rels, workers=2, on_progress=progress.append)
    assert parallel == serial
    assert sum(progress) == len(serial) == len(set(rels))
    assert serial["images/tgt/002.png"].decode_error
    assert serial["images/tgt/001.png"].path_error
    assert os.path.islink(ds / "images/tgt/001.png")
