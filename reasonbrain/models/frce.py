"""FRCE visual branch (VRCB): patch branch + region branch → R_V (DESIGN §4.2; paper Fig. 2).

- **Patch branch**: a transformer over the multi-layer CLIP patch tokens (local detail).
- **Region branch**: a transformer over mask-pooled region tokens (object level), with the learned
  null region always present (see :mod:`reasonbrain.models.region_tokens`).
- Each branch adds its own learned **type embedding**; R_V is their concatenation, with a mask.

Either branch can be switched off (ablations); when both are, the model has no R_V at all.
"""

from __future__ import annotations

import torch
from torch import nn

from reasonbrain.models.layers import SelfAttentionBlock
from reasonbrain.models.region_tokens import RegionPooler

PATCH_TYPE, REGION_TYPE = 0, 1


class VisualCueBranch(nn.Module):
    """Compute R_V from patch tokens and region masks.

    Args:
        dim: FRCE width.
        heads: attention heads.
        grid: patch grid side.
        use_patch_branch: keep the patch tokens in R_V.
        use_region_branch: keep the region tokens in R_V.
        patch_layers: transformer blocks in the patch branch.
        region_layers: transformer blocks in the region branch.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        grid: int,
        *,
        use_patch_branch: bool,
        use_region_branch: bool,
        patch_layers: int,
        region_layers: int,
    ) -> None:
        super().__init__()
        self.use_patch_branch = use_patch_branch
        self.use_region_branch = use_region_branch
        self.type_embed = nn.Embedding(2, dim)
        self.patch_blocks = nn.ModuleList(
            SelfAttentionBlock(dim, heads) for _ in range(patch_layers if use_patch_branch else 0)
        )
        self.region_pool = RegionPooler(dim, grid) if use_region_branch else None
        self.region_blocks = nn.ModuleList(
            SelfAttentionBlock(dim, heads) for _ in range(region_layers if use_region_branch else 0)
        )

    def forward(
        self,
        patches: torch.Tensor,
        region_masks: torch.Tensor | None,
        region_valid: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``patches`` ``[B, P, D]``; masks ``[B, K, H, W]``/``[B, K]`` (region branch only).

        Returns:
            ``R_V`` ``[B, L_V, D]`` and its mask ``[B, L_V]`` (L_V = P and/or K + 1).
        """
        parts: list[torch.Tensor] = []
        masks: list[torch.Tensor] = []
        b = patches.shape[0]
        if self.use_patch_branch:
            x = patches
            for blk in self.patch_blocks:
                x = blk(x)
            parts.append(x + self.type_embed.weight[PATCH_TYPE].to(x.dtype))
            masks.append(torch.ones(b, x.shape[1], dtype=torch.bool, device=x.device))
        if self.region_pool is not None:
            if region_masks is None or region_valid is None:
                raise ValueError("the region branch needs region masks")
            r, rmask = self.region_pool(patches, region_masks, region_valid)
            for blk in self.region_blocks:
                r = blk(r, rmask)
            parts.append(r + self.type_embed.weight[REGION_TYPE].to(r.dtype))
            masks.append(rmask)
        return torch.cat(parts, dim=1), torch.cat(masks, dim=1)
