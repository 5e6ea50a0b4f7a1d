"""One Ray instance for the whole test session (tests that need it are marked ``ray``).

``ray.init`` costs ~5 s and each ``TorchTrainer.fit`` 10–20 s of worker start-up on 2 CPUs, so
Ray tests are few and share this fixture. Token auth is off (``RAY_AUTH_MODE=disabled``); the
controller polls workers every 0.2 s instead of 2 s so short fits end promptly; workers get the
repository root on ``PYTHONPATH`` so that test helper modules (``tests.*``) import in them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def ray_session() -> Iterator[Any]:
    """A new local Ray with 2 CPUs and no dashboard, shut down at the end of the session.

    ``address="local"``: a bare ``ray.init()`` would join any cluster named in
    ``/tmp/ray/ray_current_cluster`` (another session's, or a stale one) instead.
    """
    os.environ.update(
        {
            "RAY_AUTH_MODE": "disabled",
            "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.2",
            "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0",
            "RAY_TRAIN_ENABLE_STATE_ACTOR_RECONCILIATION": "0",
        }
    )
    os.environ.pop("RAY_ADDRESS", None)
    import ray

    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        logging_level=logging.WARNING,
        runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}},
    )
    try:
        yield ray
    finally:
        ray.shutdown()
