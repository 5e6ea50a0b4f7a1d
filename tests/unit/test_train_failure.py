"""A run that fails inside Ray says which exception, where (not the tail of a truncated trace)."""

from __future__ import annotations

import pickle

import pytest

from reasonbrain.training.failures import failure_note


def _deep() -> None:
    import torch

    torch.zeros(2, 64) @ torch.zeros(4096, 3)  # like the old paper-preset width mismatch


def _raise() -> RuntimeError:
    try:
        _deep()
    except RuntimeError as err:
        err.add_note(failure_note(err))
        return err
    raise AssertionError("no error")


def test_note_names_our_innermost_frame_and_survives_pickling() -> None:
    err = _raise()
    note = err.__notes__[-1]
    assert note.startswith("at ") and "test_train_failure.py" in note and "in _deep" in note
    back = pickle.loads(pickle.dumps(err))  # how Ray hands the worker's exception back
    assert back.__notes__ == err.__notes__


def test_cli_line_has_type_message_rank_and_frame() -> None:
    from ray.train import ControllerError, WorkerGroupError

    from reasonbrain.cli.train import describe_failure

    err = _raise()
    group = WorkerGroupError("…(Output truncated)…", {1: err, 0: ValueError("other")})
    line = describe_failure(group)
    assert line.startswith("ValueError: other — rank 0 (+1 more ranks)")
    only = describe_failure(WorkerGroupError("x", {0: err}))
    assert only.startswith("RuntimeError: mat1 and mat2 shapes cannot be multiplied")
    assert "— rank 0, at " in only and "in _deep" in only
    assert describe_failure(ControllerError(KeyError("k"))).startswith("KeyError: 'k' — controller")


@pytest.mark.parametrize("precision", ["auto", "fp32", "bf16"])
def test_frozen_dtype_follows_the_autocast_rule(precision: str) -> None:
    import torch

    from reasonbrain.models.precision import frozen_dtype

    cpu = {"auto": torch.float32, "fp32": torch.float32, "bf16": torch.bfloat16}[precision]
    assert frozen_dtype(precision, "cpu") == cpu
    assert frozen_dtype(precision, "cuda") == (
        torch.float32 if precision == "fp32" else torch.bfloat16
    )


def test_note_prefers_our_frame_over_library_internals() -> None:
    import torch

    from reasonbrain.models.encoders import clip_preprocess

    try:
        clip_preprocess(torch.zeros(1, 3, 8, 8), -4)  # fails inside torch.nn.functional
    except Exception as err:  # any error type: only its frames are read
        note = failure_note(err)
    assert note.startswith("at reasonbrain/models/encoders.py:") and "in clip_preprocess" in note
    assert "(innermost: functional.py:" in note
