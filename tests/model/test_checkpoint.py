"""save_pretrained / from_pretrained: complete, bit-exact, strict, no pickle."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

from reasonbrain.errors import CheckpointError, ReasonBrainError
from reasonbrain.inference.pipeline import ReasonBrainPipeline
from reasonbrain.models.checkpoint import from_pretrained
from tests.model.conftest import make_batch


def test_directory_layout_and_card(saved_tiny: Path) -> None:
    names = {p.name for p in saved_tiny.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer", "text_tokenizer", "README.md"} <= names
    assert not list(saved_tiny.rglob("*.bin")) and not list(saved_tiny.rglob("*.pt"))
    cfg = json.loads((saved_tiny / "config.json").read_text())
    assert cfg["preset"] == "tiny" and cfg["meta"]["params_hash"] == "test"
    card = (saved_tiny / "README.md").read_text()
    assert "preset | `tiny`" in card and "params hash | `test`" in card
    assert not list(saved_tiny.parent.glob(".tiny.staging-*"))  # staging dir renamed away


def test_round_trip_is_bit_exact_and_complete(tiny_model: Any, saved_tiny: Path) -> None:
    loaded = from_pretrained(saved_tiny)
    a, b = tiny_model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k
    stored = load_file(str(saved_tiny / "model.safetensors"))
    assert stored.keys() == a.keys()  # tiny: every tensor is trained, so every tensor is saved
    assert any(k.startswith("mllm.new_embed") for k in stored)
    assert any(k.startswith("cme_text") for k in stored) and any("qformer" in k for k in stored)
    assert loaded.tokenizer.get_vocab() == tiny_model.tokenizer.get_vocab()
    assert loaded.meta["data_version"] == "none"


def test_round_trip_gives_identical_edits(tiny_model: Any, saved_tiny: Path) -> None:
    batch = make_batch(2)
    images = list(batch["src"])

    def run(model: Any) -> list[bytes]:
        out = ReasonBrainPipeline(model)(
            image=images,
            prompt=batch["instruction"],
            num_inference_steps=3,
            generator=torch.Generator().manual_seed(7),
        )
        return [im.tobytes() for im in out.images]

    assert run(tiny_model) == run(from_pretrained(saved_tiny))


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(src, dst)
    return dst


def test_missing_key_fails_loudly(saved_tiny: Path, tmp_path: Path) -> None:
    d = _copy(saved_tiny, tmp_path)
    state = load_file(str(d / "model.safetensors"))
    del state["mllm.new_embed.weight"]
    save_file(state, str(d / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"1 missing: mllm\.new_embed\.weight"):
        from_pretrained(d)


def test_unexpected_key_and_shape_mismatch_fail_loudly(saved_tiny: Path, tmp_path: Path) -> None:
    d = _copy(saved_tiny, tmp_path)
    state = load_file(str(d / "model.safetensors"))
    state["extra.weight"] = torch.zeros(1)
    state["null_cond"] = torch.zeros(1, 3, 64)
    save_file(state, str(d / "model.safetensors"))
    with pytest.raises(
        CheckpointError, match=r"1 unexpected: extra\.weight.*other shapes: null_cond"
    ):
        from_pretrained(d)


def test_config_that_does_not_match_weights_fails(saved_tiny: Path, tmp_path: Path) -> None:
    d = _copy(saved_tiny, tmp_path)
    cfg = json.loads((d / "config.json").read_text())
    cfg["cme_blocks"] = 2
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"missing: cme_(text|visual)\.blocks\.1"):
        from_pretrained(d)


def test_bad_references(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not a saved model directory"):
        from_pretrained(tmp_path)
    with pytest.raises(ReasonBrainError):
        from_pretrained("registry://no-such-model@production")
