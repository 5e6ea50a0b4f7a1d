"""ReasonBrainModel behaviour: shapes, masks, losses, dropout, ablations, LoRA placement."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import torch

from reasonbrain.models.presets import parameter_counts
from tests.model.conftest import INSTRUCTIONS, build_tiny, inputs, make_batch


def test_condition_shapes_and_losses(tiny_model: Any) -> None:
    c = tiny_model.config
    batch = make_batch(3, model=tiny_model)
    with torch.no_grad():
        cond = tiny_model.condition(batch["src"], batch)
    assert cond.cond.shape == (3, c.num_queries + 2 * c.cme_queries, c.cond_dim)
    assert cond.cond.dtype == torch.float32
    assert tiny_model.null_condition(3).shape == cond.cond.shape
    with torch.no_grad():
        out = tiny_model(batch)
    for v in (out.loss, out.loss_mllm, out.loss_dm):
        assert v.ndim == 0 and torch.isfinite(v)


@pytest.mark.parametrize("train", [True, False])
def test_no_nan_with_zero_regions_and_zero_objects(tiny_model: Any, train: bool) -> None:
    batch = make_batch(2, blank=True)
    batch.update(tiny_model.processor(batch["instruction"], objects=[[], []]))
    assert not batch["object_mask"].any()
    _, valid = tiny_model.proposer.propose(batch["src"])
    assert not valid.any()
    tiny_model.train(train)
    try:
        out = tiny_model(batch)
        out.loss.backward()
        prompt = tiny_model.processor(batch["instruction"], objects=[[], []], inference=True)
        cond = tiny_model.condition(batch["src"], prompt, inference=True)
    finally:
        tiny_model.zero_grad(set_to_none=True)
        tiny_model.eval()
    assert torch.isfinite(out.loss) and torch.isfinite(cond.cond).all()
    for name, p in tiny_model.named_parameters():
        if p.grad is not None:
            assert torch.isfinite(p.grad).all(), name


def test_text_padding_does_not_change_guidance(tiny_model: Any) -> None:
    src = make_batch(2)["src"]
    short, long = "Show it tomorrow.", INSTRUCTIONS[0] + " And what about the blue balloon?"
    with torch.no_grad():
        alone = tiny_model.condition(src[:1], inputs(tiny_model, [short])).cond
        batched = tiny_model.condition(src, inputs(tiny_model, [short, long])).cond
        # inference: the KV-cached decoding of a short row next to a long one
        alone_i = tiny_model.condition(
            src[:1], inputs(tiny_model, [short], inference=True), inference=True
        )
        both_i = tiny_model.condition(
            src, inputs(tiny_model, [short, long], inference=True), inference=True
        )
    torch.testing.assert_close(batched[:1], alone, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(both_i.cond[:1], alone_i.cond, atol=1e-5, rtol=1e-4)
    assert both_i.rationales[0] == alone_i.rationales[0]


def test_processor_targets_are_exactly_rationale_and_img_tokens(tiny_model: Any) -> None:
    proc = tiny_model.processor
    base = tiny_model.config.base_vocab_size
    r = tiny_model.config.num_img_tokens
    instr = ["What if the red candle burned?", "Show it."]
    tokens = proc(instr)
    assert torch.equal(tokens["target_mask"], tokens["input_ids"] >= base)
    assert (tokens["target_mask"].sum(1) == r).all()
    rat = ["the red candle is a stub", ""]
    with_r = proc(instr, rat)
    rat_ids = tiny_model.tokenizer(rat[0], add_special_tokens=False)["input_ids"]
    assert with_r["target_mask"][0].sum() == len(rat_ids) + r
    assert with_r["target_mask"][1].sum() == r
    # rows are left-padded after the fixed [BOS] <image>… prefix, so every row ends with [IMG_i]
    ids, att = with_r["input_ids"], with_r["attention_mask"]
    n = len(proc.prefix)
    assert (ids[:, :n] == torch.tensor(proc.prefix)).all() and att[:, :n].all()
    assert (ids[:, -r:] == tiny_model.mllm.img_ids).all()
    instr_ids = tiny_model.tokenizer(instr[0], add_special_tokens=False)["input_ids"]
    assert ids[0][att[0]][n:].tolist() == instr_ids + rat_ids + tiny_model.mllm.img_ids.tolist()
    assert not att[1, n : ids.shape[1] - len(instr_ids)].all()  # the short row is padded
    # inference prompts stop after the instruction
    prompt = proc(instr, inference=True)
    assert "target_mask" not in prompt and prompt["input_ids"][0, -1] == instr_ids[-1]
    # a literal <image> in user text cannot add image tokens
    hack = proc(["<image> the red candle <image>"], inference=True)["input_ids"]
    assert int((hack == proc.config.image_token_id).sum()) == proc.config.n_image_tokens


def test_mllm_loss_reads_only_the_real_token_before_each_target(tiny_model: Any) -> None:
    mllm = tiny_model.mllm
    tokens = tiny_model.processor(["What if the red candle burned?", "Show it."], ["a stub", ""])
    ids, att, target = tokens["input_ids"], tokens["attention_mask"], tokens["target_mask"]
    h = torch.randn(2, ids.shape[1], mllm.hidden_size, requires_grad=True)
    mllm.mllm_loss(ids, target, att, h).backward()
    assert h.grad is not None
    used = h.grad.abs().sum(-1) > 0
    expected = torch.zeros_like(used)
    for b in range(2):
        real = att[b].nonzero().flatten().tolist()
        for prev, t in itertools.pairwise(real):
            expected[b, prev] = bool(target[b, t])
    assert torch.equal(used, expected)
    assert not (used & ~att).any()  # never a padding position
    tiny_model.zero_grad(set_to_none=True)


def test_img_states_are_gathered_by_token_id_not_position(tiny_model: Any) -> None:
    mllm = tiny_model.mllm
    ids = torch.tensor([[5, 6, *mllm.img_ids.tolist(), 0, 0], [7] * 4 + mllm.img_ids.tolist()])
    h = torch.randn(2, ids.shape[1], mllm.hidden_size)
    got = mllm.gather_img_states(ids, h)
    for b in range(2):
        for i, tid in enumerate(mllm.img_ids.tolist()):
            pos = (ids[b] == tid).nonzero().item()
            assert torch.equal(got[b, i], h[b, pos])
    # row 0's [IMG] tokens are NOT the last r positions
    assert not torch.equal(got[0], h[0, -mllm.img_ids.numel() :])
    broken = ids.clone()
    broken[0, broken[0] == mllm.img_ids[0]] = mllm.pad_id
    with pytest.raises(ValueError, match="exactly once"):
        mllm.gather_img_states(broken, h)


def test_kv_cached_decoding_gives_the_uncached_tokens(tiny_model: Any, monkeypatch: Any) -> None:
    """The KV-cached greedy decoder against the reference (every row re-encoded from scratch at
    every step, right-padded, the pre-cache algorithm), for prompts of different lengths and rows
    that stop at different steps."""
    mllm = tiny_model.mllm
    instr = [
        "Show it.",
        INSTRUCTIONS[0] + " And then for many more hours, until the night is over?",
        INSTRUCTIONS[2],
        INSTRUCTIONS[1],
    ]
    src = make_batch(4)["src"]
    prompt = inputs(tiny_model, instr, inference=True)
    with torch.no_grad():
        _, r_v, r_v_mask = tiny_model.visual_cues(src)

    def reason(use_cache: bool) -> tuple[torch.Tensor, list[list[int]]]:
        return mllm.reason(
            src,
            prompt["input_ids"],
            prompt["attention_mask"],
            r_v,
            r_v_mask,
            True,
            use_cache=use_cache,
        )

    # rows stop where a rule says so, never by the untrained model's chance: the stop tokens are
    # suppressed, then [IMG_0] made to win wherever one hidden unit is high (a deterministic
    # function of the hidden state, so both decoders see the same rule)
    original = mllm.logits
    stop_ids = [mllm.base_vocab_size, mllm.eos_id]

    def never_stops(h: torch.Tensor) -> torch.Tensor:
        out = original(h)
        out[..., stop_ids] = out.min() - 100
        return out

    seen: list[torch.Tensor] = []
    monkeypatch.setattr(mllm, "logits", lambda h: seen.append(h[..., 3]) or never_stops(h))
    reason(use_cache=False)
    threshold = float(torch.quantile(torch.stack(seen).flatten(), 0.9))

    def stopping(h: torch.Tensor) -> torch.Tensor:
        out = never_stops(h)
        out[..., mllm.base_vocab_size] += (h[..., 3] > threshold).float() * 1e4
        return out

    monkeypatch.setattr(mllm, "logits", stopping)
    cached_v, cached = reason(use_cache=True)
    plain_v, plain = reason(use_cache=False)
    assert cached == plain
    assert len({len(r) for r in plain}) > 2  # rows really stopped at different steps
    torch.testing.assert_close(cached_v, plain_v, atol=1e-5, rtol=1e-4)
    monkeypatch.setattr(mllm, "logits", never_stops)
    cached_v, cached = reason(use_cache=True)  # no early stop: every row runs to the limit
    plain_v, plain = reason(use_cache=False)
    assert cached == plain and {len(r) for r in plain} == {mllm.max_rationale_tokens}
    torch.testing.assert_close(cached_v, plain_v, atol=1e-5, rtol=1e-4)


def test_forward_needs_the_processor_tensors(tiny_model: Any) -> None:
    with pytest.raises(ValueError, match=r"collate_edits\(items, processor=model.processor\)"):
        tiny_model(make_batch(2))


def test_conditioning_dropout_rates(tiny_model: Any) -> None:
    c = tiny_model.config
    g = torch.Generator().manual_seed(0)
    n = 200_000
    text, image = tiny_model.sample_dropout(n, g)
    both = (text & image).float().mean().item()
    assert abs(both - c.cond_drop_both) < 0.004
    assert abs((text & ~image).float().mean().item() - c.cond_drop_text) < 0.004
    assert abs((image & ~text).float().mean().item() - c.cond_drop_image) < 0.004


def test_dropout_replaces_cond_with_null_and_zeroes_source(
    tiny_model: Any, monkeypatch: Any
) -> None:
    seen: dict[str, torch.Tensor] = {}

    def spy(
        tgt: torch.Tensor,
        src: torch.Tensor,
        cond: torch.Tensor,
        generator: Any = None,
        spatial: Any = None,
        weight: Any = None,
        distance: str = "mse",
        timestep_logit: Any = None,
    ) -> Any:
        seen["src"], seen["cond"], seen["spatial"] = src, cond, spatial
        return tgt.sum() * 0

    monkeypatch.setattr(tiny_model.diffusion, "loss", spy)
    cfg = tiny_model.config
    batch = make_batch(2, model=tiny_model)
    for rates, drop_t, drop_i in (
        ((1, 0, 0), True, False),
        ((0, 1, 0), False, True),
        ((0, 0, 1), True, True),
        ((0, 0, 0), False, False),
    ):
        monkeypatch.setattr(cfg, "cond_drop_text", rates[0])
        monkeypatch.setattr(cfg, "cond_drop_image", rates[1])
        monkeypatch.setattr(cfg, "cond_drop_both", rates[2])
        with torch.no_grad():
            out = tiny_model(batch)
        null = tiny_model.null_condition(2)
        assert bool(out.drop_text.all()) is drop_t and bool(out.drop_image.all()) is drop_i
        assert torch.equal(seen["cond"], null) is drop_t
        assert bool((seen["src"] == 0).all()) is drop_i
        # the grounding cue is text conditioning: dropped with the text, kept otherwise
        assert bool((seen["spatial"] == 0).all()) is drop_t


def _top(model: Any) -> set[str]:
    return {n.rsplit(".weight", 1)[0].rsplit(".bias", 1)[0] for n, _ in model.named_parameters()}


@pytest.mark.slow
def test_ablation_switches_change_the_parameter_set(tiny_model: Any) -> None:
    full = set(parameter_counts(tiny_model))
    assert {"visual_branch", "id_controller", "cme_visual", "cme_text", "text_encoder"} <= full
    no_patch = build_tiny(use_patch_branch=False)
    assert not any(".patch_blocks." in n for n in _top(no_patch))
    assert any(".patch_blocks." in n for n in _top(tiny_model))
    no_region = build_tiny(use_region_branch=False)
    assert no_region.proposer is None
    assert not any("region_" in n for n in _top(no_region))
    no_id = build_tiny(use_id_controller=False)
    assert {"id_controller", "cme_text", "text_encoder", "phrase_proj"}.isdisjoint(
        parameter_counts(no_id)
    )
    assert "cme_visual" in parameter_counts(no_id)
    no_cme = build_tiny(use_cme=False)
    assert {"cme_visual", "cme_text"}.isdisjoint(parameter_counts(no_cme))
    assert no_cme.null_cond.shape[1] == tiny_model.config.num_queries
    base = build_tiny(
        use_patch_branch=False, use_region_branch=False, use_id_controller=False, use_cme=False
    )
    assert set(parameter_counts(base)) == {
        "null_cond",
        "diffusion.unet",
        "mllm.llava",
        "mllm.new_embed",
        "mllm.new_head",
        "qformer",
        "total",
    }
    with torch.no_grad():
        out = base(make_batch(2, model=base))
    assert torch.isfinite(out.loss)


def test_ip2p_baseline_shares_the_unet_config(tiny_model: Any) -> None:
    ip2p = build_tiny(kind="ip2p")
    # the same UNet except ReasonBrain's one extra input channel (the grounding cue)
    ours = dict(tiny_model.config.unet)
    assert ours.pop("in_channels") == ip2p.config.unet["in_channels"] + 1
    assert {k: v for k, v in ip2p.config.unet.items() if k != "in_channels"} == ours
    assert set(parameter_counts(ip2p)) == {"null_cond", "diffusion.unet", "text_encoder", "total"}
    out = ip2p(make_batch(2, model=ip2p))
    assert torch.isfinite(out.loss) and out.loss_mllm == 0


def test_source_residual_predicts_x0_as_source_plus_unet_output() -> None:
    model = build_tiny(spatial_cue=False)
    diffusion = model.diffusion
    assert diffusion.source_residual and diffusion.prediction_type == "sample"
    g = torch.Generator().manual_seed(0)
    lat = diffusion.codec.encode(make_batch(2)["src"])
    noisy = torch.randn(lat.shape, generator=g)
    t = torch.tensor([10, 900])
    cond = model.null_condition(2)
    with torch.no_grad():
        raw = diffusion.unet(torch.cat([noisy, lat], 1), t, encoder_hidden_states=cond).sample
        assert torch.allclose(diffusion.predict(noisy, t, lat, cond), raw + lat)
        # the "no image" branch (zero source) stays a plain x0 prediction
        zero = torch.zeros_like(lat)
        plain = diffusion.unet(torch.cat([noisy, zero], 1), t, encoder_hidden_states=cond).sample
        assert torch.allclose(diffusion.predict(noisy, t, zero, cond), plain)


def test_source_residual_needs_x0_prediction() -> None:
    from reasonbrain.errors import ConfigError

    with pytest.raises(ConfigError, match=r"prediction_type=sample or model\.source_residual"):
        build_tiny(prediction_type="epsilon")
    plain = build_tiny(prediction_type="epsilon", source_residual=False)
    assert not plain.diffusion.source_residual


def test_grounding_cue_is_an_extra_unet_channel_trained_on_the_mask(tiny_model: Any) -> None:
    from reasonbrain.models.grounding import grounding_loss

    cfg = tiny_model.config
    assert cfg.spatial_cue and cfg.unet["in_channels"] == 2 * cfg.latent_channels + 1
    batch = make_batch(2, model=tiny_model)
    with torch.no_grad():
        out = tiny_model(batch)
        cond = tiny_model.condition(batch["src"], batch)
    assert cond.ground_logits is not None and cond.ground_logits.shape == (2, 1, 8, 8)
    expected = grounding_loss(cond.ground_logits, batch["mask"], torch.ones(2, dtype=torch.bool))
    assert out.loss_ground is not None and torch.allclose(out.loss_ground, expected)
    # no mask in the batch → no grounding loss (the cue is still computed)
    no_mask = {k: v for k, v in batch.items() if k not in ("mask", "has_mask")}
    with torch.no_grad():
        assert tiny_model(no_mask).loss_ground is None
    # baselines and ablations without the ID controller have no cue
    for kw in ({"kind": "ip2p"}, {"use_id_controller": False}, {"spatial_cue": False}):
        other = build_tiny(**kw).config
        assert not other.spatial_cue and other.unet["in_channels"] == 2 * other.latent_channels


def test_grounding_loss_and_head_edge_cases() -> None:
    from reasonbrain.models.grounding import GroundingHead, cue_map, grounding_loss

    mask = torch.zeros(2, 1, 16, 16)
    mask[:, :, :8, :8] = 1  # top-left cell of a 2×2 grid
    perfect = torch.full((2, 1, 2, 2), -30.0)
    perfect[:, :, 0, 0] = 30.0
    keep = torch.tensor([True, False])
    assert grounding_loss(perfect, mask, keep) < 1e-6
    wrong = -perfect
    assert grounding_loss(wrong, mask, keep) > 10
    # a sample that does not count changes nothing; none counting gives 0
    mixed = torch.stack([perfect[0], wrong[1]])
    assert torch.allclose(grounding_loss(mixed, mask, keep), grounding_loss(perfect, mask, keep))
    assert grounding_loss(wrong, mask, torch.zeros(2, dtype=torch.bool)) == 0
    # an instruction naming no object gives no cue anywhere
    head = GroundingHead(8)
    logits = head(
        torch.randn(2, 4, 8), torch.randn(2, 3, 8), torch.tensor([[True] * 3, [False] * 3])
    )
    cue = cue_map(logits, 6)
    assert cue.shape == (2, 1, 6, 6) and cue[1].max() < 1e-6 and cue[0].min() > 0


def test_lora_lands_only_in_the_language_model() -> None:
    model = build_tiny(use_rationale=False)
    assert not any("lora_" in n for n, _ in model.named_parameters())
    from reasonbrain.models.presets import model_from_config

    cfg = model.config.model_copy(update={"lora_rank": 4})
    lora = model_from_config(cfg, model.tokenizer, model.text_tokenizer)
    names = [n for n, _ in lora.named_parameters() if "lora_" in n]
    assert names and all(n.startswith("mllm.llava.model.language_model.") for n in names)
    assert not any("vision_tower" in n or "multi_modal_projector" in n for n in names)
    for n, p in lora.mllm.llava.named_parameters():
        assert p.requires_grad == ("lora_" in n), n
    assert lora.mllm.new_embed.weight.requires_grad  # new tokens stay trainable
    groups = lora.parameter_groups()
    assert len(groups["lora"]) == len(names) and groups["diffusion"] and groups["new_modules"]
    assert (
        "mllm.llava.model.language_model.layers.0.self_attn.q_proj.lora_A.default.weight"
        in lora.checkpoint_state()
    )


def test_edit_weight_map_marks_moved_positions_from_the_undropped_source() -> None:
    from reasonbrain.models.diffusion import EDIT_THRESHOLD, edit_weight_map

    src = torch.zeros(2, 12, 4, 4)
    tgt = src.clone()
    tgt[0, 5, 1, 2] = 0.5  # one channel of one position moves
    tgt[1, :, 0, 0] = EDIT_THRESHOLD / 2  # below the threshold: bf16 / codec noise, not an edit
    w = edit_weight_map(src, tgt, 9.0)
    assert w.shape == (2, 1, 4, 4)
    assert w[0, 0, 1, 2] == 10.0 and w.sum() == 2 * 16 + 9.0
    assert torch.equal(edit_weight_map(src, src, 9.0), torch.ones(2, 1, 4, 4))


def _dm_loss_inputs(model: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source and target latents of a 2-sample batch, and the null condition, for L_DM."""
    batch = make_batch(2)
    codec = model.diffusion.codec
    return codec.encode(batch["src"]), codec.encode(batch["tgt"]), model.null_condition(2)


def test_edit_weighted_loss_is_the_weighted_mean_and_reaches_the_training_loss() -> None:
    model = build_tiny(spatial_cue=False, edit_loss_weight=10.0)
    assert model.config.edit_loss_weight == 10.0
    diffusion = model.diffusion
    src, tgt, cond = _dm_loss_inputs(model)
    weight = torch.ones(2, 1, *src.shape[-2:])
    weight[:, :, :2] = 5.0
    torch.manual_seed(0)
    with torch.no_grad():
        weighted = diffusion.loss(tgt, src, cond, weight=weight)
        torch.manual_seed(0)
        plain = diffusion.loss(tgt, src, cond)
        torch.manual_seed(0)
        ones = diffusion.loss(tgt, src, cond, weight=torch.ones_like(weight))
    assert torch.allclose(ones, plain) and not torch.allclose(weighted, plain)
    # the model's forward pass weights L_DM: the same seed, weights on vs off → different L_DM
    batch = make_batch(2, model=model)
    with torch.no_grad():
        torch.manual_seed(1)
        on = model(batch).loss_dm
        model.config.edit_loss_weight = 0.0
        torch.manual_seed(1)
        off = model(batch).loss_dm
    assert not torch.allclose(on, off)


def test_pooled_cond_embedding_feeds_the_instruction_to_every_resnet_block(tmp_path: Any) -> None:
    """model.pooled_cond_embedding: diffusers' TextTimeEmbedding pools the conditioning into the
    timestep embedding; the prediction then depends on the condition even with cross-attention
    cut, and the embedding survives save/load."""
    from reasonbrain.models.checkpoint import from_pretrained

    model = build_tiny(spatial_cue=False, pooled_cond_embedding=True).eval()
    unet = model.diffusion.unet
    assert unet.config.addition_embed_type == "text" and unet.add_embedding is not None
    assert getattr(build_tiny(spatial_cue=False).diffusion.unet, "add_embedding", None) is None
    for name, module in unet.named_modules():  # cut every cross-attention: attn2 returns zeros
        if name.endswith("attn2"):
            module.register_forward_hook(lambda m, args, out: torch.zeros_like(out))
    noisy, src = torch.randn(1, 12, 32, 32), torch.randn(1, 12, 32, 32)
    t = torch.tensor([500])
    cond = torch.randn(1, 8, 64)
    with torch.no_grad():
        a = model.diffusion.predict(noisy, t, src, cond)
        b = model.diffusion.predict(noisy, t, src, cond * 2 + 1)
    assert not torch.allclose(a, b)
    model.save_pretrained(tmp_path / "m", params_hash="test", data_version="none")
    loaded = from_pretrained(tmp_path / "m")
    assert torch.equal(
        loaded.diffusion.unet.add_embedding.proj.weight, unet.add_embedding.proj.weight
    )


def test_logit_normal_timesteps_favour_noisy_steps_and_reach_the_model() -> None:
    """model.timestep_logit_mean: L_DM's timesteps follow SD3's logit-normal density (mean 3 →
    almost all above 800 of 1000); null keeps DDPM's uniform draw; the forward pass uses it."""
    model = build_tiny(spatial_cue=False, timestep_logit_mean=3.0, timestep_logit_std=0.5)
    diffusion = model.diffusion
    seen: list[torch.Tensor] = []
    diffusion.unet.register_forward_hook(lambda m, args, out: seen.append(args[1].clone()))
    src, tgt, cond = _dm_loss_inputs(model)
    rep = [x.repeat_interleave(64, dim=0) for x in (tgt, src, cond)]
    with torch.no_grad():
        diffusion.loss(*rep, timestep_logit=(3.0, 0.5))
        diffusion.loss(*rep)
        model(make_batch(2, model=model))
    skewed, uniform, forward = seen
    assert skewed.min() >= 800 and skewed.max() <= 999
    assert uniform.min() < 300 and uniform.max() > 700  # 128 uniform draws span the range
    assert forward.min() >= 700


def test_unet_width_and_depth_are_params_and_survive_save_load(tmp_path: Any) -> None:
    """model.unet_channels / model.unet_layers_per_block size the tiny UNet (null = the preset's
    [32, 64, 128] × 1); a saved wider model loads back into the same architecture."""
    from reasonbrain.models.checkpoint import from_pretrained

    default = build_tiny(spatial_cue=False).diffusion.unet.config
    assert list(default.block_out_channels) == [32, 64, 128] and default.layers_per_block == 1
    model = build_tiny(spatial_cue=False, unet_channels=[64, 64, 128], unet_layers_per_block=2)
    unet = model.diffusion.unet
    assert list(unet.config.block_out_channels) == [64, 64, 128]
    assert len(unet.down_blocks[0].resnets) == 2 and unet.conv_in.out_channels == 64
    model.save_pretrained(tmp_path / "m", params_hash="test", data_version="none")
    loaded = from_pretrained(tmp_path / "m").diffusion.unet
    assert list(loaded.config.block_out_channels) == [64, 64, 128]
    assert torch.equal(loaded.conv_in.weight, unet.conv_in.weight)


def test_l1_dm_loss_is_the_weighted_mean_absolute_error_and_reaches_the_model() -> None:
    """model.dm_loss=l1: the same noise and timesteps give mean |error| instead of mean error²
    (weighted alike), and the model's forward pass uses it."""
    model = build_tiny(spatial_cue=False, dm_loss="l1")
    assert model.config.dm_loss == "l1"
    diffusion = model.diffusion
    src, tgt, cond = _dm_loss_inputs(model)
    weight = torch.ones(2, 1, *src.shape[-2:])
    weight[:, :, :3] = 4.0
    captured: list[torch.Tensor] = []
    original = diffusion.predict

    def spy(*args: Any, **kwargs: Any) -> torch.Tensor:
        captured.append(original(*args, **kwargs))
        return captured[-1]

    diffusion.predict = spy  # type: ignore[method-assign]
    with torch.no_grad():
        torch.manual_seed(0)
        l1 = diffusion.loss(tgt, src, cond, weight=weight, distance="l1")
        torch.manual_seed(0)
        l2 = diffusion.loss(tgt, src, cond, weight=weight)
    err = captured[0].float() - tgt.float()  # x0 prediction: the target is the clean latent
    w = weight.expand_as(err)
    assert torch.allclose(captured[0], captured[1])
    assert torch.allclose(l1, (err.abs() * w).sum() / w.sum())
    assert torch.allclose(l2, (err.square() * w).sum() / w.sum())
    with pytest.raises(ValueError, match="distance"):
        diffusion.loss(tgt, src, cond, distance="huber")
    del diffusion.predict
    batch = make_batch(2, model=model)
    with torch.no_grad():
        torch.manual_seed(1)
        on = model(batch).loss_dm
        model.config.dm_loss = "mse"
        torch.manual_seed(1)
        off = model(batch).loss_dm
    assert not torch.allclose(on, off)
