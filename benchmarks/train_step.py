"""Benchmark: tiny training step (forward + backward + AdamW, batch 16) vs the ip2p baseline.

Both models share the UNet config (ReasonBrain has one more input channel, its grounding cue); the
difference is ReasonBrain's reasoning path (FRCE, grounding head, MLLM with L_MLLM, QFormer, CME).
The batch holds the processor's tensors, as the training loop's does: tokenisation and object
extraction run once per record (``BatchSource`` caches them), not in the step.

Timing: both models live in one process and their steps are **interleaved** (ReasonBrain, ip2p,
ReasonBrain, …), so machine load hits both alike; ``ratio`` is the ratio of the median step
times, ``ratio_min`` of the fastest ones, ``ratio_cpu`` of the median process CPU times (not
inflated by waiting for a core on a shared machine; steadiest with ``--threads 1``).
``peak_rss_mb`` comes from a separate short run of each model in its own process (ru_maxrss is
per process). Target: ratio ≤ 1.5. Prints ONE JSON object.

    python benchmarks/train_step.py                       # bf16 autocast and fp32
    python benchmarks/train_step.py --threads 1
    python benchmarks/train_step.py --breakdown           # + what each reasoning part costs
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

KINDS = ("reasonbrain", "ip2p")
#: --breakdown: ReasonBrain with one part of its reasoning path switched off (ablation switches)
BREAKDOWN: dict[str, dict[str, Any]] = {
    "no_patch_branch": {"use_patch_branch": False, "spatial_cue": False},
    "no_region_branch": {"use_region_branch": False},
    "no_id_controller": {"use_id_controller": False, "spatial_cue": False},
    "no_cme": {"use_cme": False},
    "no_rationale": {"use_rationale": False},
}


def _setup(kind: str, batch_size: int, **overrides: Any) -> tuple[Any, Any, dict[str, Any]]:
    import torch
    from _tiny import batch, build

    model = build(kind, **overrides).train()
    groups = [{"params": g} for g in model.parameter_groups().values() if g]
    opt = torch.optim.AdamW(groups, lr=1e-4)
    b = batch(batch_size)
    b.update(model.processor(b["instruction"], b["target_caption"]))
    return model, opt, b


def _step(model: Any, opt: Any, b: dict[str, Any], autocast: bool) -> tuple[float, float, float]:
    """One step: ``(wall s, process CPU s, loss)``."""
    import torch

    t0, c0 = time.perf_counter(), time.process_time()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out = model(b)
    out.loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return time.perf_counter() - t0, time.process_time() - c0, float(out.loss.detach())


def _interleaved(
    batch_size: int, steps: int, warmup: int, autocast: bool, threads: int
) -> dict[str, Any]:
    import torch

    if threads:
        torch.set_num_threads(threads)
    setups = {k: _setup(k, batch_size) for k in KINDS}
    times: dict[str, list[float]] = {k: [] for k in KINDS}
    cpu: dict[str, list[float]] = {k: [] for k in KINDS}
    loss: dict[str, float] = {}
    for i in range(warmup + steps):
        for kind, (model, opt, b) in setups.items():
            dt, dc, loss[kind] = _step(model, opt, b, autocast)
            if i >= warmup:
                times[kind].append(dt)
                cpu[kind].append(dc)
    row: dict[str, Any] = {}
    for kind, (model, _, _) in setups.items():
        row[kind] = {
            "step_s": round(statistics.median(times[kind]), 4),
            "step_s_min": round(min(times[kind]), 4),
            "step_cpu_s": round(statistics.median(cpu[kind]), 4),
            "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "final_loss": round(loss[kind], 4),
        }
    rb, ip = row["reasonbrain"], row["ip2p"]
    row["ratio"] = round(rb["step_s"] / ip["step_s"], 3)
    row["ratio_min"] = round(rb["step_s_min"] / ip["step_s_min"], 3)
    row["ratio_cpu"] = round(rb["step_cpu_s"] / ip["step_cpu_s"], 3)
    return row


def _breakdown(batch_size: int, steps: int, warmup: int, threads: int) -> dict[str, Any]:
    """fp32 step CPU time of ReasonBrain with each part off, interleaved with the full model."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    setups = {"full": _setup("reasonbrain", batch_size)}
    setups.update({k: _setup("reasonbrain", batch_size, **v) for k, v in BREAKDOWN.items()})
    setups["ip2p"] = _setup("ip2p", batch_size)
    times: dict[str, list[float]] = {k: [] for k in setups}
    for i in range(warmup + steps):
        for name, (model, opt, b) in setups.items():
            _, dc, _ = _step(model, opt, b, autocast=False)
            if i >= warmup:
                times[name].append(dc)
    median = {k: statistics.median(v) for k, v in times.items()}
    return {
        k: {"step_s": round(v, 4), "saves_s": round(median["full"] - v, 4)}
        for k, v in median.items()
    }


def _peak_rss(kind: str, batch_size: int, autocast: bool, threads: int) -> float:
    import resource

    import torch

    if threads:
        torch.set_num_threads(threads)
    model, opt, b = _setup(kind, batch_size)
    for _ in range(2):
        _step(model, opt, b, autocast)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _run(job: tuple[Any, ...]) -> Any:
    fn, args = job
    return fn(*args)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark and print/return its JSON result."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    ap.add_argument(
        "--breakdown", action="store_true", help="also time ReasonBrain with each part off (fp32)"
    )
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
        with ctx.Pool(1) as pool:  # a fresh process per precision: no state carried over
            job = (_interleaved, (args.batch_size, args.steps, args.warmup, autocast, args.threads))
            row = pool.apply(_run, (job,))
        for kind in KINDS:
            with ctx.Pool(1) as pool:
                rss_job = (_peak_rss, (kind, args.batch_size, autocast, args.threads))
                row[kind]["peak_rss_mb"] = pool.apply(_run, (rss_job,))
        result[key] = row
    if args.breakdown:
        with ctx.Pool(1) as pool:
            parts = (_breakdown, (args.batch_size, args.steps, args.warmup, args.threads))
            result["breakdown_fp32"] = pool.apply(_run, (parts,))
    result["target_ratio"] = 1.5
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
