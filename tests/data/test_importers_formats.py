"""The column and benchmark importers on fixtures built in each documented layout: ``ip2p``
(parquet with embedded bytes, JSONL with relative paths), ``magicbrush``, ``emu_edit`` and
``reason_edit``."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reasonbrain.data.importers import import_dataset
from reasonbrain.data.importers.base import hash_split
from reasonbrain.data.importers.emu_edit import SAME_CAPTION
from reasonbrain.data.importers.magicbrush import session_chains
from reasonbrain.errors import ImportFormatError
from tests.data.test_importers_fixtures import (
    load_output,
    make_magicbrush,
    make_reason_edit,
    no_leftovers,
    png,
    png_bytes,
    tree_state,
)


def _fails(fmt: str, src: Path, out: Path, *needles: str, **kw: object) -> None:
    root = src if src.is_dir() else src.parent
    before = tree_state(root)
    with pytest.raises(ImportFormatError) as info:
        import_dataset(fmt, src, out, **kw)  # type: ignore[arg-type]
    msg = info.value.one_line()
    for needle in needles:
        assert needle in msg, (needle, msg)
    assert no_leftovers(out)
    assert tree_state(root) == before


# ---------------------------------------------------------------------------------------- ip2p
def _hf_image(data: bytes) -> dict[str, object]:
    return {"bytes": data, "path": None}


def _ip2p_parquet(path: Path) -> dict[str, bytes]:
    """Hugging Face style: image columns are structs {bytes, path}; a split column."""
    rows = []
    images: dict[str, bytes] = {}
    for i, split in enumerate(["train", "train", "validation", "test"]):
        src, tgt = png_bytes((i * 30, 10, 10)), png_bytes((i * 30, 250, 10), fmt="JPEG")
        images[f"row{i}"] = tgt
        rows.append(
            {
                "id": f"row{i}",
                "input_image": _hf_image(src),
                "edit_prompt": f"turn the square green ({i})",
                "edited_image": _hf_image(tgt),
                "edited_prompt": "a green square",
                "split": split,
                "seed": 1000 + i,
            }
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return images


def test_ip2p_parquet_with_embedded_bytes(tmp_path: Path) -> None:
    images = _ip2p_parquet(tmp_path / "src/edits.parquet")
    before = tree_state(tmp_path / "src")
    out = tmp_path / "out"
    summary = import_dataset("ip2p", tmp_path / "src/edits.parquet", out)
    assert tree_state(tmp_path / "src") == before
    assert summary.counts == {"train": 2, "val": 1, "test": 1}
    assert summary.categories == {"edit": 4}
    splits = load_output(out)
    (rec,) = splits["val"]
    assert rec.id == "row2" and rec.category == "edit" and rec.objects == []
    assert rec.src_image == "images/src/row2.png" and rec.tgt_image == "images/tgt/row2.jpg"
    assert rec.instruction == "turn the square green (2)"
    assert rec.target_caption == "a green square"
    assert rec.meta == {"source": {"file": "edits.parquet", "row": 2}, "columns": {"seed": 1002}}
    # embedded bytes are written exactly as stored
    assert (out / rec.tgt_image).read_bytes() == images["row2"]


def test_ip2p_jsonl_paths_and_hash_split(tmp_path: Path) -> None:
    src = tmp_path / "src"
    lines = []
    for i in range(12):
        png(src / "imgs" / f"{i}-in.png", (i * 20, 0, 0))
        png(src / "imgs" / f"{i}-out.png", (i * 20, 99, 0))
        # the table sits in a sub-directory; image paths are relative to it
        lines.append(
            json.dumps(
                {
                    "input_image": f"../imgs/{i}-in.png",
                    "edit_prompt": f"make object {i} blue",
                    "edited_image": f"../imgs/{i}-out.png",
                }
            )
        )
    (src / "tables").mkdir()
    (src / "tables/pairs.jsonl").write_text("\n".join(lines) + "\n")
    out1, out2 = tmp_path / "o1", tmp_path / "o2"
    s1 = import_dataset("ip2p", src, out1, options={"val_fraction": 0.25, "test_fraction": 0.25})
    import_dataset("ip2p", src, out2, options={"val_fraction": "0.25", "test_fraction": "0.25"})
    splits = load_output(out1)
    assert s1.total == 12
    for split, records in splits.items():
        for r in records:
            assert hash_split(r.id, 0.25, 0.25) == split
            assert r.id.startswith("tables_pairs-0000")
    assert any("hash" in n for n in s1.notes)
    for name in ("train.jsonl", "val.jsonl", "test.jsonl"):
        assert (out1 / name).read_bytes() == (out2 / name).read_bytes()


def test_ip2p_raw_binary_columns_custom_names_forced_split(tmp_path: Path) -> None:
    df = pd.DataFrame(
        {
            "before": [png_bytes((5, 5, 5)), png_bytes((6, 6, 6))],
            "prompt": ["add a hat", "add a scarf"],
            "after": [png_bytes((7, 7, 7)), png_bytes((8, 8, 8))],
        }
    )
    path = tmp_path / "src/train-00000-of-00001.parquet"
    path.parent.mkdir()
    df.to_parquet(path)
    opts = {
        "input_column": "before",
        "instruction_column": "prompt",
        "output_column": "after",
        "split": "test",
        "category": "style",
    }
    summary = import_dataset("ip2p", tmp_path / "src", tmp_path / "out", options=opts)
    assert summary.counts == {"train": 0, "val": 0, "test": 2}
    recs = load_output(tmp_path / "out")["test"]
    assert [r.instruction for r in recs] == ["add a hat", "add a scarf"]
    assert {r.category for r in recs} == {"style"}
    # without the option, the Hugging Face file name decides the split
    summary = import_dataset(
        "ip2p", tmp_path / "src", tmp_path / "out2", options=opts | {"split": None}
    )
    assert summary.counts["train"] == 2


def test_ip2p_bad_sources(tmp_path: Path) -> None:
    src = tmp_path / "src"
    png(src / "a.png", (1, 2, 3))
    png(tmp_path / "outside.png", (1, 2, 3))
    ok = {"input_image": "a.png", "edit_prompt": "make it red", "edited_image": "a.png"}
    table = src / "t.jsonl"
    out = tmp_path / "out"

    table.write_text(json.dumps(ok) + "\n" + '{"input_image": "a.png",\n')
    _fails("ip2p", table, out, "t.jsonl:2", "not JSON")

    table.write_text(json.dumps({"input_image": "a.png", "edit_prompt": "x"}) + "\n")
    _fails("ip2p", table, out, "missing column(s) edited_image", "t.jsonl:1", "edit_prompt")

    table.write_text(json.dumps(ok | {"edited_image": "../outside.png"}) + "\n")
    _fails("ip2p", table, out, "escapes", "column 'edited_image'")

    table.write_text(json.dumps(ok | {"input_image": "/etc/hosts"}) + "\n")
    _fails("ip2p", table, out, "absolute", "t.jsonl:1")

    table.write_text(json.dumps(ok | {"input_image": "missing.png"}) + "\n")
    _fails("ip2p", table, out, "not found: missing.png", "t.jsonl:1")

    table.write_text(json.dumps(ok | {"split": "holdout"}) + "\n")
    _fails("ip2p", table, out, "unknown split 'holdout'")

    table.unlink()
    pq.write_table(
        pa.Table.from_pylist([{**ok, "input_image": _hf_image(b"not an image")}]),
        src / "t.parquet",
    )
    _fails("ip2p", src / "t.parquet", out, "not an image", "t.parquet row 0")

    (src / "t.parquet").write_bytes(b"PAR1 garbage")
    _fails("ip2p", src / "t.parquet", out, "not a readable parquet file")

    (src / "t.parquet").unlink()
    _fails("ip2p", src, out, "no .parquet or .jsonl files")


# ---------------------------------------------------------------------------------- magicbrush
def test_magicbrush_turns_and_protocol_facts(tmp_path: Path) -> None:
    src = make_magicbrush(tmp_path / "mb")
    before = tree_state(src)
    summary = import_dataset("magicbrush", src, tmp_path / "out")
    assert tree_state(src) == before
    assert summary.counts == {"train": 0, "val": 0, "test": 3}
    # a1-output1 is turn 1's output and turn 2's input: written once
    assert summary.files == 5 + 3  # a1: input, 2 outputs, 2 masks; b2: input, output, mask
    recs = {r.id: r for r in load_output(tmp_path / "out")["test"]}
    assert sorted(recs) == ["a1-t1", "a1-t2", "b2-t1"]
    t1, t2 = recs["a1-t1"], recs["a1-t2"]
    assert t1.src_image == "images/a1/a1-input.png" and t1.tgt_image == "images/a1/a1-output1.png"
    assert t2.src_image == t1.tgt_image  # single-turn: ground-truth input of each turn
    assert t1.category == "magicbrush" and t2.target_caption == "a brighter cat"
    assert recs["b2-t1"].target_caption is None
    assert t2.meta is not None and t1.meta is not None
    assert t2.meta["session_input"] == "images/a1/a1-input.png"  # final-turn chains from here
    assert (t1.meta["final_turn"], t2.meta["final_turn"]) == (False, True)
    assert t2.meta["mask"] == "images/a1/a1-mask2.png" and t2.meta["num_turns"] == 2
    assert t1.meta["input_caption"] == "a cat" and t1.meta["output_caption"] == "a bright cat"
    chains = session_chains(recs.values())
    assert [r.id for r in chains["a1"]] == ["a1-t1", "a1-t2"] and len(chains["b2"]) == 1
    # the test/ directory itself is accepted as the source too
    assert import_dataset("magicbrush", src / "test", tmp_path / "out2").total == 3


def test_magicbrush_bad_sources(tmp_path: Path) -> None:
    src = make_magicbrush(tmp_path / "mb")
    out = tmp_path / "out"
    (src / "test/images/a1/a1-mask2.png").unlink()
    _fails("magicbrush", src, out, "mask image not found: images/a1/a1-mask2.png", "turn 2")

    sessions = src / "test/edit_sessions.json"
    sessions.write_text('{\n "a1": [\n  {"input": }\n ]\n}')
    _fails("magicbrush", src, out, "not valid JSON", "edit_sessions.json:3")

    sessions.write_text(json.dumps({"b2": [{"input": "b2-input.png", "output": "b2-output1.png"}]}))
    _fails("magicbrush", src, out, "mask, output, instruction", "session 'b2' turn 1")

    _fails("magicbrush", tmp_path / "mb/test/images", out, "no test/edit_sessions.json")


# ------------------------------------------------------------------------------------ emu_edit
def _emu_rows() -> list[dict[str, object]]:
    rows = []
    spec = [
        ("validation", "background", "a dog on grass", "a dog on a beach"),
        ("test", "Style", "a house", "a house, watercolour"),
        ("test", "remove", "a cup", "a cup"),  # same caption: dropped
    ]
    for idx, (split, task, cin, cout) in enumerate(spec):
        rows.append(
            {
                "idx": idx,
                "image": _hf_image(png_bytes((idx * 70, 30, 30))),
                "instruction": f"edit number {idx}",
                "task": task,
                "split": split,
                "hash": f"h{idx}",
                "input_caption": cin,
                "output_caption": cout,
            }
        )
    return rows


def test_emu_edit_no_target_and_dropped_rows(tmp_path: Path) -> None:
    path = tmp_path / "emu/data/test-00000.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(_emu_rows()), path)
    before = tree_state(tmp_path / "emu")
    summary = import_dataset("emu_edit", tmp_path / "emu", tmp_path / "out")
    assert tree_state(tmp_path / "emu") == before
    assert summary.counts == {"train": 0, "val": 1, "test": 1}
    assert summary.dropped == {SAME_CAPTION: 1}
    assert summary.categories == {"background": 1, "style": 1}
    info = json.loads((tmp_path / "out/import_info.json").read_text())
    assert info["dropped"] == {SAME_CAPTION: 1}
    splits = load_output(tmp_path / "out")
    (val,) = splits["val"]
    assert val.id == "val-0" and val.category == "background"
    assert val.tgt_image == val.src_image == "images/src/val-0.png"
    assert val.target_caption == "a dog on a beach"
    assert val.meta == {
        "benchmark": "emu_edit",
        "has_target": False,
        "idx": 0,
        "task": "background",
        "input_caption": "a dog on grass",
        "output_caption": "a dog on a beach",
        "hash": "h0",
    }
    kept = import_dataset("emu_edit", path, tmp_path / "out2", options={"drop_same_caption": False})
    assert kept.total == 3 and kept.dropped == {}


def test_emu_edit_missing_column(tmp_path: Path) -> None:
    rows = [{k: v for k, v in r.items() if k != "output_caption"} for r in _emu_rows()]
    path = tmp_path / "emu/test.parquet"
    path.parent.mkdir()
    pq.write_table(pa.Table.from_pylist(rows), path)
    _fails("emu_edit", path, tmp_path / "out", "missing column(s) output_caption", "test.parquet")


# --------------------------------------------------------------------------------- reason_edit
def test_reason_edit_masks_and_captions(tmp_path: Path) -> None:
    src = make_reason_edit(tmp_path / "re")
    before = tree_state(src)
    summary = import_dataset("reason_edit", src, tmp_path / "out")
    assert tree_state(src) == before
    assert summary.counts == {"train": 0, "val": 0, "test": 3}
    assert summary.categories == {"left_right": 2, "reasoning": 1}
    recs = {r.id: r for r in load_output(tmp_path / "out")["test"]}
    assert sorted(recs) == ["left_right-001", "left_right-002", "reasoning-001"]
    r = recs["left_right-002"]
    assert r.instruction == "Remove the right apple" and r.target_caption == "a table"
    assert r.src_image == r.tgt_image == "images/left_right/002.png"
    assert r.meta is not None and r.meta["has_target"] is False
    assert r.meta["mask"] == "images/left_right/002_mask.png" and r.meta["line"] == 2
    assert r.meta["clip_caption"] == "a table" and r.meta["folder"] == "1-Left-Right"
    assert (tmp_path / "out/images/left_right/002.png").read_bytes() == (
        src / "1-Left-Right/002.png"
    ).read_bytes()


def test_reason_edit_bad_sources(tmp_path: Path) -> None:
    src = make_reason_edit(tmp_path / "re")
    out = tmp_path / "out"
    text = src / "1-Left-Right/Left_text.txt"
    text.write_text("Replace the left cup CLIP: a bowl\nno caption marker here\n")
    _fails("reason_edit", src, out, "Left_text.txt:2", "CLIP:")

    text.write_text("Replace the left cup CLIP: a bowl\n")
    _fails("reason_edit", src, out, "1 instruction lines but 2 source images")

    text.write_text("a CLIP: b\nc CLIP: d\n")
    (src / "1-Left-Right/002_mask.jpg").unlink()
    _fails("reason_edit", src, out, "mask not found: 002_mask.jpg")

    _fails("reason_edit", tmp_path / "re/1-Left-Right", out, "no category folders")
