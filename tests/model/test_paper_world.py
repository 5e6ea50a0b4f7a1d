"""The paper code path for real, on CPU, with tiny checkpoints in the real on-disk formats.

build → 2 training steps through the real training loop (Ray Train) → save → load → edit, for
``reasonbrain`` (with fp16 checkpoint files, as LLaVA-1.5 ships them, and bf16 precision: frozen
parts in bf16, fp32 master weights, bf16 autocast) and ``ip2p`` (fp32 files, fp32 precision).
Before issue #12 the first failed at build (``mllm.py:121``: a hand-written 4096-wide config vs the
loaded 64-wide LLaVA), the second on its conditioning width, and fp16 files failed inside autocast.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from reasonbrain.config import Params, params_from_dict
from reasonbrain.training.metrics import read_log

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _params(weights: dict[str, str], kind: str, precision: str) -> Params:
    return params_from_dict(
        {
            "model": {"preset": "paper", "kind": kind, "weights": weights},
            "train": {
                "workers": 1,
                "cpus_per_worker": 1,
                "use_gpu": False,
                "batch_size": 2,
                "grad_accum_steps": 1,
                "max_steps": 2,
                "precision": precision,
                "warmup_steps": 1,
                "checkpoint_every": 2,
                "val_every": 2,
                "val_samples": 2,
                "sample_images": 1,
                "sample_steps": 2,
                "preload": True,
                "max_failures": 0,
            },
        },
        "paper-world test",
    )


def _train(params: Params, data: Path, out: Path) -> Any:
    from reasonbrain.training.trainer import train

    return train(params, data, out, storage=str(out / "ckpt"), progress=False)


def _check_run(res: Any) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    rows = read_log(res.out_dir / "train_log.jsonl")
    assert [r["step"] for r in rows] == [1, 2]
    for r in rows:
        assert math.isfinite(r["loss"]) and math.isfinite(r["grad_norm"]) and r["grad_norm"] > 0
    cfg = json.loads((res.model_dir / "config.json").read_text())
    assert cfg["preset"] == "paper" and cfg["sources"]
    state = load_file(str(res.model_dir / "model.safetensors"))
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    assert bad == []
    assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float32}
    # frozen pretrained towers are not in the checkpoint, the trained UNet is
    assert not any(k.startswith(("diffusion.codec.", "text_encoder.clip.")) for k in state)
    assert any(k.startswith("diffusion.unet.") for k in state)
    return state


def _edit(model_dir: Path, autocast: bool) -> Any:
    from reasonbrain.inference.pipeline import ReasonBrainPipeline

    pipe = ReasonBrainPipeline.from_pretrained(model_dir, autocast=autocast)
    image = Image.new("RGB", (256, 256), (40, 90, 200))
    out = pipe(
        image=[image],
        prompt=["What would happen if the blue box were painted?"],
        num_inference_steps=2,
        generator=torch.Generator().manual_seed(0),
    )
    assert len(out.images) == 1 and out.images[0].mode == "RGB"
    assert len(out.rationales) == 1 and isinstance(out.rationales[0], str)
    return pipe


def test_reasonbrain_fp16_files_train_save_load_edit(
    ray_session: Any,
    paper_weights_fp16: dict[str, str],
    paper_data: Path,
    tmp_path: Path,
) -> None:
    res = _train(_params(paper_weights_fp16, "reasonbrain", "bf16"), paper_data, tmp_path)
    state = _check_run(res)
    lora = [k for k in state if "lora_" in k]
    assert lora and all(k.startswith("mllm.llava.model.language_model.") for k in lora)
    assert not any(k.startswith("mllm.llava.") and "lora_" not in k for k in state)
    pipe = _edit(res.model_dir, autocast=True)  # frozen parts in bf16 under CPU autocast
    frozen = {p.dtype for n, p in pipe.model.named_parameters() if not p.requires_grad}
    trained = {p.dtype for p in pipe.model.parameters() if p.requires_grad}
    assert frozen == {torch.bfloat16} and trained == {torch.float32}
    _edit(res.model_dir, autocast=False)  # and all in fp32


def test_ip2p_train_save_load_edit(
    ray_session: Any, paper_weights: dict[str, str], paper_data: Path, tmp_path: Path
) -> None:
    res = _train(_params(paper_weights, "ip2p", "fp32"), paper_data, tmp_path)
    state = _check_run(res)
    assert "null_cond" not in state  # IP2P's null text is the encoding of "", nothing learned
    assert all(k.startswith("diffusion.unet.") for k in state)
    _edit(res.model_dir, autocast=False)
