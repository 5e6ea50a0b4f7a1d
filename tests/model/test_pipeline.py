"""ReasonBrainPipeline: determinism, batching, reasoning once per edit, CLI edit end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from reasonbrain.data.torch_dataset import to_pil
from reasonbrain.inference.pipeline import ReasonBrainPipeline, combine_guidance
from tests.model.conftest import make_batch


def _edit(
    pipe: ReasonBrainPipeline, seed: int, steps: int = 3, scales: tuple[float, float] = (2.0, 1.5)
) -> Any:
    batch = make_batch(2)
    return pipe(
        image=[to_pil(x) for x in batch["src"]],
        prompt=batch["instruction"],
        num_inference_steps=steps,
        guidance_scale=scales[0],
        image_guidance_scale=scales[1],
        generator=torch.Generator().manual_seed(seed),
    )


def test_deterministic_for_a_generator_and_batched(tiny_model: Any) -> None:
    pipe = ReasonBrainPipeline(tiny_model)
    a, b, c = _edit(pipe, 0), _edit(pipe, 0), _edit(pipe, 1)
    assert len(a.images) == 2 and a.images[0].size == (64, 64) and a.images[0].mode == "RGB"
    assert [i.tobytes() for i in a.images] == [i.tobytes() for i in b.images]
    assert [i.tobytes() for i in a.images] != [i.tobytes() for i in c.images]
    assert len(a.rationales) == 2 and all(isinstance(r, str) for r in a.rationales)
    assert a.rationales == b.rationales


def test_per_image_generators_make_outputs_independent_of_the_batch(tiny_model: Any) -> None:
    pipe = ReasonBrainPipeline(tiny_model)
    batch = make_batch(2)
    images = [to_pil(x) for x in batch["src"]]

    def gen(seed: int) -> torch.Generator:
        return torch.Generator().manual_seed(seed)

    texts = batch["instruction"]
    both = pipe(image=images, prompt=texts, num_inference_steps=3, generator=[gen(7), gen(8)])
    alone = pipe(image=images[1:], prompt=texts[1:], num_inference_steps=3, generator=[gen(8)])
    x = torch.tensor(list(both.images[1].getdata()), dtype=torch.float)
    y = torch.tensor(list(alone.images[0].getdata()), dtype=torch.float)
    assert (x - y).abs().max() <= 2  # same sample, same seed: equal up to batched-kernel rounding
    with pytest.raises(ValueError, match="generators"):
        pipe(image=images, prompt=texts, num_inference_steps=1, generator=[gen(1)])


def test_step_callback_sees_every_step_and_can_replace_the_latents(tiny_model: Any) -> None:
    """diffusers' ``callback_on_step_end``: one call per step with the step index, the timestep
    and the guided x0 prediction; the last prediction is the output (DDIM's final step lands on
    it); latents it returns replace the pipeline's."""
    pipe = ReasonBrainPipeline(tiny_model)
    seen: list[tuple[int, int, torch.Tensor]] = []

    def record(p: Any, i: int, t: torch.Tensor, tensors: dict[str, torch.Tensor]) -> None:
        assert p is pipe and set(tensors) == {"latents", "pred_original_sample"}
        seen.append((i, int(t), tensors["pred_original_sample"].clone()))

    batch = make_batch(2)
    kw: dict[str, Any] = {
        "image": [to_pil(x) for x in batch["src"]],
        "prompt": batch["instruction"],
        "num_inference_steps": 3,
        "output_size": "model",
    }
    plain = pipe(**kw, generator=torch.Generator().manual_seed(0))
    watched = pipe(**kw, generator=torch.Generator().manual_seed(0), callback_on_step_end=record)
    assert [i.tobytes() for i in plain.images] == [i.tobytes() for i in watched.images]
    assert [i for i, _, _ in seen] == [0, 1, 2]
    assert [t for _, t, _ in seen] == sorted((t for _, t, _ in seen), reverse=True)
    last = tiny_model.diffusion.codec.decode(seen[-1][2]).clamp(-1, 1)
    assert [to_pil(x).tobytes() for x in last] == [i.tobytes() for i in plain.images]

    def zero(p: Any, i: int, t: torch.Tensor, tensors: dict[str, torch.Tensor]) -> Any:
        return {"latents": torch.zeros_like(tensors["latents"])}

    zeroed = pipe(**kw, generator=torch.Generator().manual_seed(0), callback_on_step_end=zero)
    grey = to_pil(tiny_model.diffusion.codec.decode(torch.zeros_like(seen[-1][2]))[0])
    assert zeroed.images[0].tobytes() == grey.tobytes() != plain.images[0].tobytes()


def test_reasoning_path_runs_once_per_edit(tiny_model: Any) -> None:
    calls = {"qformer": 0, "mllm_reason": 0, "cme": 0, "image_encoder": 0, "unet": 0}
    hooks = [
        tiny_model.qformer.register_forward_hook(
            lambda *_: calls.__setitem__("qformer", calls["qformer"] + 1)
        ),
        tiny_model.cme_visual.register_forward_hook(
            lambda *_: calls.__setitem__("cme", calls["cme"] + 1)
        ),
        tiny_model.image_encoder.register_forward_hook(
            lambda *_: calls.__setitem__("image_encoder", calls["image_encoder"] + 1)
        ),
        tiny_model.diffusion.unet.register_forward_hook(
            lambda *_: calls.__setitem__("unet", calls["unet"] + 1)
        ),
    ]
    original = tiny_model.mllm.reason

    def counted(*a: Any, **k: Any) -> Any:
        calls["mllm_reason"] += 1
        return original(*a, **k)

    tiny_model.mllm.reason = counted
    try:
        _edit(ReasonBrainPipeline(tiny_model), 0, steps=5)
    finally:
        del tiny_model.mllm.reason
        for h in hooks:
            h.remove()
    assert calls == {"qformer": 1, "mllm_reason": 1, "cme": 1, "image_encoder": 1, "unet": 5}


def test_guidance_uses_the_trained_null_branches(tiny_model: Any, monkeypatch: Any) -> None:
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    original = tiny_model.diffusion.predict

    def spy(noisy: Any, t: Any, src_lat: Any, cond: Any, spatial: Any = None) -> Any:
        seen.append((src_lat, cond, spatial))
        return original(noisy, t, src_lat, cond, spatial)

    monkeypatch.setattr(tiny_model.diffusion, "predict", spy)
    _edit(ReasonBrainPipeline(tiny_model), 0, steps=1)
    src_lat, cond, spatial = seen[0]
    b = 2
    null = tiny_model.null_condition(b)
    assert torch.equal(cond[b : 2 * b], null) and torch.equal(cond[2 * b :], null)
    assert not torch.equal(cond[:b], null)
    assert torch.equal(src_lat[:b], src_lat[b : 2 * b]) and not src_lat[2 * b :].any()
    # the grounding cue goes with the text: only the full branch has it
    assert spatial[:b].any() and not spatial[b:].any()


def test_guidance_from_fewer_branches_equals_the_three_way_formula() -> None:
    g = torch.Generator().manual_seed(0)
    full, image_only, uncond = (torch.randn(2, 3, 4, 4, generator=g) for _ in range(3))

    def three_way(s_t: float, s_i: float) -> torch.Tensor:
        return uncond + s_i * (image_only - uncond) + s_t * (full - image_only)

    assert torch.allclose(combine_guidance((full, image_only, uncond), 3.0, 1.7), three_way(3, 1.7))
    assert torch.allclose(combine_guidance((full, image_only), 3.0, 1.0), three_way(3, 1))
    assert torch.equal(combine_guidance((full,), 1.0, 1.0), full)
    assert torch.allclose(three_way(1, 1), full)


@pytest.mark.parametrize(
    ("scales", "branches"), [((2.0, 1.5), 3), ((2.0, 1.0), 2), ((1.0, 1.0), 1)]
)
def test_only_the_branches_the_scales_need_are_run(
    tiny_model: Any, monkeypatch: Any, scales: tuple[float, float], branches: int
) -> None:
    sizes: list[int] = []
    original = tiny_model.diffusion.predict

    def spy(noisy: Any, t: Any, src_lat: Any, cond: Any, spatial: Any = None) -> Any:
        sizes.append(noisy.shape[0])
        return original(noisy, t, src_lat, cond, spatial)

    monkeypatch.setattr(tiny_model.diffusion, "predict", spy)
    _edit(ReasonBrainPipeline(tiny_model), 0, steps=2, scales=scales)
    assert sizes == [2 * branches, 2 * branches]


def test_mismatched_inputs_raise(tiny_model: Any) -> None:
    pipe = ReasonBrainPipeline(tiny_model)
    with pytest.raises(ValueError, match="2 images but 1 prompts"):
        pipe(image=list(make_batch(2)["src"]), prompt=["one"])
    with pytest.raises(TypeError):  # the old positional form is gone, not silently reordered
        pipe(list(make_batch(1)["src"]), ["one"])  # type: ignore[misc]


def test_edits_come_back_at_each_input_size(tiny_model: Any) -> None:
    pipe = ReasonBrainPipeline(tiny_model)
    src = make_batch(2)["src"]
    wide = to_pil(src[0]).resize((96, 40))
    tall = src[1][:, :, :48]  # a [3, 64, 48] tensor
    kw: dict[str, Any] = {"num_inference_steps": 1, "generator": torch.Generator().manual_seed(0)}
    out = pipe(image=[wide, tall], prompt=["Show it.", "Show it."], **kw)
    assert [im.size for im in out.images] == [(96, 40), (48, 64)]
    kw["generator"] = torch.Generator().manual_seed(0)
    work = pipe(image=[wide, tall], prompt=["Show it.", "Show it."], output_size="model", **kw)
    assert [im.size for im in work.images] == [(64, 64), (64, 64)]
    # the input-size edit is the working-resolution edit resized back
    assert (
        out.images[0].tobytes()
        == work.images[0].resize((96, 40), Image.Resampling.BICUBIC).tobytes()
    )


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reasonbrain", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
    )


@pytest.mark.slow
def test_cli_edit_end_to_end(saved_tiny: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    to_pil(make_batch(1)["src"][0]).resize((80, 48)).save(src)
    out = tmp_path / "out.png"
    ok = _cli(
        "edit",
        "--model",
        str(saved_tiny),
        "--image",
        str(src),
        "--instruction",
        "What if the red candle burned?",
        "--out",
        str(out),
        "--steps",
        "2",
        "--seed",
        "3",
    )
    assert ok.returncode == 0, ok.stderr
    assert out.is_file() and f"wrote {out} (80×48, edited at 64×64 and resized back)" in ok.stdout
    with Image.open(out) as im:
        assert im.size == (80, 48)  # the input's size, as diffusers returns it
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.png")]
    bad = _cli(
        "edit",
        "--model",
        str(saved_tiny),
        "--image",
        str(tmp_path / "nope.png"),
        "--instruction",
        "x",
        "--out",
        str(tmp_path / "o.png"),
    )
    assert bad.returncode == 2 and "image not found" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr
    bad_model = _cli(
        "edit",
        "--model",
        str(tmp_path),
        "--image",
        str(src),
        "--instruction",
        "x",
        "--out",
        str(tmp_path / "o.png"),
    )
    assert bad_model.returncode == 2 and "not a saved model directory" in bad_model.stderr
    # a directory this process cannot create files in (sysfs refuses even root)
    locked = Path("/sys") if os.geteuid() == 0 else tmp_path / "locked"
    if locked != Path("/sys"):
        locked.mkdir(mode=0o500)
    unwritable = _cli(
        "edit",
        "--model",
        str(saved_tiny),
        "--image",
        str(src),
        "--instruction",
        "x",
        "--out",
        str(locked / "o.png"),
    )
    assert unwritable.returncode == 2, unwritable.stderr
    assert "cannot write the output" in unwritable.stderr and "Traceback" not in unwritable.stderr
    assert len(unwritable.stderr.strip().splitlines()) == 1
    missing_dir = _cli(
        "edit",
        "--model",
        str(saved_tiny),
        "--image",
        str(src),
        "--instruction",
        "x",
        "--out",
        str(tmp_path / "no" / "such" / "o.png"),
    )
    assert missing_dir.returncode == 2 and "output directory does not exist" in missing_dir.stderr
    assert "Traceback" not in missing_dir.stderr
