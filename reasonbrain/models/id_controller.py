"""The ID controller: FRCE text branch (TRCB) → R_T (DESIGN §4.2; paper Eq. for R_T).

Each object phrase named by the instruction (the record's ``objects`` in training, extracted at
inference) is encoded by E_T into one pooled token; the phrase tokens cross-attend to R_V and pass
an FFN, binding each named object to its visual identity. A learned **null object** token is
always present, so an instruction that names zero objects still yields a defined R_T.
"""

from __future__ import annotations

import torch
from torch import nn

from reasonbrain.models.layers import CrossAttention, FeedForward


class IDController(nn.Module):
    """Object-phrase tokens ``[B, M, D]`` attend to R_V → R_T ``[B, M + 1, D]``.

    Args:
        dim: FRCE width.
        heads: attention heads.
        layers: cross-attention + FFN blocks.
    """

    def __init__(self, dim: int, heads: int, layers: int) -> None:
        super().__init__()
        self.null_object = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.attn = nn.ModuleList(CrossAttention(dim, heads) for _ in range(layers))
        self.ff = nn.ModuleList(FeedForward(dim) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def forward(
        self,
        phrases: torch.Tensor,
        phrase_mask: torch.Tensor,
        r_v: torch.Tensor,
        r_v_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``R_T`` ``[B, M + 1, D]`` and its mask (slot 0 = null object, always valid)."""
        b = phrases.shape[0]
        x = torch.cat([self.null_object.to(phrases.dtype).expand(b, -1, -1), phrases], dim=1)
        mask = torch.cat(
            [torch.ones(b, 1, dtype=torch.bool, device=phrase_mask.device), phrase_mask], dim=1
        )
        for attn, ff in zip(self.attn, self.ff, strict=True):
            x = x + attn(x, r_v, r_v_mask)
            x = x + ff(x)
        x = self.norm(x) * mask[..., None].to(x.dtype)
        return x, mask
