"""FSDP (``train.strategy=fsdp``) on CPU workers with gloo.

1. A sharded checkpoint restores exactly (two ranks in ``torch.multiprocessing``, the toy model):
   run 4 steps saving at step 2; a fresh state restored from the step-2 checkpoint repeats steps 3
   and 4 bit for bit (weights and losses: the optimiser state came back too); the driver's
   consolidation of the shards equals the step-2 weights; one rank restores the two ranks' shards
   (DCP reshards).
2. The tiny preset through Ray Train, 2 workers: FSDP with gradient checkpointing (the auto-wrap
   policy shards LLaVA's decoder layers, the CLIP layers and the UNet's blocks; their activations
   are recomputed in the backward pass) follows DDP within float tolerance; each rank wrote its
   own shard file; the exported model (assembled from the shards by the driver) edits images;
   sample edits were made under FSDP.
"""

from __future__ import annotations

import functools
import json
import socket
from pathlib import Path
from typing import Any

import pytest
import torch

from reasonbrain.config import Params, load_params
from reasonbrain.training.metrics import read_log
from tests.mini_dataset import make_mini_dataset
from tests.training_toy import toy_spec

pytestmark = [pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _toy_batch(step: int, rank: int) -> dict[str, Any]:
    g = torch.Generator().manual_seed(1000 * step + rank)
    src = torch.rand(2, 3, 8, 8, generator=g) * 2 - 1
    return {
        "src": src,
        "tgt": (src + 0.3).clamp(-1, 1),
        "instruction": [f"paint box {step}", f"melt cube {rank}"],
    }


def _full_weights(model: Any) -> dict[str, torch.Tensor]:
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return {k: v.clone() for k, v in get_model_state_dict(model, options=opts).items()}


def _worker(rank: int, world: int, port: int, root: str) -> None:
    """Each rank: 4 steps with a sharded checkpoint at step 2, then a restore and steps 3–4."""
    import os

    import torch.distributed as dist

    from reasonbrain.training.state import TrainState
    from reasonbrain.training.step import StepContext, train_step

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    base = Path(root)
    tp = load_params(None, ["train.strategy=fsdp", "train.warmup_steps=1", "train.max_steps=4"])
    tp = tp.train
    ctx = StepContext(tp, rank, world, torch.device("cpu"))
    restore = functools.partial(
        TrainState.restore,
        toy_spec(0.01),
        tp,
        device=ctx.device,
        world=world,
        dtype=torch.float32,
    )
    state = restore(work=base / f"work{rank}", checkpoint=None, init_model=base / "init")
    losses = []
    for step in range(4):
        losses.append(train_step(state, [_toy_batch(step, rank)], ctx)["loss"])
        if state.step == 2:
            state.save(base / "ckpt", rank=rank, final=False, card={}, summary={})
            at_2 = _full_weights(state.model)
    dist.barrier()
    again = restore(work=base / f"again{rank}", checkpoint=base / "ckpt", init_model=None)
    assert again.step == 2
    relosses = [train_step(again, [_toy_batch(step, rank)], ctx)["loss"] for step in (2, 3)]
    final, refinal = _full_weights(state.model), _full_weights(again.model)
    if rank == 0:
        torch.save(
            {"losses": losses, "relosses": relosses, "at_2": at_2, "final": final, "re": refinal},
            base / "result.pt",
        )
    dist.destroy_process_group()


def _single(rank: int, port: int, root: str) -> None:
    """One rank restores the two ranks' shards."""
    import os

    import torch.distributed as dist

    from reasonbrain.training.state import TrainState

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=0, world_size=1)
    base = Path(root)
    tp = load_params(None, ["train.strategy=fsdp", "train.max_steps=4"]).train
    state = TrainState.restore(
        toy_spec(0.01),
        tp,
        device=torch.device("cpu"),
        world=1,
        work=base / "single",
        checkpoint=base / "ckpt",
        init_model=None,
        dtype=torch.float32,
    )
    torch.save(_full_weights(state.model), base / "single.pt")
    dist.destroy_process_group()


def test_sharded_checkpoint_restores_exactly(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    from reasonbrain.training.state import BASE_MODEL_DIR, SHARDED_DIR, consolidate_sharded

    torch.manual_seed(0)
    toy_spec(0.01).build().save_pretrained(tmp_path / "init")
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2)
    res = torch.load(tmp_path / "result.pt")
    assert res["relosses"] == res["losses"][2:]  # steps 3–4 again, bit for bit
    assert res["final"].keys() == res["re"].keys()
    assert all(torch.equal(res["final"][k], res["re"][k]) for k in res["final"])
    assert not all(torch.equal(res["final"][k], res["at_2"][k]) for k in res["final"])

    ckpt = tmp_path / "ckpt"
    shards = sorted(p.name for p in (ckpt / SHARDED_DIR).iterdir())
    assert shards == [".metadata", "__0_0.distcp", "__1_0.distcp"]  # one file per rank
    assert (ckpt / BASE_MODEL_DIR / "model.safetensors").is_file()
    assert json.loads((ckpt / "train_state.json").read_text())["step"] == 2

    consolidate_sharded(toy_spec(0.01), ckpt, tmp_path / "export")  # the driver, one process
    exported = toy_spec(0.01).load(tmp_path / "export").state_dict()
    assert all(torch.equal(exported[k], res["at_2"][k]) for k in res["at_2"])

    mp.spawn(_single, args=(_free_port(), str(tmp_path)), nprocs=1)  # 2 shards → 1 rank
    single = torch.load(tmp_path / "single.pt")
    assert all(torch.equal(single[k], res["at_2"][k]) for k in res["at_2"])


# ------------------------------------------------------------------------- Ray, tiny preset
STEPS = 3
TINY = [
    "model.image_size=32",
    "train.workers=2",
    "train.cpus_per_worker=1",
    "train.batch_size=4",
    f"train.max_steps={STEPS}",
    "train.checkpoint_every=3",
    "train.val_every=3",
    "train.val_samples=4",
    "train.sample_images=1",
    "train.sample_steps=2",
    "train.warmup_steps=1",
    "train.precision=fp32",
    "train.max_failures=0",
]


def _prebuilt_spec(model_dir: Path) -> Any:
    """The real model spec, but every run starts from the same saved model (the tiny tokenizer
    is not reproducible across builds, huggingface/tokenizers#1794)."""
    from reasonbrain.models.checkpoint import from_pretrained
    from reasonbrain.training.protocol import ModelSpec, reasonbrain_spec

    real = reasonbrain_spec(load_params(None, TINY).model, model_dir)
    return ModelSpec(
        build=functools.partial(from_pretrained, model_dir),
        load=real.load,
        sample=real.sample,
        name="tiny",
    )


@pytest.mark.ray
def test_fsdp_tiny_preset_follows_ddp(ray_session: Any, tmp_path: Path) -> None:
    from reasonbrain.inference.pipeline import ReasonBrainPipeline
    from reasonbrain.models.presets import build_model
    from reasonbrain.training.state import SHARDED_DIR
    from reasonbrain.training.trainer import train

    data = make_mini_dataset(tmp_path / "data", n_per_split=8, size=32)
    params: Params = load_params(None, TINY)
    torch.manual_seed(0)
    corpus = [line for line in (data / "train.jsonl").read_text().splitlines()]
    build_model(params.model, corpus=corpus, objects=["blue box"]).save_pretrained(
        tmp_path / "init"
    )
    spec = _prebuilt_spec(tmp_path / "init")
    runs = {}
    # FSDP also recomputes activations (gradient checkpointing inside the sharded units): the
    # gradients are the same, so the runs must still agree
    extra = {"ddp": [], "fsdp": ["train.gradient_checkpointing=true"]}
    for strategy in ("ddp", "fsdp"):
        out = tmp_path / strategy
        runs[strategy] = train(
            load_params(None, [*TINY, f"train.strategy={strategy}", *extra[strategy]]),
            data,
            out,
            storage=tmp_path / "ckpt",
            spec=spec,
            progress=False,
        )
    ddp, fsdp = (read_log(tmp_path / s / "train_log.jsonl") for s in ("ddp", "fsdp"))
    assert [r["step"] for r in fsdp] == list(range(1, STEPS + 1))
    for key in ("loss", "loss_mllm", "loss_dm", "grad_norm"):
        assert [r[key] for r in fsdp] == pytest.approx([r[key] for r in ddp], rel=1e-3), key
    assert fsdp[-1]["val_loss"] == pytest.approx(ddp[-1]["val_loss"], rel=1e-3)

    from safetensors.torch import load_file

    w_ddp = load_file(runs["ddp"].model_dir / "model.safetensors")
    w_fsdp = load_file(runs["fsdp"].model_dir / "model.safetensors")
    assert w_ddp.keys() == w_fsdp.keys()
    # Adam's first updates are ~lr x sign(gradient): an element whose gradient is ~0 can take
    # the opposite step when the two strategies sum the shards in another order (seen once on
    # a loaded host: one bias element). So: all but 0.1 % of the elements within 2e-4, and none
    # further than the opposite steps could take it (2 x lr x steps).
    far = total = 0
    for k in w_ddp:
        diff = (w_ddp[k] - w_fsdp[k]).abs()
        assert float(diff.max()) <= 2 * 1e-3 * STEPS, k
        far += int((diff > 2e-4).sum())
        total += diff.numel()
    assert far <= total // 1000, f"{far} of {total} elements differ by more than 2e-4"

    ckpt = Path(runs["fsdp"].checkpoint_uri)
    shards = sorted(p.name for p in (ckpt / SHARDED_DIR).iterdir())
    assert shards == [".metadata", "__0_0.distcp", "__1_0.distcp"]  # each rank wrote its own
    assert list((runs["fsdp"].out_dir / "samples").glob("step_*.png"))  # sampled under FSDP

    pipe = ReasonBrainPipeline.from_pretrained(runs["fsdp"].model_dir)
    row = json.loads((data / "val.jsonl").read_text().splitlines()[0])
    from PIL import Image

    edited = pipe(
        image=Image.open(data / row["src_image"]).convert("RGB"),
        prompt=row["instruction"],
        num_inference_steps=2,
        generator=torch.Generator().manual_seed(0),
    ).images[0]
    assert edited.size == (32, 32)
