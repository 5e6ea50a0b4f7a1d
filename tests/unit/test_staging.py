from pathlib import Path

import pytest

from reasonbrain.data.staging import staged_dir
from reasonbrain.errors import DatasetError


def test_success_swaps_in_and_leaves_no_temp(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    with staged_dir(out) as tmp:
        (tmp / "a.txt").write_text("new")
        assert not out.exists()  # nothing visible until done
    assert (out / "a.txt").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]


def test_failure_keeps_the_old_directory_untouched(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), staged_dir(out, force=True) as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("crash")
    assert [p.name for p in out.iterdir()] == ["old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]


def test_non_empty_output_needs_force(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(DatasetError, match="--force"), staged_dir(out):
        pass
    with staged_dir(out, force=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in out.iterdir()] == ["new.txt"]


def test_output_that_is_a_file_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(DatasetError, match="not a directory"), staged_dir(f, force=True):
        pass
    assert f.read_text() == "x"
