"""Every metric on hand-computed cases (pixel, embedding, LPIPS) and each benchmark protocol."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reasonbrain.config import EvalParams, Settings
from reasonbrain.data.schema import Record
from reasonbrain.evaluation import pixel
from reasonbrain.evaluation.images import to_array
from reasonbrain.evaluation.protocols import protocol_of
from reasonbrain.evaluation.scoring import Scorer
from reasonbrain.evaluation.testing import (
    make_synth_dataset,
    save_random_alexnet,
    save_tiny_clip,
    save_tiny_dino,
)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("weights")
    save_tiny_clip(root / "clip")
    save_tiny_dino(root / "dino")
    save_random_alexnet(root / "lpips" / "alexnet.safetensors")
    return root


# ------------------------------------------------------------------------------- pixel
def test_pixel_metrics_on_hand_computed_images() -> None:
    a = np.zeros((8, 8, 3), np.float32)
    b = np.full((8, 8, 3), 0.5, np.float32)
    assert pixel.l1(a, b) == pytest.approx(0.5)
    assert pixel.l2(a, b) == pytest.approx(0.25)
    assert pixel.psnr(a, b) == pytest.approx(10 * math.log10(1 / 0.25), abs=1e-4)  # 6.02 dB
    assert pixel.psnr(a, a) == pixel.PSNR_CAP
    assert pixel.ssim(b, b) == pytest.approx(1.0, abs=1e-6)
    assert pixel.ssim(a, b) < 0.1


def test_masked_pixel_metrics_only_see_the_region() -> None:
    a = np.zeros((16, 16, 3), np.float32)
    b = a.copy()
    b[:8] = 1.0  # top half differs
    top = np.zeros((16, 16), bool)
    top[:8] = True
    assert pixel.l1(a, b, top) == pytest.approx(1.0)
    assert pixel.l1(a, b, ~top) == 0.0
    assert pixel.l2(a, b) == pytest.approx(0.5)
    assert pixel.psnr(a, b, ~top) == pixel.PSNR_CAP
    assert pixel.psnr(a, b, top) == pytest.approx(0.0, abs=1e-6)  # mse 1 ⇒ 0 dB
    assert pixel.l1(a, b, np.zeros((16, 16), bool)) is None
    # the SSIM map far from the border is exactly 1 where both images agree
    far = np.zeros((16, 16), bool)
    far[14:] = True
    assert pixel.ssim(a, b, far) == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(ValueError, match="mask shape"):
        pixel.l1(a, b, np.ones((4, 4), bool))


def test_images_are_resized_to_the_reference() -> None:
    im = Image.new("RGB", (64, 64), (255, 0, 0))
    arr = to_array(im, (32, 32))
    assert arr.shape == (32, 32, 3) and arr.dtype == np.float32
    assert arr[..., 0].min() == pytest.approx(1.0) and arr.max() <= 1.0


# --------------------------------------------------------------------------- embeddings
def test_clip_dino_lpips_on_known_cases(weights: Path) -> None:
    import torch

    from reasonbrain.evaluation.encoders import ClipEmbedder, DinoEmbedder, cosine
    from reasonbrain.evaluation.lpips import LPIPS

    red = Image.new("RGB", (32, 32), (220, 20, 20))
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), np.uint8))
    clip = ClipEmbedder(weights / "clip")
    e = clip.images([red, red, noise])
    assert torch.allclose(e.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert cosine(e[0], e[1]) == pytest.approx(1.0, abs=1e-5)  # CLIP-I of identical images
    assert cosine(e[0], e[2]) < 0.9999
    t = clip.texts(["a red box", "a yellow square", "a red box"])
    assert cosine(t[0], t[2]) == pytest.approx(1.0, abs=1e-5)
    assert cosine(t[0], t[1]) < 0.9999
    dino = DinoEmbedder(weights / "dino")
    d = dino.images([red, red, noise])
    assert cosine(d[0], d[1]) == pytest.approx(1.0, abs=1e-5)
    assert cosine(d[0], d[2]) < 0.9999
    lp = LPIPS(weights / "lpips" / "alexnet.safetensors")
    a, b = to_array(red), to_array(noise)
    assert lp.distance(a, a) == pytest.approx(0.0, abs=1e-7)
    assert lp.distance(a, b) == pytest.approx(lp.distance(b, a), rel=1e-5) and lp.distance(a, b) > 0
    everywhere = np.ones((32, 32), bool)
    assert lp.distance(a, b, everywhere) == pytest.approx(lp.distance(a, b), rel=1e-3)


def test_missing_weights_are_skipped_with_a_note(tmp_path: Path) -> None:
    ds = make_synth_dataset(tmp_path / "ds", n=1)
    rec = Record.model_validate_json((ds / "test.jsonl").read_text().splitlines()[0])
    scorer = Scorer(EvalParams(judge="none"), Settings(weights_dir=tmp_path / "nothing"))
    assert set(scorer.skipped) == {"clip_i", "clip_t", "clip_dir", "dino", "lpips"}
    assert all("skipped: no local" in v for v in scorer.skipped.values())
    row = scorer.score(rec, ds, Image.open(ds / rec.tgt_image))
    assert "clip_i" not in row["metrics"] and row["metrics"]["l1"] == 0.0


# ----------------------------------------------------------------------------- protocols
def _save(path: Path, arr: np.ndarray) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path.name


def test_protocols_compare_with_the_right_references(tmp_path: Path, weights: Path) -> None:
    src = np.full((32, 32, 3), 100, np.uint8)
    _save(tmp_path / "src.png", src)
    mask = np.zeros((32, 32), np.uint8)
    mask[8:16, 8:16] = 255
    Image.fromarray(mask, mode="L").save(tmp_path / "mask.png")
    emu = Record(
        id="e1",
        category="style",
        src_image="src.png",
        tgt_image="src.png",
        instruction="make it a painting",
        target_caption="a painting",
        meta={
            "benchmark": "emu_edit",
            "has_target": False,
            "input_caption": "a photo",
            "output_caption": "a painting",
        },
    )
    reason = Record(
        id="r1",
        category="color",
        src_image="src.png",
        tgt_image="src.png",
        instruction="colour the left object",
        target_caption="a red box",
        meta={"benchmark": "reason_edit", "has_target": False, "mask": "mask.png"},
    )
    assert protocol_of(emu) == "emu_edit" and protocol_of(reason) == "reason_edit"
    scorer = Scorer(EvalParams(judge="none"), Settings(weights_dir=weights))
    out = src.copy()
    out[8:16, 8:16] = 255  # edit only inside the mask
    row = scorer.score(emu, tmp_path, Image.fromarray(out))
    assert row["reference"] == "input" and row["caption"] == "meta.output_caption"
    assert row["metrics"]["l1"] == pytest.approx((64 * 155 / 255) / (32 * 32))  # vs the input
    assert -1 <= row["metrics"]["clip_dir"] <= 1
    row = scorer.score(reason, tmp_path, Image.fromarray(out))
    assert row["metrics"]["bg_psnr"] == pixel.PSNR_CAP  # background untouched
    assert row["metrics"]["bg_lpips"] is not None and "l1" not in row["metrics"]
    assert -1 <= row["metrics"]["clip_t"] <= 1
