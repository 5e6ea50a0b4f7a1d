"""``train.gradient_checkpointing``: the library switches are really on (LLaVA's language model,
the CLIP towers, the UNet), activations are recomputed in the backward pass, and the gradients are
those of the run without it."""

from __future__ import annotations

import functools
from typing import Any

import pytest
import torch

from tests.model.conftest import build_tiny, make_batch


def _grads(model: Any, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    out = model(batch, generator=torch.Generator().manual_seed(1))
    out.loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.slow
def test_gradient_checkpointing_recomputes_and_keeps_the_gradients(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch.utils.checkpoint as ckpt

    model = build_tiny(
        image_size=32, cond_drop_text=0.0, cond_drop_image=0.0, cond_drop_both=0.0
    ).train()
    batch = make_batch(2, model=model)
    batch["src"] = torch.nn.functional.interpolate(batch["src"], size=32)
    batch["tgt"] = torch.nn.functional.interpolate(batch["tgt"], size=32)
    batch["mask"] = torch.nn.functional.interpolate(batch["mask"], size=32)
    torch.manual_seed(0)
    plain = _grads(model, batch)

    calls: list[str] = []
    real = ckpt.checkpoint

    def counting(fn: Any, *args: Any, **kwargs: Any) -> Any:
        f = fn
        while isinstance(f, functools.partial):
            f = f.func
        owner = getattr(f, "__self__", None)
        calls.append(type(owner).__name__ if owner is not None else getattr(f, "__qualname__", ""))
        return real(fn, *args, **kwargs)

    import transformers.modeling_utils as hf

    monkeypatch.setattr(ckpt, "checkpoint", counting)  # diffusers calls it from here
    monkeypatch.setattr(hf, "checkpoint", counting)  # transformers imported the name
    done = model.enable_gradient_checkpointing()
    assert {"mllm.llava", "diffusion.unet", "image_encoder.clip"} <= set(done)
    assert model.mllm.llava.model.language_model.gradient_checkpointing
    assert any(getattr(m, "gradient_checkpointing", False) for m in model.diffusion.unet.modules())
    torch.manual_seed(0)
    recomputed = _grads(model, batch)
    # LLaVA's decoder layers and the UNet's blocks ran under torch.utils.checkpoint
    assert any("Llama" in c for c in calls), calls
    assert any(c in ("ResnetBlock2D", "BasicTransformerBlock") for c in calls), calls
    assert plain.keys() == recomputed.keys()
    for name, g in plain.items():
        assert torch.allclose(g, recomputed[name], rtol=1e-5, atol=1e-7), name
