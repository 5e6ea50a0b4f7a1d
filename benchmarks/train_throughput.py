"""Training throughput of the tiny preset on this machine (issue 4): prints ONE JSON object.

Runs ``reasonbrain.training.train`` (Ray Train, real workers) with 1 and 2 workers at the same
global batch, and 1 worker with bf16 autocast, each for ``--steps`` optimiser steps, and reports
samples/s (first step excluded: it pays one-off warm-up), the 2-vs-1 scaling ratio, the data-wait
fraction of step time, peak memory per worker (max RSS on CPU) and the fit's wall time including
worker start-up.

    python benchmarks/train_throughput.py [--data DIR] [--steps 8] [--batch 16]

Without ``--data`` a small ReasonSynth set is generated into a temporary directory first.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any


def _run(data: Path, work: Path, name: str, sets: list[str]) -> dict[str, Any]:
    from reasonbrain.config import load_params
    from reasonbrain.training.trainer import train

    params = load_params(None, sets)
    res = train(params, data, work / name, storage=work / "ckpt", progress=False)
    m = res.metrics
    return {
        "workers": params.train.workers,
        "precision": params.train.precision,
        "samples_per_s": m.get("samples_per_s"),
        "data_wait_frac": m.get("data_wait_frac"),
        "peak_mem_mb_per_worker": m.get("peak_mem_mb"),
        "loss_start": m.get("loss_start"),
        "loss_end": m.get("loss_end"),
        "fit_wall_s": res.seconds,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="dataset directory")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args()
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.5")

    with tempfile.TemporaryDirectory(prefix="rb-bench-train-") as tmp:
        work = Path(tmp)
        os.environ.setdefault("REASONBRAIN_HOME", str(work / "home"))
        data = args.data
        if data is None:
            from reasonbrain.config import SynthParams
            from reasonbrain.data.synth import generate_dataset

            data = work / "data"
            synth = SynthParams(n_train=512, n_val=32, n_test=0, seed=0)
            generate_dataset(data, synth, force=True, progress=False)
        base = [
            f"train.max_steps={args.steps}",
            f"train.batch_size={args.batch}",
            f"train.checkpoint_every={args.steps}",
            f"train.val_every={args.steps}",
            "train.val_samples=0",
            "train.warmup_steps=1",
        ]
        # every run uses all cores: 1 worker × all CPUs vs 2 workers × half each
        cpus = os.cpu_count() or 2
        w1 = ["train.workers=1", f"train.cpus_per_worker={cpus}"]
        w2 = ["train.workers=2", f"train.cpus_per_worker={max(1, cpus // 2)}"]
        one = _run(data, work, "w1", [*base, *w1, "train.precision=fp32"])
        two = _run(data, work, "w2", [*base, *w2, "train.precision=fp32"])
        bf16 = _run(data, work, "w1bf16", [*base, *w1, "train.precision=bf16"])
    ratio = (two["samples_per_s"] or 0) / (one["samples_per_s"] or 1)
    print(
        json.dumps(
            {
                "benchmark": "train_throughput",
                "preset": "tiny",
                "global_batch": args.batch,
                "steps": args.steps,
                "cpus": os.cpu_count(),
                "machine": platform.machine(),
                "one_worker_fp32": one,
                "two_workers_fp32": two,
                "one_worker_bf16": bf16,
                "scaling_ratio_2_vs_1": ratio,
                "bf16_speedup": (bf16["samples_per_s"] or 0) / (one["samples_per_s"] or 1),
                "gpu": None,
            }
        )
    )


if __name__ == "__main__":
    main()
