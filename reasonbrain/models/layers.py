"""Masked attention blocks shared by FRCE, the ID controller and the CME.

Hand-written (rather than ``nn.MultiheadAttention`` / ``nn.TransformerEncoderLayer``) for one
reason: PyTorch's fused eval-mode fast path returns NaN for a query whose keys are *all* padded
(a known trap of public reimplementations, DESIGN §4). :func:`masked_attention` guards that case
explicitly — such a query gets a zero update — so train and eval mode behave the same. Every
caller also keeps at least one always-valid key (a learned null token), so in practice the guard
is a second line of defence.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def masked_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor | None
) -> torch.Tensor:
    """Scaled dot-product attention with a boolean key mask that can never produce NaN.

    Args:
        q: ``[B, H, Lq, Dh]``.
        k: ``[B, H, Lk, Dh]``.
        v: ``[B, H, Lk, Dh]``.
        key_mask: ``[B, Lk]`` bool, True = attend; ``None`` = all keys valid.

    Returns:
        ``[B, H, Lq, Dh]``; rows whose keys are all masked are exactly zero.
    """
    if key_mask is None:
        return F.scaled_dot_product_attention(q, k, v)
    has_key = key_mask.any(dim=-1)  # [B]
    # A row with no valid key would softmax over -inf only (NaN): let it see every key, then
    # zero its output below.
    safe = key_mask | ~has_key[:, None]
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=safe[:, None, None, :])
    return out * has_key[:, None, None, None].to(out.dtype)


class CrossAttention(nn.Module):
    """Multi-head attention ``queries → keys`` (self-attention when both are the same tensor).

    Args:
        dim: query width (and output width).
        heads: number of heads; ``dim`` must be divisible by it.
        kv_dim: key/value width (defaults to ``dim``).
    """

    def __init__(self, dim: int, heads: int, kv_dim: int | None = None) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention width {dim} is not divisible by {heads} heads")
        kv_dim = kv_dim or dim
        self.heads = heads
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(kv_dim)
        self.to_q = nn.Linear(dim, dim)
        self.to_kv = nn.Linear(kv_dim, 2 * dim)
        self.to_out = nn.Linear(dim, dim)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Attention update for ``x`` ``[B, Lq, dim]`` over ``context`` ``[B, Lk, kv]``."""
        b, lq, d = x.shape
        h = self.heads
        q = self.to_q(self.norm_q(x)).view(b, lq, h, d // h).transpose(1, 2)
        k, v = self.to_kv(self.norm_kv(context)).chunk(2, dim=-1)
        k = k.reshape(b, -1, h, d // h).transpose(1, 2)
        v = v.reshape(b, -1, h, d // h).transpose(1, 2)
        out = masked_attention(q, k, v, context_mask)
        return self.to_out(out.transpose(1, 2).reshape(b, lq, d))


class FeedForward(nn.Module):
    """Pre-norm GELU MLP (width × ``mult``)."""

    def __init__(self, dim: int, mult: int = 4) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(dim), nn.Linear(dim, dim * mult), nn.GELU(), nn.Linear(dim * mult, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the MLP update for ``x``."""
        return self.net(x)


class SelfAttentionBlock(nn.Module):
    """Pre-norm transformer block (masked self-attention + FFN) with residuals."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.attn = CrossAttention(dim, heads)
        self.ff = FeedForward(dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` ``[B, L, dim]``, ``mask`` ``[B, L]`` (True = real token)."""
        x = x + self.attn(x, x, mask)
        return x + self.ff(x)
