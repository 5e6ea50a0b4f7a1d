"""Optimiser groups, weight-decay exclusions, the LR schedule and the data order (no Ray)."""

from __future__ import annotations

import itertools

import pytest
import torch

from reasonbrain.config import TrainParams
from reasonbrain.errors import ConfigError
from reasonbrain.training.data import (
    global_batch_indices,
    micro_batch_size,
    shard_indices,
)
from reasonbrain.training.optim import (
    build_optimizer,
    build_param_groups,
    build_scheduler,
    lr_factor,
)
from tests.training_toy import ToyEditor


def _groups(**kw: object) -> dict[str, dict[str, object]]:
    model = ToyEditor()
    return {g["name"]: g for g in build_param_groups(model, TrainParams(**kw))}


def test_groups_have_their_own_lr_and_weight_decay() -> None:
    groups = _groups(lr=1e-3, group_lr={"new_modules": 5e-4}, weight_decay=0.1)
    assert set(groups) == {"new_modules/no_decay", "diffusion", "diffusion/no_decay"}
    assert groups["new_modules/no_decay"]["lr"] == 5e-4
    assert groups["diffusion"]["lr"] == 1e-3
    assert groups["diffusion"]["weight_decay"] == 0.1
    assert groups["diffusion/no_decay"]["weight_decay"] == 0.0
    # conv kernels decay; biases, norm scales and embeddings do not
    model = ToyEditor()
    built = {g["name"]: g for g in build_param_groups(model, TrainParams(weight_decay=0.1))}
    decayed = {id(p) for p in built["diffusion"]["params"]}  # type: ignore[attr-defined]
    assert decayed == {id(model.conv_in.weight), id(model.conv_out.weight)}


def test_frozen_parameters_are_in_no_group_and_never_change() -> None:
    model = ToyEditor()
    frozen = {id(p) for p in model.frozen_proj.parameters()}
    opt = build_optimizer(model, TrainParams(weight_decay=0.5, lr=0.1))
    in_groups = {id(p) for g in opt.param_groups for p in g["params"]}
    assert not frozen & in_groups
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert in_groups == trainable
    before = model.frozen_proj.weight.detach().clone()
    batch = {
        "src": torch.randn(2, 3, 8, 8),
        "tgt": torch.randn(2, 3, 8, 8),
        "instruction": ["melt the ice", "burn the log"],
    }
    for _ in range(3):
        model(batch).loss.backward()
        opt.step()
        opt.zero_grad()
    assert torch.equal(model.frozen_proj.weight, before)


def test_unknown_group_lr_kind_is_an_error() -> None:
    with pytest.raises(ConfigError, match="unknown parameter kinds"):
        _groups(group_lr={"vision": 1e-4})


def test_warmup_then_cosine_to_the_floor() -> None:
    f = [lr_factor(s, warmup_steps=4, total_steps=20, min_ratio=0.1) for s in range(20)]
    assert f[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert all(a >= b for a, b in itertools.pairwise(f[3:]))  # monotone decay
    assert lr_factor(20, warmup_steps=4, total_steps=20, min_ratio=0.1) == pytest.approx(0.1)
    model = ToyEditor()
    tp = TrainParams(lr=1e-2, group_lr={"new_modules": 1e-3}, warmup_steps=2, max_steps=10)
    opt = build_optimizer(model, tp)
    sched = build_scheduler(opt, tp)
    lrs = {g["name"]: g["lr"] for g in opt.param_groups}
    assert lrs["diffusion"] == pytest.approx(5e-3) and lrs["new_modules/no_decay"] == 5e-4
    opt.step()
    sched.step()
    assert {g["name"]: g["lr"] for g in opt.param_groups}["diffusion"] == pytest.approx(1e-2)


def test_data_order_is_a_pure_function_of_seed_and_step() -> None:
    a = [global_batch_indices(10, 3, s, 4) for s in range(5)]
    assert a == [global_batch_indices(10, 3, s, 4) for s in range(5)]
    assert a != [global_batch_indices(10, 4, s, 4) for s in range(5)]
    stream = [i for b in a for i in b]
    assert sorted(stream[:10]) == list(range(10))  # each epoch is a permutation
    assert sorted(stream[10:20]) == list(range(10))


def test_shards_partition_the_global_batch() -> None:
    g = global_batch_indices(100, 0, 7, 8)
    parts = [
        shard_indices(g, rank=r, world_size=2, micro=m, accum=2) for m in range(2) for r in range(2)
    ]
    assert [len(p) for p in parts] == [2, 2, 2, 2]
    assert [i for p in parts for i in p] == g
    assert micro_batch_size(8, 2, 2) == 2
    with pytest.raises(ConfigError, match="not divisible"):
        micro_batch_size(6, 4, 1)
