"""Pixel metrics: L1, L2, PSNR, SSIM — whole image or restricted to a region mask.

Convention (:data:`PIXEL_CONFIG`, stored next to every number): images are float RGB in [0, 1]
(see :mod:`reasonbrain.evaluation.images`); L1 = mean absolute difference, L2 = mean squared
difference (MagicBrush's definitions), both over all pixels and channels of the region. PSNR and
SSIM come from torchmetrics (``data_range=1``, Gaussian window 11, σ = 1.5). For a region, SSIM is
the mean of torchmetrics' full SSIM map over the region's pixels (windows still see neighbouring
pixels), and PSNR uses the region's MSE. Identical images have infinite PSNR; it is capped at
:data:`PSNR_CAP` dB so that means and JSON stay finite.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from reasonbrain.evaluation.images import IMAGE_CONVENTION, BoolMask, FloatImage

PSNR_CAP = 100.0

PIXEL_CONFIG: dict[str, Any] = {
    **IMAGE_CONVENTION,
    "l1": "mean |a-b| over pixels and channels",
    "l2": "mean (a-b)^2 over pixels and channels",
    "psnr": f"torchmetrics, data_range=1, capped at {PSNR_CAP:g} dB",
    "ssim": "torchmetrics, data_range=1, gaussian kernel 11, sigma 1.5",
}


def _region(mask: BoolMask | None, shape: tuple[int, ...]) -> BoolMask:
    if mask is None:
        return np.ones(shape[:2], dtype=bool)
    if mask.shape != shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match image shape {shape[:2]}")
    return mask


def l1(a: FloatImage, b: FloatImage, mask: BoolMask | None = None) -> float | None:
    """Mean absolute difference over the region (``None`` when the region is empty)."""
    m = _region(mask, a.shape)
    if not m.any():
        return None
    return float(np.abs(a[m] - b[m]).mean())


def l2(a: FloatImage, b: FloatImage, mask: BoolMask | None = None) -> float | None:
    """Mean squared difference over the region (``None`` when the region is empty)."""
    m = _region(mask, a.shape)
    if not m.any():
        return None
    return float(np.square(a[m] - b[m]).mean())


def _psnr_from_mse(mse: float) -> float:
    if mse <= 10 ** (-PSNR_CAP / 10):
        return PSNR_CAP
    return min(PSNR_CAP, -10.0 * math.log10(mse))


def psnr(a: FloatImage, b: FloatImage, mask: BoolMask | None = None) -> float | None:
    """PSNR in dB (``data_range=1``) over the whole image (torchmetrics) or a region."""
    if mask is not None:
        mse = l2(a, b, mask)
        return None if mse is None else _psnr_from_mse(mse)
    import torch
    from torchmetrics.functional.image import peak_signal_noise_ratio

    if np.array_equal(a, b):
        return PSNR_CAP
    ta, tb = (torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None] for x in (a, b))
    value = float(peak_signal_noise_ratio(ta, tb, data_range=1.0))
    return min(PSNR_CAP, value)


def ssim(a: FloatImage, b: FloatImage, mask: BoolMask | None = None) -> float | None:
    """SSIM (torchmetrics, ``data_range=1``) over the whole image or averaged over a region."""
    import torch
    from torchmetrics.functional.image import structural_similarity_index_measure

    m = _region(mask, a.shape)
    if not m.any():
        return None
    ta, tb = (torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None] for x in (a, b))
    if mask is None:
        value = structural_similarity_index_measure(ta, tb, data_range=1.0)
        assert isinstance(value, torch.Tensor)
        return float(value)
    _, full = structural_similarity_index_measure(ta, tb, data_range=1.0, return_full_image=True)
    ssim_map = full[0].mean(dim=0).numpy()  # (H, W): mean over channels
    return float(ssim_map[m].mean())
