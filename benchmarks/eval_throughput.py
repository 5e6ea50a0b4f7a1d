"""Benchmark: evaluation throughput (edits/s at 20 steps), Ray Data vs a plain loop.

Both engines run the same predictor and scorer over the same ReasonSynth-layout samples (built
with ``reasonbrain.evaluation.testing``): ``engine="loop"`` edits and scores in this process;
``engine="ray"`` streams the samples through Ray Data ``map_batches`` with ``EvalWorker`` actors.
Each figure is samples / wall-clock seconds of one ``evaluate`` call, model loading included; Ray's
own start-up (``ray.init``, once per cluster) is reported separately. The model is a saved model
directory (``--model``), by default an untrained ``tiny`` preset built and saved here (speed does
not depend on training), or ``identity``. Prints ONE JSON object.

    python benchmarks/eval_throughput.py                       # tiny preset, 8 samples
    python benchmarks/eval_throughput.py --model identity --n 64
    python benchmarks/eval_throughput.py --actors 2 --cpus-per-actor 0.5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any


def _tiny_model(dest: Path) -> Path:
    import torch

    from reasonbrain.config import ModelParams
    from reasonbrain.models.presets import build_model

    torch.manual_seed(0)
    model = build_model(
        ModelParams(),
        corpus=["What would happen if the red box were left in the sun?", "a yellow box"],
        objects=["red box", "blue box"],
    )
    model.save_pretrained(dest, params_hash="benchmark", data_version="none")
    return dest


def _rows(out: Path) -> dict[str, dict[str, Any]]:
    lines = (out / "samples.jsonl").read_text().splitlines()
    return {r["id"]: r for r in map(json.loads, lines)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark and print/return its JSON result."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default=None, help="model dir or `identity` (default: tiny)")
    ap.add_argument("--n", type=int, default=8, help="samples per engine")
    ap.add_argument("--steps", type=int, default=20, help="denoising steps")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--actors", type=int, default=2, help="Ray Data actors")
    ap.add_argument("--cpus-per-actor", type=float, default=0.5)
    ap.add_argument("--size", type=int, default=0, help="image side (0: the default model's)")
    args = ap.parse_args(argv)
    if not args.size:
        from reasonbrain.config import ModelParams

        args.size = ModelParams().image_size

    from reasonbrain.config import EvalParams, Settings
    from reasonbrain.evaluation.runner import evaluate
    from reasonbrain.evaluation.testing import make_synth_dataset

    tmp = Path(tempfile.mkdtemp(prefix="rb-eval-bench-"))
    data = make_synth_dataset(tmp / "data", n=args.n, size=args.size)
    model = args.model or str(_tiny_model(tmp / "tiny"))
    params = EvalParams(
        num_inference_steps=args.steps,
        batch_size=args.batch_size,
        concurrency=args.actors,
        num_cpus_per_actor=args.cpus_per_actor,
        metrics=["l1", "l2", "psnr", "ssim"],
        bootstrap_resamples=100,
    )
    settings = Settings(weights_dir=None)
    result: dict[str, Any] = {
        "benchmark": "eval_throughput",
        "model": "tiny (untrained)" if args.model is None else args.model,
        "samples": args.n,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "ray_actors": args.actors,
        "ray_cpus_per_actor": args.cpus_per_actor,
        "image_size": args.size,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
    }
    loop = evaluate(
        model, data, tmp / "loop", params, engine="loop", settings=settings, progress=False
    )
    result["loop_edits_per_s"] = round(loop.evaluated / loop.seconds, 4)

    import ray

    t0 = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    result["ray_init_s"] = round(time.perf_counter() - t0, 2)
    try:
        rr = evaluate(
            model, data, tmp / "ray", params, engine="ray", settings=settings, progress=False
        )
    finally:
        ray.shutdown()
    result["ray_edits_per_s"] = round(rr.evaluated / rr.seconds, 4)
    result["ray_over_loop"] = round(result["ray_edits_per_s"] / result["loop_edits_per_s"], 3)
    result["load_avg_1m"] = round(os.getloadavg()[0], 2)
    # same samples, same seeds: outputs agree up to float reduction order (torch thread counts
    # differ between the driver and the actors)
    a, b = _rows(tmp / "loop"), _rows(tmp / "ray")
    diffs = [
        abs(a[i]["metrics"][k] - b[i]["metrics"][k])
        for i in a
        for k in ("l1", "psnr")
        if a[i]["metrics"].get(k) is not None
    ]
    result["max_abs_metric_diff"] = max(diffs) if diffs else 0.0
    result["same_verdicts"] = all(
        a[i]["metrics"].get("reasoning_acc") == b[i]["metrics"].get("reasoning_acc") for i in a
    )
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
