from typing import Any

import pytest
import ray

from reasonbrain.compute import ensure_ray


@pytest.fixture
def init_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kw: calls.append(kw))
    return calls


def test_local_start_never_joins_a_stale_cluster(
    init_calls: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    ensure_ray(num_cpus=2)
    assert init_calls[0]["address"] == "local"  # a bare ray.init() would join a running cluster
    assert init_calls[0]["num_cpus"] == 2 and init_calls[0]["include_dashboard"] is False


def test_cluster_address_wins_and_local_options_are_dropped(
    init_calls: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    ensure_ray(num_cpus=2)
    assert init_calls[0]["address"] == "ray://head:10001"
    assert "num_cpus" not in init_calls[0]


def test_local_workers_silence_the_cleaner_that_cannot_reach_the_state_api(
    init_calls: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A local Ray has no dashboard, so no State API: Ray Train's placement-group cleaner would
    warn every second of every training. The hook named in the runtime env must exist and
    silence the logger Ray really uses (a renamed module in a Ray upgrade fails here)."""
    import importlib
    import logging

    from ray.train.v2._internal.execution.controller import placement_group_cleaner

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    ensure_ray(num_cpus=2)
    hook = init_calls[0]["runtime_env"]["worker_process_setup_hook"]
    module, _, name = hook.rpartition(".")
    noisy = placement_group_cleaner.logger
    monkeypatch.setattr(noisy, "level", logging.NOTSET)
    getattr(importlib.import_module(module), name)()
    assert not noisy.isEnabledFor(logging.WARNING) and noisy.isEnabledFor(logging.ERROR)
