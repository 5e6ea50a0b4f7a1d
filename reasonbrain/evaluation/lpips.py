"""LPIPS (Zhang et al., 2018) with an AlexNet backbone, from local weights only.

torchmetrics ships LPIPS, but builds its backbone with torchvision, which cannot be imported
beside this machine's torch build and would download ImageNet weights. So the ~40 lines of the
network are written here: the AlexNet feature stack in torchvision's layout (weights read from a
local safetensors file with torchvision's ``features.N.*`` key names) and the calibrated linear
heads that torchmetrics bundles with its package (``lpips_models/alex.pth``, a local file). The
formula is LPIPS's: inputs in [-1, 1], per-layer channel-normalised features, squared
difference, learned 1×1 weights, spatial mean, summed over the five layers. ``spatial=True``
keeps the per-pixel map (upsampled to the input size) so that a region's LPIPS is the mean of the
map over that region (Reason-Edit's background fidelity).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from reasonbrain.errors import MissingWeightsError
from reasonbrain.evaluation.images import BoolMask, FloatImage

_CHANNELS = (64, 192, 384, 256, 256)
# LPIPS's input scaling (constants of the reference implementation).
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


def alexnet_features() -> nn.Sequential:
    """AlexNet's convolutional stack with torchvision's module indices (``features.N``)."""
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, stride=4, padding=2),
        nn.ReLU(inplace=False),
        nn.MaxPool2d(3, stride=2),
        nn.Conv2d(64, 192, 5, padding=2),
        nn.ReLU(inplace=False),
        nn.MaxPool2d(3, stride=2),
        nn.Conv2d(192, 384, 3, padding=1),
        nn.ReLU(inplace=False),
        nn.Conv2d(384, 256, 3, padding=1),
        nn.ReLU(inplace=False),
        nn.Conv2d(256, 256, 3, padding=1),
        nn.ReLU(inplace=False),
    )


#: Indices of the ReLU outputs LPIPS taps (relu1 … relu5).
_TAPS = (1, 4, 7, 9, 11)


def _bundled_linear_heads() -> Path:
    import torchmetrics.functional.image.lpips as tm_lpips

    return Path(tm_lpips.__file__).parent / "lpips_models" / "alex.pth"


class LPIPS(nn.Module):
    """LPIPS-Alex; ``forward(x, y)`` takes (N, 3, H, W) tensors in [0, 1]."""

    shift: torch.Tensor
    scale: torch.Tensor

    def __init__(self, backbone_path: Path) -> None:
        super().__init__()
        from safetensors.torch import load_file

        self.features = alexnet_features()
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in _CHANNELS)
        self.register_buffer("shift", torch.tensor(_SHIFT)[None, :, None, None], persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE)[None, :, None, None], persistent=False)
        try:
            state = load_file(str(backbone_path))
        except (OSError, ValueError) as err:
            raise MissingWeightsError(
                f"cannot read LPIPS backbone weights: {err}",
                where=str(backbone_path),
                fix="save torchvision AlexNet's state_dict (features.* keys) as safetensors",
            ) from None
        feats = {k.removeprefix("features."): v for k, v in state.items() if "features." in k}
        missing, unexpected = self.features.load_state_dict(feats, strict=False)
        if missing or unexpected:
            raise MissingWeightsError(
                f"LPIPS backbone keys do not match AlexNet (missing {missing[:3]}, "
                f"unexpected {unexpected[:3]})",
                where=str(backbone_path),
                fix="use torchvision AlexNet's state_dict keys (features.0.weight …)",
            )
        heads = torch.load(_bundled_linear_heads(), map_location="cpu", weights_only=True)
        for i, lin in enumerate(self.lins):
            lin.weight.data.copy_(  # type: ignore[operator]
                heads[f"lin{i}.model.1.weight"]
            )
        self.eval().requires_grad_(False)

    def _taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        h = (x - self.shift) / self.scale
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in _TAPS:
                out.append(h / (h.norm(dim=1, keepdim=True) + 1e-10))
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor, spatial: bool = False) -> torch.Tensor:
        """LPIPS distance: (N,) or, with ``spatial``, an (N, H, W) map."""
        fx, fy = self._taps(2 * x - 1), self._taps(2 * y - 1)
        total: torch.Tensor | int = 0
        for lin, a, b in zip(self.lins, fx, fy, strict=True):
            d = lin((a - b) ** 2)
            if spatial:
                d = nn.functional.interpolate(d, size=x.shape[-2:], mode="bilinear")
            else:
                d = d.mean(dim=(2, 3), keepdim=True)
            total = total + d
        assert isinstance(total, torch.Tensor)
        return total[:, 0] if spatial else total.flatten()

    def distance(self, a: FloatImage, b: FloatImage, mask: BoolMask | None = None) -> float | None:
        """LPIPS between two (H, W, 3) [0, 1] arrays; over a region when ``mask`` is given.

        AlexNet needs inputs of at least ~63 px: smaller images are upsampled (bilinear) to 64.
        """
        ta, tb = (torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None] for x in (a, b))
        if min(ta.shape[-2:]) < 64:
            ta, tb = (
                nn.functional.interpolate(t, size=(64, 64), mode="bilinear") for t in (ta, tb)
            )
        with torch.inference_mode():
            if mask is None:
                return float(self(ta, tb)[0])
            if not mask.any():
                return None
            m = torch.from_numpy(mask.astype(np.float32))[None, None]
            m = nn.functional.interpolate(m, size=ta.shape[-2:], mode="nearest")[0, 0] > 0.5
            return float(self(ta, tb, spatial=True)[0][m].mean())

    @staticmethod
    def describe(path: Path) -> dict[str, Any]:
        """Configuration stored next to LPIPS numbers."""
        from reasonbrain.evaluation.encoders import weights_fingerprint

        return {
            "backbone": "alexnet (torchvision layout)",
            "weights": str(path),
            "fingerprint": weights_fingerprint(path),
            "linear_heads": "torchmetrics bundled lpips_models/alex.pth",
            "input": "[0,1] → [-1,1]; images < 64 px upsampled to 64 (bilinear)",
        }
