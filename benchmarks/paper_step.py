"""Benchmark: one training step of the paper preset (forward + backward + clip + AdamW).

The step is the training loop's: the dtype policy (frozen parts in the compute dtype, fp32
master weights), bf16 autocast on the model's device when ``train.precision`` says so, the
optimiser's per-group learning rates. For each batch size it reports the median step time, peak
memory, the FLOPs of one step (counted by ``torch.utils.flop_counter`` on an untimed step) and the
model FLOPs utilisation MFU = FLOPs / step time / peak device FLOP/s. Prints ONE JSON object.

    # CPU, tiny random checkpoints in the real on-disk formats (written to a temp dir)
    python benchmarks/paper_step.py --tiny --batch 1,2
    # a GPU machine with the real weights (model.weights / REASONBRAIN_WEIGHTS_DIR)
    python benchmarks/paper_step.py --params params.paper.yaml --batch 1,2,4
    # true-size paper architecture from the published configs, random init (no weights needed;
    # ~40 GB of device memory for the 9.4 B parameters during construction)
    python benchmarks/paper_step.py --random-init --batch 1,2,4

Peak FLOP/s defaults: this project's 2-core CPU measured 0.84 TFLOP/s bf16 / 0.205 fp32
(``/work/shared/notes/stack-notes.md``); H100/H200 989 and A100 312 TFLOP/s bf16 dense (vendor
figures); pass ``--peak-tflops`` for anything else.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GPU_PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0}
CPU_PEAK_TFLOPS = {"bf16": 0.84, "fp32": 0.205}
INSTRUCTION = "What would happen if the red candle on the left burned for hours?"


def peak_tflops(device: Any, bf16: bool) -> float | None:
    """The device's peak dense FLOP/s in TFLOP/s, when known."""
    import torch

    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return next((v for k, v in GPU_PEAK_TFLOPS.items() if k in name), None)
    return CPU_PEAK_TFLOPS["bf16" if bf16 else "fp32"]


def batch(n: int, size: int) -> dict[str, Any]:
    """A synthetic collated batch of ``n`` edits at ``size`` px."""
    import torch

    g = torch.Generator().manual_seed(0)
    src = torch.rand(n, 3, size, size, generator=g) * 2 - 1
    tgt = (src + 0.1 * torch.randn(n, 3, size, size, generator=g)).clamp(-1, 1)
    return {
        "id": [f"b{i}" for i in range(n)],
        "src": src,
        "tgt": tgt,
        "instruction": [INSTRUCTION] * n,
        "objects": [["red candle"]] * n,
        "target_caption": ["the red candle is a short stub"] * n,
        "category": ["physical"] * n,
    }


def random_init_model(cfg: Any, device: Any, frozen: Any) -> Any:
    """The architecture ``cfg`` built directly on ``device`` with random weights (no files):
    tokenizers are small locally trained ones (token ids stay inside every vocabulary)."""
    import torch

    from reasonbrain.models.presets import model_from_config
    from reasonbrain.models.tokenizer import add_img_tokens, train_tokenizer

    tok = train_tokenizer([INSTRUCTION, "the red candle is a short stub"], 256)
    add_img_tokens(tok, 8)
    with torch.device(device):
        model = model_from_config(cfg.model_copy(update={"sources": {}}), tok, tok)
    for p in model.parameters():
        if not p.requires_grad:
            p.data = p.data.to(frozen)
    return model


def build(args: argparse.Namespace, device: Any, frozen: Any) -> tuple[Any, int]:
    """The model under test and its image size."""
    from reasonbrain.config import load_params
    from reasonbrain.models.presets import PUBLISHED_PARTS, build_model, paper_config

    sets = [f"model.kind={args.kind}"]
    if args.params is None:
        sets.insert(0, "model.preset=paper")
    if args.tiny:
        from reasonbrain.models.tiny_weights import save_tiny_paper_weights

        root = Path(tempfile.mkdtemp(prefix="rb-paper-step-"))
        for name, path in save_tiny_paper_weights(root, dtype=args.tiny_dtype).items():
            sets.append(f"model.weights.{name}={path}")
    params = load_params(args.params, sets) if args.params else _paper(sets)
    mp = params.model
    if args.random_init:
        model = random_init_model(paper_config(mp, PUBLISHED_PARTS), device, frozen)
    else:
        model = build_model(mp, objects=["red candle"], dtype=frozen).to(device)
    return model, mp.image_size


def _paper(sets: list[str]) -> Any:
    from reasonbrain.config import apply_overrides, params_from_dict

    return params_from_dict(apply_overrides({}, sets), "paper profile")


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark."""
    import resource

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from reasonbrain.config import TrainParams
    from reasonbrain.models.precision import frozen_dtype
    from reasonbrain.training.optim import build_optimizer

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    precision = args.precision or ("auto" if device.type == "cuda" else "fp32")
    frozen = frozen_dtype(precision, device.type)
    bf16 = frozen == torch.bfloat16
    t0 = time.perf_counter()
    model, size = build(args, device, frozen)
    build_s = time.perf_counter() - t0
    model.train()
    opt = build_optimizer(model, TrainParams(lr=1e-5, group_lr={}))
    trainable = [p for g in opt.param_groups for p in g["params"]]

    def step(b: dict[str, Any]) -> float:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(b)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(out.loss.detach())

    peak = args.peak_tflops or peak_tflops(device, bf16)
    rows = []
    for n in args.batch:
        b = batch(n, size)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        with FlopCounterMode(display=False) as counter:  # untimed: counting slows the step
            loss = step(b)
        flops = counter.get_total_flops()
        times = []
        for i in range(args.warmup + args.steps):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t = time.perf_counter()
            loss = step(b)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i >= args.warmup:
                times.append(time.perf_counter() - t)
        step_s = statistics.median(times)
        mem = (
            torch.cuda.max_memory_allocated(device) / 2**20
            if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        )
        rows.append(
            {
                "batch": n,
                "step_s": round(step_s, 4),
                "samples_per_s": round(n / step_s, 3),
                "tflops_per_step": round(flops / 1e12, 4),
                "achieved_tflops": round(flops / step_s / 1e12, 4),
                "mfu": round(flops / step_s / (peak * 1e12), 4) if peak else None,
                "peak_mem_mb": round(mem, 1),
                "loss": round(loss, 4),
            }
        )
    params = sum(p.numel() for p in model.parameters())
    return {
        "benchmark": "paper_step",
        "kind": args.kind,
        "weights": "random-init (published configs)"
        if args.random_init
        else ("tiny real-format files" if args.tiny else "local files"),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "precision": precision,
        "frozen_dtype": str(frozen).removeprefix("torch."),
        "image_size": size,
        "parameters": params,
        "trainable_parameters": sum(p.numel() for p in trainable),
        "build_s": round(build_s, 2),
        "peak_tflops": peak,
        "memory": "peak allocated (CUDA)" if device.type == "cuda" else "process peak RSS so far",
        "rows": rows,
    }


def main() -> None:
    """Parse arguments, run, print one JSON object."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="tiny real-format checkpoints (CPU)")
    ap.add_argument("--tiny-dtype", default="float16", help="dtype of the tiny files")
    ap.add_argument("--random-init", action="store_true", help="published configs, random init")
    ap.add_argument("--params", type=Path, default=None, help="params file (model section)")
    ap.add_argument("--kind", default="reasonbrain", choices=["reasonbrain", "ip2p"])
    ap.add_argument("--batch", default="1,2", help="comma-separated batch sizes (1-4)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--device", default=None, help="cuda | cpu (default: cuda when available)")
    ap.add_argument("--precision", default=None, choices=["auto", "fp32", "bf16"])
    ap.add_argument("--peak-tflops", type=float, default=None)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    args.batch = [int(x) for x in str(args.batch).split(",") if x.strip()]
    print(json.dumps(measure(args), sort_keys=True))


if __name__ == "__main__":
    main()
