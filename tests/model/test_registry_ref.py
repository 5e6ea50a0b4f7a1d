"""`from_pretrained("registry://NAME@production")` loads exactly the registered model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from reasonbrain.models.checkpoint import from_pretrained
from reasonbrain.registry.api import open_registry, register_model


def test_registered_and_promoted_model_loads_bit_for_bit(
    tiny_model: Any, saved_tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REASONBRAIN_HOME", str(tmp_path / "home"))  # file:// store + SQLite
    monkeypatch.delenv("REASONBRAIN_STORE_URI", raising=False)
    monkeypatch.delenv("REASONBRAIN_DB_URL", raising=False)
    v1 = register_model(saved_tiny, "tiny-editor")
    with open_registry() as reg:
        reg.promote(f"tiny-editor@{v1.version}", "production")

    loaded = from_pretrained("registry://tiny-editor@production")

    expected = tiny_model.state_dict()
    got = loaded.state_dict()
    assert set(got) == set(expected)
    assert all(torch.equal(got[k], expected[k]) for k in expected)
