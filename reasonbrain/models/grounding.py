"""Grounding head: where does the instruction's object sit? A spatial cue for the UNet.

An extension of the paper for the ``tiny`` preset (off in ``paper``; ``model.spatial_cue``). The
paper tells the diffusion model *where* to edit only through cross-attention to the conditioning
sequence (the ID controller binds each named object to its visual identity, R_T). A small UNet
trained from scratch for minutes cannot decode position from a set of tokens: the demo model
edited the twin of the named object about as often as the named object itself, and hedged
between them with faint blobs. The grounding head makes the ID controller's binding explicit:

- each FRCE patch token (the ``g × g`` grid of the image encoder) is scored against the pooled
  E_T token of each object phrase the instruction names (scaled dot product of two linear
  projections, max over phrases) → logits ``[B, 1, g, g]``;
- ``sigmoid(logits)``, upsampled to the latent grid, is one extra UNet input channel next to the
  source latent (InstructPix2Pix's channel concatenation). It counts as *text/cue* conditioning:
  it is zeroed wherever the text is dropped, and in the unconditional guidance branches;
- training supervises the logits with the record's affected-region mask (``meta.mask``), as the
  fraction of each grid cell the mask covers (binary cross-entropy), on records that have one.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class GroundingHead(nn.Module):
    """Phrase tokens × patch tokens → per-cell logits.

    Args:
        dim: width of the patch and phrase tokens (FRCE width).
        proj_dim: width of the matching space.
    """

    def __init__(self, dim: int, proj_dim: int = 64) -> None:
        super().__init__()
        # normalised inputs keep the initial logits O(1) whatever the encoders' scales
        self.patch_proj = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, proj_dim))
        self.phrase_proj = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, proj_dim))
        self.bias = nn.Parameter(torch.full((1,), -2.0))  # start near "not the object"
        self.scale = 1.0 / math.sqrt(proj_dim)

    def forward(
        self, patches: torch.Tensor, phrases: torch.Tensor, phrase_mask: torch.Tensor
    ) -> torch.Tensor:
        """Logits ``[B, 1, g, g]`` from patches ``[B, g·g, D]`` and phrases ``[B, M, D]``.

        A sample that names no object gets a large negative logit everywhere (no cue).
        """
        b, p, _ = patches.shape
        g = math.isqrt(p)
        if g * g != p:
            raise ValueError(f"patch tokens must form a square grid, got {p}")
        q = self.patch_proj(patches)  # [B, P, E]
        k = self.phrase_proj(phrases)  # [B, M, E]
        scores = torch.einsum("bpe,bme->bpm", q, k) * self.scale + self.bias
        scores = scores.masked_fill(~phrase_mask[:, None, :], -1e4)
        logits = scores.amax(dim=-1) if scores.shape[-1] else scores.new_full((b, p), -1e4)
        return logits.view(b, 1, g, g)


def cue_map(logits: torch.Tensor, size: int) -> torch.Tensor:
    """The UNet input channel: ``sigmoid(logits)`` upsampled to ``size × size`` (bilinear)."""
    probs = torch.sigmoid(logits.float())
    return F.interpolate(probs, size=(size, size), mode="bilinear", align_corners=False)


def grounding_loss(logits: torch.Tensor, mask: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """BCE between logits ``[B, 1, g, g]`` and the mask's coverage of each cell.

    ``mask`` is ``[B, 1, H, W]`` in ``[0, 1]``; only samples with ``keep`` (they have a mask and
    name an object) count; 0 when none does.
    """
    g = logits.shape[-1]
    target = F.adaptive_avg_pool2d(mask.float(), g)
    per = F.binary_cross_entropy_with_logits(logits.float(), target, reduction="none")
    per_sample = per.flatten(1).mean(1)
    weight = keep.to(per_sample.dtype)
    return (per_sample * weight).sum() / weight.sum().clamp(min=1.0)
