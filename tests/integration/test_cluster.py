"""``reasonbrain train`` on a real two-node Ray cluster, data and checkpoints in S3, a node lost.

The cluster is two Ray nodes on this machine (``ray.cluster_utils.Cluster`` in a process of its
own, ``two_node_cluster.py``: a head and a worker node, each its own raylet and object store; the
test never runs ``ray stop``, which would stop every Ray of the user). ``reasonbrain train`` runs
as a subprocess with ``RAY_ADDRESS`` pointing at the head, two workers placed with
``train.placement_strategy=SPREAD``, the training data read from the moto S3 endpoint
(``--data s3://…``, streamed by Ray Data: ``train.preload=false``) and checkpoint storage there
too (``--storage s3://…``). No path of the driver's machine is read by a worker. Where each worker
runs is read from the process tree: a Ray worker process is a child of its node's raylet.

One run (the cluster start and a Ray Train run cost about a minute each on 2 CPUs):

1. Both workers start, one on each node (``SPREAD``), and checkpoint to S3.
2. Right after the first checkpoint is registered the worker node is killed (SIGKILL of its
   raylet and worker processes, as when a machine dies): Ray Train's ``FailureConfig`` restarts
   the worker group on the surviving node from that checkpoint — and each rank's data stream from
   that checkpoint's step —, the run ends at the requested step, and the step log has no gap or
   repeat and keeps the checkpoint's rows as they were.
3. The exported model equals the last S3 checkpoint's model byte for byte and loads into the
   inference pipeline.

(``tests/integration/test_train_ray.py`` checks on one node that a resumed run repeats the
uninterrupted run's steps exactly.)

The head has 3 logical CPUs: after the loss, both workers (1 CPU each) and the Ray Data decode
tasks run there.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from reasonbrain.training.metrics import read_log

pytestmark = [pytest.mark.slow, pytest.mark.s3, pytest.mark.ray]

ROOT = Path(__file__).resolve().parents[2]
STEPS = 12
CKPT_EVERY = 4
BUCKET = "rb-cluster"
# a guard against a hung run, not a speed check: 12 steps take ~60 s on an idle 2-core host, and
# a busy CI host has been measured past 150 s (the run itself then succeeded)
RUN_TIMEOUT_S = 420
TRAIN_ARGS = [
    "--set", "train.workers=2",
    "--set", "train.cpus_per_worker=1",
    "--set", "train.placement_strategy=SPREAD",
    "--set", "train.batch_size=4",
    "--set", f"train.max_steps={STEPS}",
    "--set", f"train.checkpoint_every={CKPT_EVERY}",
    "--set", "train.keep_checkpoints=2",
    "--set", "train.max_failures=1",
    "--set", "train.val_every=1000",
    "--set", "train.val_samples=4",
    "--set", "train.sample_images=0",
    "--set", "train.warmup_steps=1",
    "--set", "train.precision=fp32",
    "--set", "train.preload=false",
    "--set", "train.data_cpus=1",
]  # fmt: skip


# ----------------------------------------------------------------------------- the cluster
@dataclass
class TwoNodes:
    """The cluster process (``two_node_cluster.py``); ``raylets`` maps raylet pid → node name."""

    process: subprocess.Popen[str]
    address: str
    raylets: dict[int, str]
    ray_tmpdir: str

    def command(self, line: str) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()


def train_workers(nodes: TwoNodes) -> dict[int, str]:
    """``{pid: node}`` of the Ray Train worker processes alive now (children of each raylet)."""
    import psutil

    found: dict[int, str] = {}
    for raylet, name in nodes.raylets.items():
        try:
            children = psutil.Process(raylet).children()
        except psutil.Error:
            continue
        for child in children:
            try:
                title = " ".join(child.cmdline())
            except psutil.Error:
                continue
            if title.startswith("ray::RayTrainWorker"):
                found[child.pid] = name
    return found


def kill_node(nodes: TwoNodes) -> None:
    """Lose the worker node the hard way: SIGKILL its workers, then its raylet and services."""
    assert nodes.command("kill_worker") == "ok"


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[TwoNodes]:
    """Head (3 CPUs) + worker node (2 CPUs), small object stores, no dashboard — in a process of
    its own (see ``two_node_cluster.py`` for why).

    Ray's temp dir is private to this cluster (``RAY_TMPDIR``; short, socket paths are limited):
    a head node records its address in ``<tmp>/ray/ray_current_cluster``, and a bare
    ``ray.init()`` anywhere on the machine joins the cluster named there.
    """
    tmp = tempfile.mkdtemp(prefix="rbc-", dir="/tmp")
    env = {
        **os.environ,
        "RAY_TMPDIR": tmp,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.getenv("PYTHONPATH")])),
        "RAY_AUTH_MODE": "disabled",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    env.pop("RAY_ADDRESS", None)
    script = Path(__file__).with_name("two_node_cluster.py")
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        env=env,
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        assert ready, f"the cluster process exited ({proc.wait()}) before its nodes came up"
        info = json.loads(ready)
        raylets = {int(pid): name for pid, name in info["raylets"].items()}
        yield TwoNodes(proc, str(info["address"]), raylets, tmp)
    finally:
        if proc.poll() is None:
            assert proc.stdin is not None
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.write("stop\n")
                proc.stdin.close()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------------------- the runs
@dataclass
class ClusterRun:
    """What one ``reasonbrain train`` subprocess did, as seen from outside."""

    out: Path
    output: str
    seconds: float
    workers: dict[int, str]  # every train worker process seen: pid → node
    events: dict[str, Any] = field(default_factory=dict)

    @property
    def log(self) -> list[dict[str, Any]]:
        return read_log(self.out / "train_log.jsonl")

    @property
    def info(self) -> dict[str, Any]:
        return dict(json.loads((self.out / "run.json").read_text()))


def run_train(
    nodes: TwoNodes,
    env: dict[str, str],
    data: str,
    out: Path,
    storage: str,
    on_tick: Callable[[ClusterRun], None] | None = None,
) -> ClusterRun:
    """Run ``reasonbrain train`` against the cluster; poll worker placement (and ``on_tick``)."""
    cmd = [sys.executable, "-m", "reasonbrain", "train", "--data", data, "--out", str(out)]
    cmd += ["--storage", storage, *TRAIN_ARGS]
    log_path = out.with_suffix(".output.txt")
    run = ClusterRun(out=out, output="", seconds=0.0, workers={})
    t0 = time.perf_counter()
    with log_path.open("w") as fh:
        proc = subprocess.Popen(
            cmd, env=env, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            while proc.poll() is None:
                if time.perf_counter() - t0 > RUN_TIMEOUT_S:
                    raise AssertionError(f"reasonbrain train ran past {RUN_TIMEOUT_S} s")
                run.workers.update(train_workers(nodes))
                if on_tick is not None:
                    on_tick(run)
                time.sleep(0.1)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    run.seconds = time.perf_counter() - t0
    run.output = log_path.read_text(errors="replace")
    assert proc.returncode == 0, f"reasonbrain train failed:\n{run.output[-4000:]}"
    return run


@pytest.fixture(scope="module")
def cluster_env(
    two_nodes: TwoNodes, moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The dataset, the bucket and the subprocess environment shared by both runs."""
    import boto3

    from reasonbrain.config import SynthParams
    from reasonbrain.data.synth import generate_dataset

    data = tmp_path_factory.mktemp("cluster-data") / "reasonsynth"
    generate_dataset(data, SynthParams(n_train=32, n_val=8, n_test=0, workers=1), progress=False)
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        aws_access_key_id="AKIDREASONBRAINTEST",
        aws_secret_access_key="cluster-test-secret",
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket=BUCKET)
    for p in sorted(data.rglob("*")):  # the dataset lives in S3; workers read it from there
        if p.is_file():
            s3.upload_file(str(p), BUCKET, f"data/{p.relative_to(data).as_posix()}")
    env = {
        **os.environ,
        "RAY_ADDRESS": two_nodes.address,
        "RAY_TMPDIR": two_nodes.ray_tmpdir,
        "PYTHONPATH": str(ROOT),
        "REASONBRAIN_HOME": str(tmp_path_factory.mktemp("cluster-home")),
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "AKIDREASONBRAINTEST",
        "AWS_SECRET_ACCESS_KEY": "cluster-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.2",
        "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0",
        "RAY_TRAIN_ENABLE_STATE_ACTOR_RECONCILIATION": "0",
        "COLUMNS": "200",
    }
    return {"data": f"s3://{BUCKET}/data", "local_data": data, "s3": s3, "env": env}


def _keys(s3: Any, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


# ------------------------------------------------------------------------------ the tests
@pytest.fixture(scope="module")
def node_lost(
    two_nodes: TwoNodes, cluster_env: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> ClusterRun:
    """The run, with the worker node killed right after the first checkpoint is registered."""
    s3 = cluster_env["s3"]

    def kill_after_first_checkpoint(run: ClusterRun) -> None:
        if "killed_at" in run.events:
            return
        snapshots = [
            k for k in _keys(s3, "runs/") if k.endswith("checkpoint_manager_snapshot.json")
        ]
        if not snapshots:
            return
        body = s3.get_object(Bucket=BUCKET, Key=snapshots[0])["Body"].read()
        registered = [c["checkpoint_dir_name"] for c in json.loads(body)["checkpoint_results"]]
        if not registered:
            return
        run_dir = snapshots[0].rsplit("/", 1)[0]
        log = s3.get_object(Bucket=BUCKET, Key=f"{run_dir}/{registered[-1]}/train_log.jsonl")
        run.events["checkpoint"] = registered[-1]
        run.events["checkpoint_log"] = [json.loads(x) for x in log["Body"].read().splitlines()]
        run.events["workers_before"] = train_workers(two_nodes)
        kill_node(two_nodes)
        run.events["killed_at"] = time.perf_counter()

    out = tmp_path_factory.mktemp("cluster-run") / "out"
    return run_train(
        two_nodes,
        cluster_env["env"],
        cluster_env["data"],
        out,
        f"s3://{BUCKET}/runs",
        on_tick=kill_after_first_checkpoint,
    )


def test_losing_a_node_restarts_from_the_last_checkpoint(node_lost: ClusterRun) -> None:
    run, ev = node_lost, node_lost.events
    assert "killed_at" in ev, "the run finished before a checkpoint was registered"
    assert ev["checkpoint"] == f"checkpoint_{CKPT_EVERY:08d}"  # killed mid-run, not at the end
    # SPREAD: before the loss, one worker on each node
    assert sorted(ev["workers_before"].values()) == ["head", "worker"], ev["workers_before"]
    restarted = {pid: node for pid, node in run.workers.items() if pid not in ev["workers_before"]}
    assert sorted(restarted.values()) == ["head", "head"], run.workers  # on the surviving node

    log = run.log
    assert [r["step"] for r in log] == list(range(1, STEPS + 1))  # finished, no gap, no repeat
    # resumed from the checkpoint: its rows (timings included) are kept as they were, and the
    # first step after the restart continues the descent (a restart from scratch starts ~25 %
    # above the checkpoint's loss, at step 1's level)
    kept = ev["checkpoint_log"]
    assert [r["step"] for r in kept] == list(range(1, CKPT_EVERY + 1))
    assert log[: len(kept)] == kept
    assert log[CKPT_EVERY]["loss"] < 0.9 * log[0]["loss"]
    assert log[-1]["loss"] < log[0]["loss"]


def test_checkpoints_go_to_s3_and_the_export_is_the_last_one(
    node_lost: ClusterRun, cluster_env: dict[str, Any]
) -> None:
    run, s3 = node_lost, cluster_env["s3"]
    info = run.info
    prefix = f"runs/{info['run_name']}/"
    assert info["checkpoint_uri"] == f"s3://{BUCKET}/{prefix}checkpoint_{STEPS:08d}"
    keys = _keys(s3, prefix)
    kept = sorted({k[len(prefix) :].split("/")[0] for k in keys if "/checkpoint_0" in k})
    assert kept == [f"checkpoint_{STEPS - CKPT_EVERY:08d}", f"checkpoint_{STEPS:08d}"]

    # the exported model is the last S3 checkpoint's model, byte for byte, and it edits images
    model_dir = run.out / "model"
    weights = sorted(p.relative_to(model_dir).as_posix() for p in model_dir.rglob("*.safetensors"))
    assert weights
    for rel in weights:
        remote = s3.get_object(Bucket=BUCKET, Key=f"{prefix}checkpoint_{STEPS:08d}/model/{rel}")
        assert remote["Body"].read() == (model_dir / rel).read_bytes(), rel

    import torch
    from PIL import Image

    from reasonbrain.inference.pipeline import ReasonBrainPipeline

    pipe = ReasonBrainPipeline.from_pretrained(model_dir)
    local = cluster_env["local_data"]
    row = json.loads((local / "val.jsonl").read_text().splitlines()[0])
    image = Image.open(local / row["src_image"]).convert("RGB")
    edited = pipe(
        image=image,
        prompt=row["instruction"],
        num_inference_steps=2,
        generator=torch.Generator().manual_seed(0),
    ).images[0]
    assert edited.size == image.size
