"""The paper preset: wiring and parameter counts on the meta device; offline weight loading."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reasonbrain.config import ModelParams, Settings
from reasonbrain.errors import MissingWeightsError
from reasonbrain.models.presets import build_model, build_paper_on_meta, parameter_counts


@pytest.fixture(scope="module")
def paper() -> Any:
    return build_paper_on_meta()


@pytest.mark.slow
def test_paper_builds_on_meta_with_plausible_counts(paper: Any) -> None:
    counts = parameter_counts(paper)
    assert {p.device.type for p in paper.parameters()} == {"meta"}
    c = paper.config
    assert (c.num_img_tokens, c.qformer_layers, c.num_queries, c.cme_blocks) == (32, 6, 77, 5)
    assert 6.9e9 < counts["mllm.llava"] < 7.2e9  # LLaVA-1.5-7B (+ LoRA)
    assert 0.85e9 < counts["diffusion.unet"] < 0.87e9  # SD-1.5 UNet with 8 input channels
    assert 0.08e9 < counts["diffusion.codec"] < 0.09e9  # SD VAE
    assert 0.30e9 < counts["image_encoder"] < 0.31e9  # CLIP ViT-L/14 vision + projection
    assert 0.12e9 < counts["text_encoder"] < 0.13e9  # CLIP ViT-L/14 text
    assert 0.6e9 < counts["proposer"] < 0.7e9  # SAM ViT-H
    assert paper.diffusion.unet.config.in_channels == 8
    assert paper.null_cond.shape[1:] == (77 + 2 * 32, 768)


@pytest.mark.slow
def test_paper_lora_only_in_language_model_and_rank_8(paper: Any) -> None:
    lora = {n: p for n, p in paper.named_parameters() if "lora_" in n}
    assert lora and all(n.startswith("mllm.llava.model.language_model.") for n in lora)
    # r=8 on q,k,v,o of 32 layers: 32 · 4 · (4096·8 + 8·4096)
    assert sum(p.numel() for p in lora.values()) == 32 * 4 * 2 * 4096 * 8
    frozen = [
        n for n, p in paper.mllm.llava.named_parameters() if p.requires_grad and "lora_" not in n
    ]
    assert frozen == []
    saved = paper.checkpoint_state()
    assert not any(k.startswith("mllm.llava.") and "lora_" not in k for k in saved)
    assert any(k.startswith("diffusion.unet.") for k in saved)  # the trained UNet is saved
    assert not any(
        k.startswith(("image_encoder.clip.", "diffusion.codec.", "proposer.")) for k in saved
    )


def test_missing_weights_offline_name_the_component(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    settings = Settings(weights_dir=tmp_path, allow_network=False)
    with pytest.raises(MissingWeightsError, match="'clip' not found") as err:
        build_model(ModelParams(preset="paper"), settings=settings)
    assert "openai/clip-vit-large-patch14" in str(err.value)
    local = tmp_path / "my-clip"
    local.mkdir()
    with pytest.raises(MissingWeightsError, match="my-clip"):
        build_model(
            ModelParams(preset="paper", weights={"clip": str(local)}),  # type: ignore[arg-type]
            settings=settings,
        )
