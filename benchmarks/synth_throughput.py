"""Benchmark: ReasonSynth generation throughput (issue 2 asks for >= 200 samples/s at 64 px).

Generates a Reason50K-sized dataset (51,039 samples by default; 2 % each for val and test,
which also get counterfactual images) into a temporary directory and prints ONE JSON object.

    python benchmarks/synth_throughput.py                 # full size
    python benchmarks/synth_throughput.py --n 2000        # quick run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Run the benchmark and print/return its JSON result."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=51039, help="total samples (default: Reason50K size)")
    ap.add_argument("--size", type=int, default=64, help="image side in pixels")
    ap.add_argument("--workers", type=int, default=0, help="processes (0 = all cores)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dir", type=Path, default=None, help="parent of the output (default: tmp)")
    ap.add_argument("--keep", action="store_true", help="keep the generated dataset")
    ap.add_argument("--progress", action="store_true", help="show the progress bar")
    args = ap.parse_args(argv)

    from reasonbrain.config import SynthParams
    from reasonbrain.data.synth import generate_dataset
    from reasonbrain.data.synth.generate import resolve_workers

    n_eval = args.n // 50
    params = SynthParams(
        n_train=args.n - 2 * n_eval,
        n_val=n_eval,
        n_test=n_eval,
        size=args.size,
        seed=args.seed,
        workers=args.workers,
    )
    parent = Path(tempfile.mkdtemp(prefix="synth-bench-", dir=args.dir))
    out = parent / "reasonsynth"
    try:
        summary = generate_dataset(out, params, force=True, progress=args.progress)
        n_files = sum(1 for _ in (out / "images").rglob("*.png"))
    finally:
        if not args.keep:
            shutil.rmtree(parent, ignore_errors=True)
    result: dict[str, object] = {
        "benchmark": "synth_throughput",
        "n": summary.total,
        "counts": summary.counts,
        "size": args.size,
        "workers": resolve_workers(args.workers),
        "cpu_count": os.cpu_count(),
        "seconds": round(summary.seconds, 3),
        "samples_per_s": round(summary.total / max(summary.seconds, 1e-9), 1),
        "png_files": n_files,
        "target_samples_per_s": 200,
    }
    if args.keep:
        result["dir"] = str(out)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
