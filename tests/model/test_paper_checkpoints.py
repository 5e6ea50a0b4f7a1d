"""The paper preset on real-format checkpoint files (no Ray): widths read from the files, the
dtype policy on fp16 files, reloading without reading the pretrained UNet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from reasonbrain.models.precision import frozen_dtype
from tests.model.paper_fixtures import paper_batch, paper_model_params


def _build(weights: dict[str, str], dtype: torch.dtype = torch.float32, **kw: Any) -> Any:
    from reasonbrain.models.presets import build_model

    torch.manual_seed(0)
    return build_model(paper_model_params(weights, **kw), objects=["red candle"], dtype=dtype)


def _step(model: Any, autocast: bool) -> dict[str, float]:
    """One AdamW step (the loop's optimiser and param groups); returns the losses."""
    from reasonbrain.config import TrainParams
    from reasonbrain.training.optim import build_optimizer

    model.train()
    opt = build_optimizer(model, TrainParams(lr=1e-3))
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out = model(paper_batch(2, model=model), generator=torch.Generator().manual_seed(0))
    out.loss.backward()
    opt.step()
    return {"loss": float(out.loss.detach()), "mllm": float(out.loss_mllm)}


def _check_null_is_the_empty_prompt_encoding(model: Any) -> None:
    """ReasonBrain's learned null starts as the encoding of "" (its last row repeated)."""
    from reasonbrain.models.encoders import TextEncoder

    c = model.config
    enc = TextEncoder(
        c.text, model.text_tokenizer, c.max_text_tokens, model.text_encoder.clip, False
    )
    with torch.no_grad():
        tokens, _, _ = enc(*enc.tokenize([""]))
    null = model.null_cond.detach()[0]
    n = tokens.shape[1]
    assert null.shape[0] > n and torch.allclose(null[:n], tokens[0])
    assert torch.allclose(null[n:], tokens[0, -1:].expand(null.shape[0] - n, -1))


@pytest.fixture(scope="module")
def sizes_b(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from reasonbrain.models.tiny_weights import save_tiny_paper_weights

    root = tmp_path_factory.mktemp("paper-weights-b")
    return {k: str(v) for k, v in save_tiny_paper_weights(root, "b", seed=1).items()}


@pytest.mark.slow
def test_widths_come_from_the_loaded_checkpoints(
    paper_weights: dict[str, str], sizes_b: dict[str, str]
) -> None:
    """Two different tiny families build and train with no code change (as LLaVA-13B would)."""
    from reasonbrain.models.tiny_weights import TINY_SIZES

    for weights, s in ((paper_weights, TINY_SIZES["a"]), (sizes_b, TINY_SIZES["b"])):
        model = _build(weights)
        c = model.config
        assert (c.llm_dim, c.frce_dim, c.cond_dim) == (s.llm_hidden, s.vision_hidden, s.unet_cross)
        assert c.qformer_dim == s.unet_cross and c.num_queries == c.max_text_tokens == 77
        assert model.image_encoder.grid == s.vision_image // s.vision_patch
        assert model.mllm.n_image_tokens == (s.vision_image // s.vision_patch) ** 2
        assert c.vision["num_hidden_layers"] == s.vision_layers and c.feature_layers[-1] == -1
        assert c.unet["block_out_channels"] == list(s.unet_channels)
        assert c.scheduler["steps_offset"] == 1  # the repo's own scheduler config
        _check_null_is_the_empty_prompt_encoding(model)
        losses = _step(model, autocast=False)
        assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_fp16_checkpoint_files_train_finite(
    paper_weights_fp16: dict[str, str], precision: str
) -> None:
    """LLaVA-1.5 ships fp16: frozen parts land in the compute dtype, trainables in fp32, and a
    step (AdamW eps 1e-8, which is 0 in fp16) leaves every weight finite."""
    from transformers import LlavaForConditionalGeneration

    raw = LlavaForConditionalGeneration.from_pretrained(paper_weights_fp16["llava"])
    assert raw.dtype == torch.float16  # the files are fp16: what transformers loads by default
    dtype = frozen_dtype(precision, "cpu")
    model = _build(paper_weights_fp16, dtype)
    frozen = {p.dtype for p in model.parameters() if not p.requires_grad}
    trained = {p.dtype for p in model.parameters() if p.requires_grad}
    assert frozen == {dtype} and trained == {torch.float32}
    assert any(n for n, p in model.named_parameters() if "lora_" in n and p.requires_grad)
    for _ in range(2):
        losses = _step(model, autocast=dtype == torch.bfloat16)
        assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    bad = [n for n, p in model.named_parameters() if not torch.isfinite(p).all()]
    assert bad == []
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert any(float(p.detach().abs().sum()) > 0 for p in lora_b)  # LoRA actually moved


@pytest.mark.slow
def test_reload_builds_the_unet_from_the_checkpoint_without_reading_the_pretrained_one(
    paper_weights: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from diffusers import UNet2DConditionModel

    from reasonbrain.models.checkpoint import from_pretrained

    model = _build(paper_weights, kind="ip2p")
    with torch.no_grad():
        for p in model.diffusion.unet.parameters():
            p.add_(0.01)  # "trained": differs from the pretrained UNet
    model.save_pretrained(tmp_path / "m")

    def no_unet_reads(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the pretrained UNet was read on reload")

    monkeypatch.setattr(UNet2DConditionModel, "from_pretrained", no_unet_reads)
    loaded = from_pretrained(tmp_path / "m")
    want = model.diffusion.unet.state_dict()
    got = loaded.diffusion.unet.state_dict()
    assert set(got) == set(want) and all(torch.equal(got[k], want[k]) for k in want)
    assert not any(t.is_meta for t in [*loaded.parameters(), *loaded.buffers()])


def test_a_directory_of_another_part_is_an_error_not_a_random_init(
    paper_weights: dict[str, str],
) -> None:
    """transformers would random-initialise the weights a checkpoint lacks, with a warning."""
    from reasonbrain.errors import CheckpointError
    from reasonbrain.models.presets import build_model

    wrong = {**paper_weights, "clip": paper_weights["sam"]}  # a SAM directory given as CLIP
    with pytest.raises(CheckpointError, match=r"the 'clip' checkpoint lacks \d+ weights of CLIPV"):
        build_model(paper_model_params(wrong))


def test_image_size_must_fit_the_loaded_unet_and_vae(paper_weights: dict[str, str]) -> None:
    from reasonbrain.errors import ConfigError

    cfg = _build(paper_weights, kind="ip2p").config  # VAE factor 8 × 1 UNet downsampling
    cfg.model_copy(update={"image_size": 272}).check()  # 272 = 17 × 16 fits this UNet
    unet = {**cfg.unet, "down_block_types": ["DownBlock2D"] * 3 + ["CrossAttnDownBlock2D"]}
    with pytest.raises(ConfigError, match="image_size 272 is not a multiple of 64"):
        cfg.model_copy(update={"image_size": 272, "unet": unet}).check()
