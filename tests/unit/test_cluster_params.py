"""``train.placement_strategy``: validated, operational (not part of the run identity)."""

from __future__ import annotations

import pytest

from reasonbrain.config import load_params
from reasonbrain.errors import ConfigError
from reasonbrain.training.checkpoint import run_identity


def test_placement_strategy_is_operational() -> None:
    base = load_params(None, [])
    assert base.train.placement_strategy == "PACK"
    spread = load_params(None, ["train.placement_strategy=SPREAD"])
    assert spread.train.placement_strategy == "SPREAD"
    # a run started with PACK can be resumed with SPREAD (same run identity)
    assert run_identity(spread) == run_identity(base)


def test_unknown_placement_strategy_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"train\.placement_strategy"):
        load_params(None, ["train.placement_strategy=ANYWHERE"])
