"""Importer core and the ``reason50k`` format: output layout, source untouched, atomic failure,
error messages, options, and the ``reasonbrain data import`` command."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reasonbrain.cli import app, main
from reasonbrain.data.importers import IMPORTERS, import_dataset
from reasonbrain.data.importers.base import hash_split, safe_id
from reasonbrain.data.prepare import DatasetSummary
from reasonbrain.data.schema import read_manifest
from reasonbrain.errors import ConfigError, DatasetError, ImportFormatError
from tests.data.test_importers_fixtures import (
    load_output,
    make_reason50k,
    no_leftovers,
    png,
    tree_state,
)


@pytest.fixture
def src(tmp_path: Path) -> Path:
    return make_reason50k(tmp_path / "src")


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_registry_lists_every_format() -> None:
    assert set(IMPORTERS) == {"reason50k", "ip2p", "magicbrush", "emu_edit", "reason_edit"}
    for name, imp in IMPORTERS.items():
        assert imp.name == name and len(imp.description) > 10


def test_reason50k_copies_verified_dataset(src: Path, tmp_path: Path) -> None:
    before = tree_state(src)
    out = tmp_path / "out"
    summary = import_dataset("reason50k", src, out)
    assert tree_state(src) == before
    assert summary.counts == {"train": 3, "val": 1, "test": 2} and summary.total == 6
    assert summary.format == "reason50k"
    assert summary.categories == {"causal": 1, "physical": 2, "story": 1, "temporal": 2}
    assert summary.files == 6 * 2 + 2 * 2  # src+tgt per record, mask+counterfactual per test
    splits = load_output(out)
    for split in ("train", "val", "test"):
        # records are kept exactly as they are in the source
        assert _lines(out / f"{split}.jsonl") == _lines(src / f"{split}.jsonl")
    for rel, (digest, _) in before.items():
        if rel.endswith(".png"):
            assert tree_state(out)[rel][0] == digest
    assert splits["test"][0].meta is not None and splits["test"][0].meta["mask"].startswith(
        "images/"
    )
    info = json.loads((out / "import_info.json").read_text())
    assert info["format"] == "reason50k" and info["counts"]["train"] == 3
    # copies by default: the output never shares a file with the source
    assert (out / "images/src/train000.png").stat().st_ino != (
        src / "images/src/train000.png"
    ).stat().st_ino


def test_reason50k_hardlink_option(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    import_dataset("reason50k", src, out, options={"link": "hardlink", "workers": "1"})
    assert os.path.samefile(out / "images/src/train000.png", src / "images/src/train000.png")
    load_output(out)


def test_missing_splits_are_written_empty(src: Path, tmp_path: Path) -> None:
    (src / "val.jsonl").unlink()
    summary = import_dataset("reason50k", src, tmp_path / "out", progress=True)
    assert isinstance(summary, DatasetSummary) and summary.total == 5
    assert summary.counts["val"] == 0
    assert (tmp_path / "out/val.jsonl").read_text() == ""
    assert any("val" in n for n in summary.notes)


def _assert_fails(src: Path, out: Path, *needles: str, fmt: str = "reason50k") -> str:
    before = tree_state(src) if src.is_dir() else None
    with pytest.raises(ImportFormatError) as info:
        import_dataset(fmt, src, out)
    msg = info.value.one_line()
    for needle in needles:
        assert needle in msg, (needle, msg)
    assert no_leftovers(out)
    if before is not None:
        assert tree_state(src) == before
    return msg


def test_bad_json_line_names_file_and_line(src: Path, tmp_path: Path) -> None:
    with (src / "train.jsonl").open("a") as fh:
        fh.write('{"id": "broken", \n')
    _assert_fails(src, tmp_path / "out", "train.jsonl:4", "not JSON")


def test_missing_image_names_file_line_and_path(src: Path, tmp_path: Path) -> None:
    (src / "images/tgt/val000.png").unlink()
    _assert_fails(src, tmp_path / "out", "images/tgt/val000.png", "val.jsonl:1", "not found")


def test_missing_meta_image_is_an_error(src: Path, tmp_path: Path) -> None:
    (src / "images/mask/test001.png").unlink()
    _assert_fails(src, tmp_path / "out", "images/mask/test001.png", "test.jsonl:2")


@pytest.mark.parametrize(
    ("path", "needle"),
    [("../outside.png", "escapes"), ("/etc/passwd.png", "absolute")],
)
def test_escaping_and_absolute_paths_rejected(
    src: Path, tmp_path: Path, path: str, needle: str
) -> None:
    png(tmp_path / "outside.png", (1, 1, 1))
    recs = _lines(src / "val.jsonl")
    recs[0]["src_image"] = path
    (src / "val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    _assert_fails(src, tmp_path / "out", needle, "val.jsonl:1")


def test_symlink_escaping_the_source_rejected(src: Path, tmp_path: Path) -> None:
    png(tmp_path / "secret.png", (9, 9, 9))
    link = src / "images/src/train001.png"
    link.unlink()
    link.symlink_to(tmp_path / "secret.png")
    _assert_fails(src, tmp_path / "out", "outside the source", "train.jsonl:2")


def test_truncated_image_rejected(src: Path, tmp_path: Path) -> None:
    path = src / "images/src/train002.png"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _assert_fails(src, tmp_path / "out", "does not decode", "train.jsonl:3")


def test_duplicate_ids_rejected(src: Path, tmp_path: Path) -> None:
    recs = _lines(src / "test.jsonl")
    recs[1]["id"] = "train000"
    (src / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    _assert_fails(src, tmp_path / "out", "duplicate id 'train000'", "train.jsonl:1", "test.jsonl:2")


def test_unsafe_id_is_sanitised_and_kept_in_meta(src: Path, tmp_path: Path) -> None:
    recs = _lines(src / "val.jsonl")
    recs[0]["id"] = "val/0 1"
    (src / "val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    import_dataset("reason50k", src, tmp_path / "out")
    (rec,) = read_manifest(tmp_path / "out/val.jsonl")
    assert rec.id == "val_0_1" and rec.meta == {"source_id": "val/0 1"}


def test_source_without_manifests_rejected(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    _assert_fails(empty, tmp_path / "out", "no train.jsonl", str(empty))


def test_missing_source_and_unknown_format(src: Path, tmp_path: Path) -> None:
    _assert_fails(tmp_path / "nope", tmp_path / "out", "not found")
    msg = _assert_fails(src, tmp_path / "out", "unknown import format 'r50k'", fmt="r50k")
    for name in IMPORTERS:
        assert name in msg


def test_output_must_not_overlap_source(src: Path, tmp_path: Path) -> None:
    before = tree_state(src)
    for out in (src, src / "sub", tmp_path):
        with pytest.raises(DatasetError, match="overlaps"):
            import_dataset("reason50k", src, out, force=True)
    assert tree_state(src) == before


def test_non_empty_output_needs_force(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("keep me")
    with pytest.raises(DatasetError, match="not empty"):
        import_dataset("reason50k", src, out)
    assert (out / "old.txt").read_text() == "keep me"
    import_dataset("reason50k", src, out, force=True)
    assert not (out / "old.txt").exists() and (out / "train.jsonl").is_file()


def test_failed_import_keeps_previous_output(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    import_dataset("reason50k", src, out)
    before = tree_state(out)
    (src / "images/src/val000.png").unlink()
    with pytest.raises(ImportFormatError):
        import_dataset("reason50k", src, out, force=True)
    assert tree_state(out) == before
    assert not list(tmp_path.glob(".out.*"))


def test_options_are_validated(src: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown option 'colour'") as info:
        import_dataset("reason50k", src, tmp_path / "out", options={"colour": "red"})
    assert "verify_images" in info.value.one_line()
    with pytest.raises(ConfigError, match="link"):
        import_dataset("reason50k", src, tmp_path / "out", options={"link": "symlink"})
    assert no_leftovers(tmp_path / "out")


def test_helpers_are_deterministic() -> None:
    assert safe_id("a b/c", where="x") == "a_b_c"
    assert safe_id("..hidden", where="x") == "hidden"
    assert len(safe_id("x" * 500, where="x")) <= 120
    assert safe_id("x" * 500, where="x") != safe_id("x" * 499, where="x")
    with pytest.raises(ImportFormatError):
        safe_id("///", where="x")
    splits = [hash_split(f"id{i}", 0.1, 0.2) for i in range(2000)]
    assert splits == [hash_split(f"id{i}", 0.1, 0.2) for i in range(2000)]
    assert 0.15 < splits.count("test") / 2000 < 0.25
    assert 0.06 < splits.count("val") / 2000 < 0.14


# ----------------------------------------------------------------------------------- the CLI
def test_cli_import_reason50k(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli-out"
    result = CliRunner().invoke(
        app, ["data", "import", "--format", "reason50k", str(src), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "imported 6 records" in result.output
    assert len(read_manifest(out / "train.jsonl")) == 3
    listed = CliRunner().invoke(app, ["data", "formats"])
    assert listed.exit_code == 0 and all(name in listed.output for name in IMPORTERS)


def test_cli_bad_source_is_one_line_exit_2(
    src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (src / "images/src/train001.png").unlink()
    out = tmp_path / "cli-out"
    argv = ["reasonbrain", "data", "import", "--format", "reason50k", str(src), "--out", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "image not found: images/src/train001.png" in err and "train.jsonl:2" in err
    assert no_leftovers(out)
