"""A two-node Ray cluster (head + worker node) run in its own process, driven over stdin/stdout.

Why a process of its own: ``ray.cluster_utils.Cluster`` started inside pytest shares the test
session's process with the session's local Ray (``ray_session``); removing the cluster's nodes then
leaves that driver's GCS connection broken, and a later Ray Data test dies without a message. Here
the cluster lives and dies in this process only.

Protocol: one JSON line on stdout once the nodes are up —
``{"address": …, "raylets": {pid: "head"|"worker"}}`` —, then one command per stdin line:
``kill_worker`` (SIGKILL the worker node's workers, then its raylet and services; answers ``ok``)
and ``stop`` (or end of input: remove every node and exit).
"""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any

HEAD_CPUS = 3
WORKER_CPUS = 2
OBJECT_STORE = 256 * 2**20


def _raylet_pid(node: Any) -> int:
    from ray._private import ray_constants

    return int(node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid)


def _kill_worker(cluster: Any, worker: Any) -> None:
    import psutil

    for child in psutil.Process(_raylet_pid(worker)).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            child.kill()
    cluster.remove_node(worker, allow_graceful=False)


def _stop(cluster: Any) -> None:
    for node in list(cluster.worker_nodes):
        with contextlib.suppress(Exception):
            cluster.remove_node(node, allow_graceful=False)
    if cluster.head_node is not None:
        cluster.remove_node(cluster.head_node, allow_graceful=False)


def main() -> int:
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": HEAD_CPUS,
            "include_dashboard": False,
            "object_store_memory": OBJECT_STORE,
        },
        shutdown_at_exit=False,
    )
    try:
        worker = cluster.add_node(num_cpus=WORKER_CPUS, object_store_memory=OBJECT_STORE)
        cluster.wait_for_nodes()
        raylets = {_raylet_pid(cluster.head_node): "head", _raylet_pid(worker): "worker"}
        print(json.dumps({"address": cluster.address, "raylets": raylets}), flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "kill_worker":
                _kill_worker(cluster, worker)
                print("ok", flush=True)
            elif command == "stop":
                break
            else:
                print(f"unknown command {command!r}", flush=True)
    finally:
        _stop(cluster)
    return 0


if __name__ == "__main__":
    sys.exit(main())
