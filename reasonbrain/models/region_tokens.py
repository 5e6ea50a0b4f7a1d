"""Mask-pooled region tokens with a learned null region (FRCE region branch input, DESIGN §4.2).

Each proposed region becomes one token: the average of the patch tokens it covers, weighted by the
fraction of each patch inside the mask (the masks are area-pooled onto the patch grid). A learned
**null region** token is always prepended and always valid, so the region sequence is never empty
and no attention over it can have an all-padded key mask (the NaN trap of DESIGN §4).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RegionPooler(nn.Module):
    """Turn ``K`` masks into ``K + 1`` region tokens (null first).

    Args:
        dim: token width.
        grid: the patch grid side (P = grid²).
    """

    def __init__(self, dim: int, grid: int) -> None:
        super().__init__()
        self.grid = grid
        self.null_region = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.normal_(self.null_region, std=0.02)

    def forward(
        self, patches: torch.Tensor, masks: torch.Tensor, valid: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Pool ``patches`` ``[B, P, D]`` under ``masks`` ``[B, K, H, W]`` (``valid`` ``[B, K]``).

        Returns:
            ``tokens`` ``[B, K + 1, D]`` and ``mask`` ``[B, K + 1]`` (True = real; slot 0 = null).
        """
        b = valid.shape[0]
        weights = F.adaptive_avg_pool2d(masks.float(), self.grid).flatten(2)  # [B, K, P]
        weights = weights * valid[..., None].float()
        area = weights.sum(-1, keepdim=True)  # [B, K, 1]
        present = valid & (area[..., 0] > 0)
        pooled = torch.einsum("bkp,bpd->bkd", weights.to(patches.dtype), patches)
        pooled = pooled / area.clamp_min(1e-6).to(patches.dtype)
        pooled = pooled * present[..., None].to(patches.dtype)
        null = self.null_region.to(patches.dtype).expand(b, -1, -1)
        tokens = torch.cat([null, pooled], dim=1)
        mask = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=valid.device), present], 1)
        return tokens, mask
