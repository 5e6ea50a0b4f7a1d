"""Unit tests of the model's components (shapes, masks, null tokens, widths)."""

from __future__ import annotations

import pytest
import torch

from reasonbrain.errors import ConfigError
from reasonbrain.models.cme import CMEBranch
from reasonbrain.models.diffusion import SpaceToDepthCodec
from reasonbrain.models.frce import VisualCueBranch
from reasonbrain.models.id_controller import IDController
from reasonbrain.models.layers import CrossAttention, masked_attention
from reasonbrain.models.qformer import QFormer
from reasonbrain.models.region_proposer import ColorComponentsProposer
from reasonbrain.models.tokenizer import add_img_tokens, train_tokenizer
from tests.model.conftest import scene


def test_masked_attention_all_padded_row_is_zero_not_nan() -> None:
    q = torch.randn(2, 2, 3, 4)
    k = torch.randn(2, 2, 5, 4)
    mask = torch.tensor([[True, True, False, False, False], [False] * 5])
    out = masked_attention(q, k, k, mask)
    assert torch.isfinite(out).all()
    assert torch.equal(out[1], torch.zeros_like(out[1]))
    # the valid row equals attention over its valid keys only
    ref = torch.nn.functional.scaled_dot_product_attention(q[:1], k[:1, :, :2], k[:1, :, :2])
    torch.testing.assert_close(out[:1], ref)


@pytest.mark.parametrize("train", [True, False])
def test_cross_attention_all_padded_context_is_finite(train: bool) -> None:
    attn = CrossAttention(8, 2).train(train)
    out = attn(torch.randn(2, 3, 8), torch.randn(2, 4, 8), torch.zeros(2, 4, dtype=torch.bool))
    assert torch.isfinite(out).all()


def test_color_proposer_finds_objects_and_handles_blank_images() -> None:
    prop = ColorComponentsProposer(max_regions=4)
    img = torch.full((3, 64, 64), 0.2)
    img[:, 5:20, 5:20] = torch.tensor([1.0, -1.0, -1.0])[:, None, None]
    img[:, 30:40, 40:60] = torch.tensor([-1.0, -1.0, 1.0])[:, None, None]
    blank = torch.full((3, 64, 64), 0.2)
    masks, valid = prop.propose(torch.stack([img, blank]))
    assert masks.shape == (2, 4, 64, 64) and valid.shape == (2, 4)
    assert valid[0].tolist() == [True, True, False, False]
    assert not valid[1].any() and masks[1].sum() == 0
    assert masks[0, 0].sum() == 15 * 15 and masks[0, 1].sum() == 10 * 20  # largest first


def _branch() -> VisualCueBranch:
    torch.manual_seed(0)
    return VisualCueBranch(
        16, 2, 8, use_patch_branch=True, use_region_branch=True, patch_layers=1, region_layers=1
    )


@pytest.mark.parametrize("train", [True, False])
def test_zero_regions_give_finite_rv_with_only_the_null_region(train: bool) -> None:
    branch = _branch().train(train)
    patches = torch.randn(2, 64, 16)
    masks = torch.zeros(2, 4, 64, 64)
    r_v, mask = branch(patches, masks, torch.zeros(2, 4, dtype=torch.bool))
    assert r_v.shape == (2, 64 + 5, 16) and torch.isfinite(r_v).all()
    assert mask[:, 64].all() and not mask[:, 65:].any()  # null region valid, others padded


def test_region_padding_does_not_change_a_samples_tokens() -> None:
    branch = _branch().eval()
    patches = torch.randn(2, 64, 16)
    prop = ColorComponentsProposer(max_regions=4)
    images = torch.stack([scene(1, 1), scene(2, 3)])
    masks, valid = prop.propose(images)
    assert valid[0].sum() < valid[1].sum()
    together, m = branch(patches, masks, valid)
    alone, m0 = branch(patches[:1], masks[:1], valid[:1])
    torch.testing.assert_close(together[:1][m[:1]], alone[m0])
    # and the content of padded slots is irrelevant
    masks2 = masks.clone()
    masks2[0, ~valid[0]] = 1.0
    again, _ = branch(patches, masks2, valid)
    torch.testing.assert_close(again[0][m[0]], together[0][m[0]])


@pytest.mark.parametrize("train", [True, False])
def test_id_controller_with_zero_objects(train: bool) -> None:
    idc = IDController(16, 2, 1).train(train)
    r_v = torch.randn(2, 10, 16)
    r_t, mask = idc(
        torch.zeros(2, 3, 16),
        torch.zeros(2, 3, dtype=torch.bool),
        r_v,
        torch.ones(2, 10, dtype=torch.bool),
    )
    assert r_t.shape == (2, 4, 16) and torch.isfinite(r_t).all()
    assert mask[:, 0].all() and not mask[:, 1:].any()
    assert torch.equal(r_t[:, 1:], torch.zeros_like(r_t[:, 1:]))


def test_qformer_maps_guidance_to_queries() -> None:
    qf = QFormer(in_dim=32, hidden=16, out_dim=24, layers=2, heads=2, num_queries=5)
    out = qf(torch.randn(3, 7, 32))
    assert out.shape == (3, 5, 24) and out.dtype == torch.float32


def test_cme_ignores_padded_features_and_cues() -> None:
    torch.manual_seed(0)
    cme = CMEBranch(dim=16, feat_dim=12, cue_dim=8, heads=2, blocks=2, num_queries=4).eval()
    feats, cues, guidance = torch.randn(1, 6, 12), torch.randn(1, 5, 8), torch.randn(1, 3, 16)
    fmask = torch.tensor([[True] * 4 + [False] * 2])
    cmask = torch.tensor([[True] * 3 + [False] * 2])
    out = cme(feats, fmask, guidance, cues, cmask)
    assert out.shape == (1, 4, 16)
    feats2, cues2 = feats.clone(), cues.clone()
    feats2[0, 4:] = 100.0
    cues2[0, 3:] = -100.0
    torch.testing.assert_close(cme(feats2, fmask, guidance, cues2, cmask), out)


def test_space_to_depth_codec_is_lossless() -> None:
    codec = SpaceToDepthCodec(2)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    z = codec.encode(x)
    assert z.shape == (2, 12, 32, 32)
    assert torch.equal(codec.decode(z), x)


def test_tokenizer_img_tokens_follow_base_vocab() -> None:
    tok = train_tokenizer(["the red candle burns", "a blue balloon"], vocab_size=100)
    base = len(tok)
    ids = add_img_tokens(tok, 4)
    assert ids == list(range(base, base + 4))
    assert add_img_tokens(tok, 4) == ids  # idempotent
    enc = tok("the red candle", add_special_tokens=True)["input_ids"]
    assert enc[0] == tok.bos_token_id and enc[-1] == tok.eos_token_id
    assert tok.decode(enc, skip_special_tokens=True) == "the red candle"


def test_width_mismatch_fails_at_construction(tiny_model: object) -> None:
    from reasonbrain.models.presets import model_from_config

    cfg = tiny_model.config  # type: ignore[attr-defined]
    bad = cfg.model_copy(update={"unet": {**cfg.unet, "cross_attention_dim": 32}})
    with pytest.raises(ConfigError, match="cross_attention_dim 32 != conditioning width"):
        model_from_config(bad, tiny_model.tokenizer, tiny_model.tokenizer)  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="in_channels"):
        bad.model_copy(update={"unet": {**cfg.unet, "in_channels": 12}}).check()
    with pytest.raises(ConfigError, match="use_id_controller needs R_V"):
        cfg.model_copy(update={"use_patch_branch": False, "use_region_branch": False}).check()
