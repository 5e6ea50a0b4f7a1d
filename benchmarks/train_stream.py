"""Streamed vs pre-loaded training data (issue 15): prints ONE JSON object.

Three measurements, each a real ``reasonbrain.training.train`` run (tiny preset, Ray Train, one
worker of ``--cpus-per-worker`` CPUs; streaming leaves the machine's other CPUs to Ray Data):

- ``throughput``: samples/s and data-wait (the share of step time spent waiting for the batch)
  at 32 px, pre-loaded vs streamed, from the step logs (median over all steps but the first);
- ``data_wait_by_size``: the streamed data-wait at each ``--sizes`` resolution (32 and 256 px by
  default; the model works at that size too, batch ``--batch-large``);
- ``peak_memory``: the worker's peak RSS when the training split is 1×, 2× and 8× ``--n-base``
  samples, pre-loaded vs streamed (the goal: flat when streamed);
- ``read_decode``: Ray Data alone reading + decoding the stream of one rank, from the directory
  and from an S3 prefix (a moto server on loopback), in samples/s — whether one GET per image is
  a bottleneck next to decoding (if it were, sharded files would be the next step).

    python benchmarks/train_stream.py [--steps 20] [--sizes 32,256] [--scales 1,2,8]

Data: a synthetic Reason50K-layout set (noise-textured squares, PNG) written to a temp dir, so
the decode cost is that of real PNGs, not of flat colours.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def make_dataset(root: Path, n_train: int, size: int, seed: int = 0) -> Path:
    """``n_train`` train records (+ 8 val) with PNG sources, targets and masks at ``size`` px."""
    import numpy as np
    from PIL import Image

    from reasonbrain.data.schema import Record, write_manifest

    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("val", 8)):
        records = []
        for i in range(n):
            src = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            tgt = src.copy()
            tgt[: size // 2, : size // 2] = (255, 255, 0)
            mask = np.zeros((size, size), np.uint8)
            mask[: size // 2, : size // 2] = 255
            stem = f"images/{split}-{i}"
            Image.fromarray(src).save(root / f"{stem}-src.png")
            Image.fromarray(tgt).save(root / f"{stem}-tgt.png")
            Image.fromarray(mask).save(root / f"{stem}-mask.png")
            records.append(
                Record(
                    id=f"{split}-{i}",
                    category="physical",
                    src_image=f"{stem}-src.png",
                    tgt_image=f"{stem}-tgt.png",
                    instruction=f"What would happen if the blue box {i % 7} were painted?",
                    objects=["blue box"],
                    target_caption="a yellow corner",
                    meta={"mask": f"{stem}-mask.png"},
                )
            )
        write_manifest(root / f"{split}.jsonl", records)
    return root


def run(data: Path, work: Path, name: str, sets: list[str]) -> dict[str, Any]:
    """One training run; figures from its step log."""
    from reasonbrain.config import load_params
    from reasonbrain.training.metrics import read_log
    from reasonbrain.training.trainer import train

    params = load_params(None, sets)
    t0 = time.perf_counter()
    res = train(params, data, work / name, storage=work / "ckpt", progress=False)
    rows = read_log(work / name / "train_log.jsonl")[1:]  # the first step pays warm-up
    step_s = statistics.median(r["step_s"] for r in rows)
    return {
        "preload": params.train.preload,
        "image_size": params.model.image_size,
        "samples_per_s": params.train.batch_size / step_s,
        "median_step_s": step_s,
        "data_wait_frac_median": statistics.median(r["data_wait_frac"] for r in rows),
        "data_wait_frac_max": max(r["data_wait_frac"] for r in rows),
        "peak_worker_rss_mb": max(r["peak_mem_mb"] for r in rows),
        "fit_wall_s": time.perf_counter() - t0,
        "steps": len(rows) + 1,
        "run": res.run_name,
    }


def read_decode(location: Any, n_records: int, size: int, batch: int, steps: int) -> float:
    """Samples/s of Ray Data reading + decoding one rank's stream (no training)."""
    from reasonbrain.training.stream import StreamPlan, build_rank_dataset

    plan = StreamPlan(location, size, 0, batch, 1, 1, steps, data_cpus=1.0)
    ds = build_rank_dataset(plan, 0, 0)
    t0 = time.perf_counter()
    n = sum(len(b["id"]) for b in ds.iter_batches(batch_size=batch, batch_format="numpy"))
    assert n == batch * steps
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=16, help="global batch at 32 px")
    ap.add_argument("--batch-large", type=int, default=4, help="global batch at larger sizes")
    ap.add_argument("--sizes", default="32,256")
    ap.add_argument("--scales", default="1,2,8")
    ap.add_argument("--n-base", type=int, default=1000, help="train samples at scale 1")
    ap.add_argument("--memory-size", type=int, default=64, help="image size of the memory runs")
    ap.add_argument("--cpus-per-worker", type=int, default=1)
    ap.add_argument("--skip", default="", help="comma-separated parts to skip")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.5")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")

    out: dict[str, Any] = {
        "benchmark": "train_stream",
        "preset": "tiny",
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "steps": args.steps,
    }
    with tempfile.TemporaryDirectory(prefix="rb-bench-stream-") as tmp:
        work = Path(tmp)
        os.environ.setdefault("REASONBRAIN_HOME", str(work / "home"))
        from reasonbrain.compute import ensure_ray

        ensure_ray()

        def sets(size: int, batch: int, preload: bool, steps: int) -> list[str]:
            return [
                f"model.image_size={size}",
                f"train.max_steps={steps}",
                f"train.batch_size={batch}",
                f"train.checkpoint_every={steps}",
                f"train.val_every={steps}",
                "train.val_samples=0",
                "train.warmup_steps=1",
                "train.workers=1",
                f"train.cpus_per_worker={args.cpus_per_worker}",
                f"train.preload={str(preload).lower()}",
                "train.precision=bf16",
            ]

        small = make_dataset(work / "d32", args.n_base, 32)
        if "throughput" not in skip:
            pre = run(small, work, "pre32", sets(32, args.batch, True, args.steps))
            streamed = run(small, work, "str32", sets(32, args.batch, False, args.steps))
            out["throughput_32px"] = {
                "preloaded": pre,
                "streamed": streamed,
                "streamed_vs_preloaded": streamed["samples_per_s"] / pre["samples_per_s"],
            }
        if "sizes" not in skip:
            by_size = {}
            for size in (int(s) for s in args.sizes.split(",")):
                data = small if size == 32 else make_dataset(work / f"d{size}", 64, size)
                batch = args.batch if size == 32 else args.batch_large
                steps = args.steps if size == 32 else max(4, args.steps // 4)
                by_size[str(size)] = run(data, work, f"size{size}", sets(size, batch, False, steps))
            out["data_wait_by_size_streamed"] = by_size
        if "memory" not in skip:
            mem: dict[str, Any] = {}
            for scale in (int(s) for s in args.scales.split(",")):
                n = scale * args.n_base
                data = make_dataset(work / f"m{scale}", n, args.memory_size)
                size = args.memory_size
                mem[f"{scale}x"] = {
                    "n_train": n,
                    "preloaded_mb": run(data, work, f"mp{scale}", sets(size, 8, True, 4))[
                        "peak_worker_rss_mb"
                    ],
                    "streamed_mb": run(data, work, f"ms{scale}", sets(size, 8, False, 4))[
                        "peak_worker_rss_mb"
                    ],
                }
            out["peak_memory"] = mem
        if "read" not in skip:
            out["read_decode_samples_per_s"] = _read_decode_local_and_s3(small, args)
    print(json.dumps(out))


def _read_decode_local_and_s3(data: Path, args: argparse.Namespace) -> dict[str, float]:
    import boto3
    from moto.server import ThreadedMotoServer

    from reasonbrain.training.datasource import DataLocation

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        os.environ.update(
            AWS_ENDPOINT_URL=endpoint,
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
            AWS_DEFAULT_REGION="us-east-1",
        )
        s3 = boto3.client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket="bench")
        for p in sorted(data.rglob("*")):
            if p.is_file():
                s3.upload_file(str(p), "bench", f"d/{p.relative_to(data).as_posix()}")
        n = args.n_base
        steps = max(1, n // args.batch)
        read_decode(DataLocation.parse(data), n, 32, args.batch, 2)  # warm-up (Ray Data start)
        local = read_decode(DataLocation.parse(data), n, 32, args.batch, steps)
        remote = read_decode(DataLocation.parse("s3://bench/d"), n, 32, args.batch, steps)
        return {"local_dir": local, "s3_moto": remote}
    finally:
        server.stop()


if __name__ == "__main__":
    main()
