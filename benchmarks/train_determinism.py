"""Benchmark: what a bit-identical same-machine training rerun needs, and what it costs.
Prints ONE JSON object.

1. **Tokenizer** — ``tokenizers``' ``BpeTrainer`` vs our deterministic trainer
   (``reasonbrain.models.tokenizer.learn_bpe``) on the same text, ``--repeats`` times each: how many
   distinct vocabularies each produced, and the time per training.
2. **Training steps** — the tiny ReasonBrain model, ``--steps`` optimiser steps (forward, backward,
   AdamW; bf16 autocast as in ``params.yaml``; every RNG re-seeded per step as the training loop
   does), run ``--rounds`` times in each mode from the same initial weights: are the weights
   bit-identical, with and without ``torch.use_deterministic_algorithms(True)``? And the median
   CPU time per step in each mode (after one untimed warm-up run; the modes alternate which goes
   first, so machine load hits both alike).
3. ``--train DATA`` — two real ``reasonbrain train`` runs (subprocesses, Ray Train, ``--set``
   ``train.max_steps=--train-steps``): the sha256 of both exported ``model.safetensors``.

    python benchmarks/train_determinism.py [--threads 2] [--steps 5] [--repeats 3]
    python benchmarks/train_determinism.py --train data/reasonsynth --train-steps 20
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _corpus(data: Path | None) -> list[str]:
    from _tiny import CAPTIONS, INSTRUCTIONS, OBJECTS

    if data is None:
        return (INSTRUCTIONS + CAPTIONS + [o for objs in OBJECTS for o in objs]) * 50
    from reasonbrain.data.schema import manifest_path, read_manifest

    texts: list[str] = []
    for r in read_manifest(manifest_path(data, "train")):
        texts += [r.instruction, r.target_caption or "", *r.objects]
    return texts


def tokenizer_figures(texts: list[str], repeats: int, vocab_size: int) -> dict[str, Any]:
    import string

    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    from reasonbrain.models.tokenizer import BASE_SPECIALS, train_tokenizer

    def library() -> str:
        tok = Tokenizer(models.BPE(unk_token="[UNK]", end_of_word_suffix="</w>"))
        tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Whitespace(), pre_tokenizers.Punctuation()]
        )
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=list(BASE_SPECIALS),
            initial_alphabet=list(string.ascii_lowercase + string.digits + string.punctuation),
            show_progress=False,
            end_of_word_suffix="</w>",
        )
        tok.train_from_iterator(texts, trainer=trainer)
        return str(tok.to_str())

    def ours() -> str:
        return str(train_tokenizer(texts, vocab_size).backend_tokenizer.to_str())

    out: dict[str, Any] = {"texts": len(texts), "vocab_size": vocab_size}
    for name, fn in (("library_bpe_trainer", library), ("ours", ours)):
        digests, times = set(), []
        for _ in range(repeats):
            t0 = time.perf_counter()
            digests.add(hashlib.sha256(fn().encode()).hexdigest())
            times.append(time.perf_counter() - t0)
        out[name] = {"distinct_vocabularies": len(digests), "s_per_training": min(times)}
    return out


def _weights_digest(model: Any) -> str:
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().float().contiguous().numpy().tobytes())
    return h.hexdigest()


def step_figures(steps: int, rounds: int, batch_size: int) -> dict[str, Any]:
    import copy

    import torch
    from _tiny import batch, build

    from reasonbrain.training.step import seed_everything

    torch.manual_seed(0)
    init = build()
    b = batch(batch_size)
    b.update(init.processor(b["instruction"], b["target_caption"]))

    def run(deterministic: bool) -> tuple[str, float]:
        torch.use_deterministic_algorithms(deterministic)
        model = copy.deepcopy(init).train()
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
        cpu = 0.0
        for s in range(steps):
            seed_everything(1000 + s)
            c0 = time.process_time()
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = model(b)
            out.loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            cpu += time.process_time() - c0
        torch.use_deterministic_algorithms(False)
        return _weights_digest(model), cpu / steps

    run(False)  # warm-up: kernel selection and caches, not timed
    digests: dict[bool, set[str]] = {False: set(), True: set()}
    cpu: dict[bool, list[float]] = {False: [], True: []}
    for i in range(rounds):
        for det in (False, True) if i % 2 == 0 else (True, False):
            d, c = run(det)
            digests[det].add(d)
            cpu[det].append(c)
    off, on = statistics.median(cpu[False]), statistics.median(cpu[True])
    return {
        "steps_per_run": steps,
        "runs_per_mode": rounds,
        "batch_size": batch_size,
        "identical_weights_default": len(digests[False]) == 1,
        "identical_weights_deterministic_algorithms": len(digests[True]) == 1,
        "same_weights_in_both_modes": digests[False] == digests[True],
        "cpu_s_per_step_default": round(off, 4),
        "cpu_s_per_step_deterministic_algorithms": round(on, 4),
        "cost_ratio": round(on / off, 3),
    }


def train_figures(data: Path, steps: int) -> dict[str, Any]:
    out: dict[str, Any] = {"steps": steps, "runs": []}
    with tempfile.TemporaryDirectory(prefix="rb-determinism-") as tmp:
        env = {**os.environ, "REASONBRAIN_HOME": str(Path(tmp) / "home")}
        for i in range(2):
            dest = Path(tmp) / f"run{i}"
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "reasonbrain", "train", "--data", str(data), "--out",
                 str(dest), "--set", f"train.max_steps={steps}"],
                check=True, env=env, capture_output=True,
            )  # fmt: skip
            sha = hashlib.sha256((dest / "model" / "model.safetensors").read_bytes()).hexdigest()
            out["runs"].append({"sha256": sha, "wall_s": round(time.perf_counter() - t0, 1)})
    out["bit_identical"] = len({r["sha256"] for r in out["runs"]}) == 1
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3, help="tokenizer trainings per trainer")
    ap.add_argument("--data", type=Path, help="tokenizer text from this dataset's train split")
    ap.add_argument("--train", type=Path, help="also run two real trainings on this dataset")
    ap.add_argument("--train-steps", type=int, default=20)
    ap.add_argument("--only-train", action="store_true", help="skip parts 1 and 2")
    args = ap.parse_args()

    import torch
    from _tiny import machine

    torch.set_num_threads(args.threads)
    result: dict[str, Any] = {}
    if not args.only_train:
        result["tokenizer"] = tokenizer_figures(_corpus(args.data), args.repeats, 1024)
        result["training_steps"] = step_figures(args.steps, args.rounds, args.batch)
    if args.train is not None:
        result["reasonbrain_train"] = train_figures(args.train, args.train_steps)
    result["machine"] = machine()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
