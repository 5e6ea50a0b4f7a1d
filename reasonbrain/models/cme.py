"""CME — the cross-modal enhancer (DESIGN §4.5; paper "Cross-Modal Enhancer").

Two symmetric branches, one for vision (modality features = image patch tokens, cues = R_V) and
one for text (modality features = instruction tokens, cues = R_T). Each is a stack of mixed
cross-attention blocks; one block does::

    F1 = q + Attn(q → V̂)                 learnable queries read the MLLM guidance
    F2 = x + Attn(x → cues)              modality features read their FRCE cues
    q' = F1 + Attn(F1 → [F2; cues])      fuse: a final attention over the enhanced features
    q' = q' + FFN(q')

and passes ``q'`` and ``F2`` to the next block. The branch output (the final queries, R̄_V or
R̄_T) restores detail lost in the MLLM bottleneck and is appended to the diffusion conditioning.
"""

from __future__ import annotations

import torch
from torch import nn

from reasonbrain.models.layers import CrossAttention, FeedForward


class MixedCrossAttentionBlock(nn.Module):
    """One CME block (see the module docstring)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.read_guidance = CrossAttention(dim, heads)
        self.read_cues = CrossAttention(dim, heads)
        self.fuse = CrossAttention(dim, heads)
        self.ff = FeedForward(dim)

    def forward(
        self,
        q: torch.Tensor,
        x: torch.Tensor,
        x_mask: torch.Tensor,
        guidance: torch.Tensor,
        cues: torch.Tensor,
        cue_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return updated queries ``q`` and modality features ``x``."""
        f1 = q + self.read_guidance(q, guidance)
        f2 = x + self.read_cues(x, cues, cue_mask)
        f2 = f2 * x_mask[..., None].to(f2.dtype)
        mem = torch.cat([f2, cues], dim=1)
        mem_mask = torch.cat([x_mask, cue_mask], dim=1)
        q = f1 + self.fuse(f1, mem, mem_mask)
        return q + self.ff(q), f2


class CMEBranch(nn.Module):
    """One branch: learnable queries + a stack of mixed cross-attention blocks.

    Args:
        dim: conditioning width.
        feat_dim: width of the modality features (projected to ``dim``).
        cue_dim: width of the FRCE cues (projected to ``dim``).
        heads: attention heads.
        blocks: number of blocks (paper: 5).
        num_queries: output tokens.
    """

    def __init__(
        self, dim: int, feat_dim: int, cue_dim: int, heads: int, blocks: int, num_queries: int
    ) -> None:
        super().__init__()
        self.queries = nn.Parameter(torch.randn(1, num_queries, dim) * 0.02)
        self.feat_proj = nn.Linear(feat_dim, dim)
        self.cue_proj = nn.Linear(cue_dim, dim)
        self.blocks = nn.ModuleList(MixedCrossAttentionBlock(dim, heads) for _ in range(blocks))
        self.norm = nn.LayerNorm(dim)

    def forward(
        self,
        feats: torch.Tensor,
        feat_mask: torch.Tensor,
        guidance: torch.Tensor,
        cues: torch.Tensor,
        cue_mask: torch.Tensor,
    ) -> torch.Tensor:
        """``feats`` ``[B, L, feat_dim]``, ``guidance`` V̂ ``[B, N, dim]``, ``cues`` ``[B, C, cue]``
        → ``[B, num_queries, dim]``."""
        x = self.feat_proj(feats)
        c = self.cue_proj(cues)
        q = self.queries.expand(feats.shape[0], -1, -1).to(x.dtype)
        for blk in self.blocks:
            q, x = blk(q, x, feat_mask, guidance, c, cue_mask)
        return self.norm(q)
