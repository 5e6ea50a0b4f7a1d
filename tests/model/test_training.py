"""A short overfit run: the losses fall and gradients flow through the whole reasoning path."""

from __future__ import annotations

import pytest
import torch

from tests.model.conftest import build_tiny, make_batch


@pytest.mark.slow
def test_overfit_four_samples_and_gradients_reach_every_branch() -> None:
    model = build_tiny(cond_drop_text=0.0, cond_drop_image=0.0, cond_drop_both=0.0).train()
    batch = make_batch(4, model=model)
    groups = model.parameter_groups()
    assert groups["lora"] == [] and groups["new_modules"] and groups["diffusion"]
    n_trainable = sum(1 for p in model.parameters() if p.requires_grad)
    assert sum(len(g) for g in groups.values()) == n_trainable
    opt = torch.optim.AdamW([{"params": g} for g in groups.values() if g], lr=2e-3)
    g = torch.Generator().manual_seed(0)

    out = model(batch, generator=g)
    out.loss.backward()
    for prefix in (
        "qformer",
        "cme_visual",
        "cme_text",
        "visual_branch",
        "id_controller",
        "phrase_proj",
        "mllm.cue_proj",
        "mllm.new_embed",
        "image_encoder",
    ):
        grads = [p.grad for n, p in model.named_parameters() if n.startswith(prefix)]
        total = sum(float(x.abs().sum()) for x in grads if x is not None)
        assert total > 0, f"no gradient reaches {prefix}"
    opt.zero_grad()

    first_mllm, first_dm, last_mllm, last_dm = [], [], [], []
    for step in range(40):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(batch, generator=g)
        out.loss.backward()
        opt.step()
        opt.zero_grad()
        (first_mllm if step < 5 else last_mllm if step >= 35 else []).append(float(out.loss_mllm))
        (first_dm if step < 5 else last_dm if step >= 35 else []).append(float(out.loss_dm))
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    assert mean(last_mllm) < 0.3 * mean(first_mllm)
    assert mean(last_dm) < 0.6 * mean(first_dm)
