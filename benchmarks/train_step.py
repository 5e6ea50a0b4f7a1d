"""Benchmark: tiny training step (forward + backward + AdamW, batch 16) vs the ip2p baseline.

Both models share the UNet config (ReasonBrain has one more input channel, its grounding cue); the
difference is ReasonBrain's reasoning path (FRCE, grounding head, MLLM with
L_MLLM, QFormer, CME). Each model runs in its own process so that ``peak_rss_mb`` (ru_maxrss) is
its own. Median step time over ``--steps`` steps after ``--warmup``. Target: ratio ≤ 1.5.
Prints ONE JSON object.

    python benchmarks/train_step.py                       # bf16 autocast and fp32
    python benchmarks/train_step.py --threads 1
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _measure(
    kind: str, batch_size: int, steps: int, warmup: int, autocast: bool, threads: int
) -> dict[str, Any]:
    import resource

    import torch
    from _tiny import batch, build

    if threads:
        torch.set_num_threads(threads)
    model = build(kind).train()
    groups = [{"params": g} for g in model.parameter_groups().values() if g]
    opt = torch.optim.AdamW(groups, lr=1e-4)
    b = batch(batch_size)
    # the processor's work happens once per record in training (BatchSource caches it), not in
    # the step: time the step alone, as the training loop's step_s does
    b.update(model.processor(b["instruction"], b["target_caption"]))
    times = []
    loss = float("nan")
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            out = model(b)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
        loss = float(out.loss.detach())
    return {
        "step_s": round(statistics.median(times), 4),
        "step_s_min": round(min(times), 4),
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "final_loss": round(loss, 4),
    }


def _run(args: tuple[Any, ...]) -> dict[str, Any]:
    return _measure(*args)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark and print/return its JSON result."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    args = ap.parse_args(argv)

    from _tiny import machine

    result: dict[str, Any] = {
        "benchmark": "train_step",
        "preset": "tiny",
        "batch_size": args.batch_size,
        "machine": {**machine(), "torch_threads": args.threads or "torch default"},
    }
    ctx = mp.get_context("spawn")
    for autocast in (True, False):
        key = "bf16_autocast" if autocast else "fp32"
        row: dict[str, Any] = {}
        for kind in ("reasonbrain", "ip2p"):
            job = (kind, args.batch_size, args.steps, args.warmup, autocast, args.threads)
            with ctx.Pool(1) as pool:
                row[kind] = pool.apply(_run, (job,))
        row["ratio"] = round(row["reasonbrain"]["step_s"] / row["ip2p"]["step_s"], 3)
        result[key] = row
    result["target_ratio"] = 1.5
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
