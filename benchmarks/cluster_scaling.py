"""Scaling 1 → 2 training workers on a local two-node Ray cluster (issue 15): prints one JSON.

Starts a Ray cluster of two nodes on this machine (``ray.cluster_utils.Cluster``: a head and a
worker node, each with its own raylet and object store and ``--cpus-per-node`` logical CPUs), then
runs ``reasonbrain train`` as a subprocess with ``RAY_ADDRESS`` pointing at the head, the way a
user submits to a real cluster:

- ``one_worker``: 1 worker × ``--cpus-per-worker`` CPUs (on one node);
- ``two_workers``: 2 workers × ``--cpus-per-worker`` CPUs, ``train.placement_strategy=SPREAD``
  (one per node; checked from the process tree: a Ray worker is a child of its node's raylet).

Both use the same global batch (``train.batch_size`` is split over the workers), so the ratio of
their throughputs is the data-parallel scaling. Throughput is ``batch / median step time`` over
every step but the first (which pays one-off warm-up), from the run's step log; the fit's wall
time includes worker start-up. The tiny preset at the default 32 px, fp32.

On this 2-core machine the two "nodes" share the same two physical cores, so the ideal is 2× only
when each worker gets one core to itself (``--cpus-per-worker 1``); this measures Ray Train's
overheads (placement, DDP all-reduce over TCP between nodes), not network bandwidth.

    python benchmarks/cluster_scaling.py [--steps 30] [--batch 16] [--cpus-per-worker 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _raylet_pid(node: Any) -> int:
    from ray._private import ray_constants

    return int(node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid)


def _train_workers(raylets: dict[int, str]) -> dict[int, str]:
    """``{pid: node name}`` of the Ray Train worker processes alive now."""
    import psutil

    found: dict[int, str] = {}
    for raylet, name in raylets.items():
        try:
            children = psutil.Process(raylet).children()
        except psutil.Error:
            continue
        for child in children:
            try:
                if " ".join(child.cmdline()).startswith("ray::RayTrainWorker"):
                    found[child.pid] = name
            except psutil.Error:
                continue
    return found


def _run(
    env: dict[str, str],
    raylets: dict[int, str],
    data: Path,
    out: Path,
    sets: list[str],
) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "reasonbrain", "train", "--data", str(data), "--out", str(out)]
    cmd += ["--storage", str(out.parent / "ckpt")]
    for s in sets:
        cmd += ["--set", s]
    placement: dict[int, str] = {}
    t0 = time.perf_counter()
    with (out.parent / f"{out.name}.log").open("w") as fh:
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
        while proc.poll() is None:
            placement.update(_train_workers(raylets))
            time.sleep(0.2)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = (out.parent / f"{out.name}.log").read_text(errors="replace")[-3000:]
        raise SystemExit(f"reasonbrain train failed ({proc.returncode}):\n{tail}")
    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    batch = int(next(s.split("=")[1] for s in sets if s.startswith("train.batch_size=")))
    step_s = statistics.median(float(r["step_s"]) for r in rows[1:] or rows)
    metrics = json.loads((out / "metrics.json").read_text())
    return {
        "workers": sum(1 for _ in placement),
        "nodes": sorted(set(placement.values())),
        "median_step_s": step_s,
        "samples_per_s": batch / step_s,
        "data_wait_frac": metrics.get("data_wait_frac"),
        "peak_mem_mb_per_worker": metrics.get("peak_mem_mb"),
        "loss_start": metrics.get("loss_start"),
        "loss_end": metrics.get("loss_end"),
        "wall_s_with_startup": wall,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--cpus-per-worker", type=int, default=1)
    ap.add_argument("--cpus-per-node", type=int, default=2)
    ap.add_argument("--n-train", type=int, default=512, help="ReasonSynth training samples")
    args = ap.parse_args()

    from ray.cluster_utils import Cluster

    from reasonbrain.config import SynthParams
    from reasonbrain.data.synth import generate_dataset

    os.environ.update({"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"})
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.getenv("PYTHONPATH")]))
    # A private Ray temp dir (short: socket paths are limited): the head records its address in
    # <tmp>/ray/ray_current_cluster, where any bare `ray.init()` on the machine would find it.
    with (
        tempfile.TemporaryDirectory(prefix="rbb-", dir="/tmp") as ray_tmp,
        tempfile.TemporaryDirectory(prefix="rb-bench-cluster-") as tmp,
    ):
        os.environ["RAY_TMPDIR"] = ray_tmp
        work = Path(tmp)
        data = work / "data"
        synth = SynthParams(n_train=args.n_train, n_val=16, n_test=0, seed=0)
        generate_dataset(data, synth, force=True, progress=False)
        node_args = {"num_cpus": args.cpus_per_node, "object_store_memory": 256 * 2**20}
        cluster = Cluster(
            initialize_head=True, head_node_args={**node_args, "include_dashboard": False}
        )
        try:
            worker = cluster.add_node(**node_args)
            cluster.wait_for_nodes()
            raylets = {_raylet_pid(cluster.head_node): "head", _raylet_pid(worker): "worker"}
            env = {
                **os.environ,
                "RAY_ADDRESS": str(cluster.address),
                "REASONBRAIN_HOME": str(work / "home"),
                "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.5",
            }
            base = [
                f"train.max_steps={args.steps}",
                f"train.batch_size={args.batch}",
                f"train.checkpoint_every={args.steps}",
                f"train.val_every={args.steps}",
                "train.val_samples=0",
                "train.sample_images=0",
                "train.warmup_steps=1",
                "train.precision=fp32",
                f"train.cpus_per_worker={args.cpus_per_worker}",
            ]
            one = _run(env, raylets, data, work / "w1", [*base, "train.workers=1"])
            two = _run(
                env,
                raylets,
                data,
                work / "w2",
                [*base, "train.workers=2", "train.placement_strategy=SPREAD"],
            )
        finally:
            cluster.shutdown()
    print(
        json.dumps(
            {
                "benchmark": "cluster_scaling",
                "cluster": "2 Ray nodes on one machine (ray.cluster_utils.Cluster)",
                "preset": "tiny",
                "global_batch": args.batch,
                "steps": args.steps,
                "cpus_per_worker": args.cpus_per_worker,
                "cpus_per_node": args.cpus_per_node,
                "machine_cpus": os.cpu_count(),
                "machine": platform.machine(),
                "load_avg_1m_at_end": os.getloadavg()[0],
                "one_worker": one,
                "two_workers_spread": two,
                "scaling_2_vs_1": two["samples_per_s"] / one["samples_per_s"],
                "gpu": None,
            }
        )
    )


if __name__ == "__main__":
    main()
