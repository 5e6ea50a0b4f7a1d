"""The ``ip2p + grounding cue`` baseline (issue 13, fair comparisons): InstructPix2Pix conditioning
plus exactly ReasonBrain's grounding head, mask supervision and UNet channel — and nothing of the
reasoning path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image
from pydantic import ValidationError

from reasonbrain.config import ModelParams
from reasonbrain.models.grounding import GroundingHead, grounding_loss
from reasonbrain.models.presets import parameter_counts
from tests.model.conftest import build_tiny, make_batch


@pytest.fixture(scope="module")
def cue_model() -> Any:
    return build_tiny(kind="ip2p", ip2p_spatial_cue=True)


def test_it_is_ip2p_with_reasonbrains_cue_and_no_reasoning_path(
    cue_model: Any, tiny_model: Any
) -> None:
    cfg = cue_model.config
    assert cfg.kind == "ip2p" and cfg.spatial_cue
    assert cfg.unet == tiny_model.config.unet  # the same UNet, cue channel included
    assert set(parameter_counts(cue_model)) == {
        "null_cond",
        "diffusion.unet",
        "text_encoder",
        "image_encoder",
        "phrase_proj",
        "grounding",
        "total",
    }
    # the same head, the same patch encoder architecture as ReasonBrain's
    assert isinstance(cue_model.grounding, GroundingHead)
    for name in ("grounding", "image_encoder"):
        ours = {k: v.shape for k, v in getattr(tiny_model, name).state_dict().items()}
        assert {k: v.shape for k, v in getattr(cue_model, name).state_dict().items()} == ours
    assert cue_model.processor.config.objects  # the processor extracts phrases to ground
    # plain ip2p stays plain whatever spatial_cue (ReasonBrain's switch) says
    plain = build_tiny(kind="ip2p", spatial_cue=True).config
    assert not plain.spatial_cue and plain.unet["in_channels"] == cfg.unet["in_channels"] - 1


def test_conditioning_is_the_instruction_and_the_cue_is_trained_on_the_mask(
    cue_model: Any,
) -> None:
    batch = make_batch(3, model=cue_model)
    cue_model.train()
    out = cue_model(batch)
    out.loss.backward()
    for prefix in ("grounding", "image_encoder", "phrase_proj", "text_encoder", "diffusion"):
        grads = [p.grad for n, p in cue_model.named_parameters() if n.startswith(prefix)]
        assert sum(float(g.abs().sum()) for g in grads if g is not None) > 0, prefix
    cue_model.zero_grad(set_to_none=True)
    cue_model.eval()
    with torch.no_grad():
        cond = cue_model.condition(batch["src"], batch)
        tokens, _, _ = cue_model.text_encoder(batch["text_input_ids"], batch["text_attention_mask"])
        again = cue_model(batch)
    assert torch.equal(cond.cond, tokens)  # the UNet reads the instruction tokens alone
    assert cond.ground_logits is not None and cond.ground_logits.shape == (3, 1, 8, 8)
    keep = batch["has_mask"] & cond.ground_valid
    expected = grounding_loss(cond.ground_logits, batch["mask"], keep)
    assert again.loss_ground is not None and torch.allclose(again.loss_ground, expected)


def test_trains_on_the_training_loops_batches(cue_model: Any, tmp_path: Path) -> None:
    """The loop's data path (dataset → processor → collate) feeds the cue its phrases and masks."""
    from reasonbrain.config import SynthParams
    from reasonbrain.data.synth.generate import generate_dataset
    from reasonbrain.data.torch_dataset import EditDataset
    from reasonbrain.training.data import BatchSource

    root = tmp_path / "data"
    generate_dataset(
        root, SynthParams(n_train=4, n_val=0, n_test=0, size=64, seed=2, workers=1), progress=False
    )
    source = BatchSource(EditDataset(root, "train", 64), cue_model.processor)
    batch = source.batch([0, 1, 2, 3])
    assert batch["object_mask"].any(dim=1).all() and batch["has_mask"].all()
    cue_model.train()
    with torch.no_grad():
        out = cue_model(batch)
    cue_model.eval()
    assert out.loss_ground is not None and torch.isfinite(out.loss) and out.loss_ground > 0


def test_save_load_and_edit(cue_model: Any, tmp_path: Path) -> None:
    from reasonbrain.inference import ReasonBrainPipeline
    from reasonbrain.models.checkpoint import from_pretrained

    cue_model.eval()
    cue_model.save_pretrained(tmp_path / "m")
    loaded = from_pretrained(tmp_path / "m").eval()
    batch = make_batch(2, model=loaded)
    with torch.no_grad():
        a = cue_model.condition(batch["src"], batch).ground_logits
        b = loaded.condition(batch["src"], batch).ground_logits
    assert a is not None and b is not None and torch.equal(a, b)
    pipe = ReasonBrainPipeline(loaded)
    img = Image.new("RGB", (64, 64), (120, 40, 40))
    out = pipe(
        image=[img],
        prompt=["What if the red candle on the left burned for hours?"],
        num_inference_steps=2,
        generator=torch.Generator().manual_seed(0),
    )
    assert out.images[0].size == (64, 64)


def test_the_paper_preset_refuses_it() -> None:
    with pytest.raises(ValidationError, match="ip2p_spatial_cue"):
        ModelParams(preset="paper", kind="ip2p", ip2p_spatial_cue=True)
