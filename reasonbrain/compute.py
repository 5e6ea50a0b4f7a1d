"""Where compute runs: a Ray cluster at ``RAY_ADDRESS``, else a local Ray started in-process.

Training (Ray Train) and evaluation (Ray Data) both start Ray through :func:`ensure_ray`.
Without ``RAY_ADDRESS`` a *new* local instance is started (``address="local"``): a bare
``ray.init()`` would instead join any cluster left running on the machine (a stale one from a
killed run, say), or fail when there are several.
"""

from __future__ import annotations

import logging
import os
from typing import Any


def ensure_ray(**local_options: Any) -> None:
    """Connect to ``RAY_ADDRESS`` or start a local Ray, unless Ray is already initialised.

    Args:
        local_options: extra ``ray.init`` options for a *local* start (e.g. ``num_cpus``);
            ignored when connecting to a cluster, which owns its resources.
    """
    import ray

    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, logging_level=logging.WARNING)
    else:
        options: dict[str, Any] = {
            "include_dashboard": False,
            "logging_level": logging.WARNING,
            "runtime_env": {"worker_process_setup_hook": "reasonbrain.compute.quiet_ray_worker"},
        }
        ray.init(address="local", **{**options, **local_options})


# Without a dashboard a local Ray has no State API; Ray Train's PlacementGroupCleaner actor asks
# it every second whether the controller is alive and logs a warning each time it cannot (400
# lines per demo training). Placement groups of a local Ray go with ``ray.shutdown()`` anyway.
_NOISY_RAY_LOGGERS = ("ray.train.v2._internal.execution.controller.placement_group_cleaner",)


def quiet_ray_worker() -> None:
    """``worker_process_setup_hook`` of a local Ray: silence warnings that mean nothing there."""
    for name in _NOISY_RAY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
