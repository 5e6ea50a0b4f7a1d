"""QFormer: V (``[IMG_i]`` states) → N query tokens in the conditioning width → V̂ (DESIGN §4.4).

Uses transformers' BLIP-2 Q-Former (``Blip2QFormerModel``) with cross-attention in every layer;
the N learnable queries attend to V and the result is projected to ``cond_dim``, the UNet's
cross-attention width.
"""

from __future__ import annotations

import torch
from torch import nn


class QFormer(nn.Module):
    """Learnable queries over the MLLM guidance tokens.

    Args:
        in_dim: width of V (the MLLM hidden size).
        hidden: Q-Former hidden size.
        out_dim: output width (``cond_dim``).
        layers: Q-Former layers (paper: 6).
        heads: attention heads.
        num_queries: N (paper: 77).
    """

    def __init__(
        self, in_dim: int, hidden: int, out_dim: int, layers: int, heads: int, num_queries: int
    ) -> None:
        super().__init__()
        from transformers import Blip2QFormerConfig, Blip2QFormerModel

        cfg = Blip2QFormerConfig(
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            intermediate_size=4 * hidden,
            encoder_hidden_size=in_dim,
            cross_attention_frequency=1,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
        )
        self.qformer = Blip2QFormerModel(cfg)
        self.queries = nn.Parameter(torch.randn(1, num_queries, hidden) * 0.02)
        self.proj = nn.Linear(hidden, out_dim)

    def forward(self, guidance: torch.Tensor) -> torch.Tensor:
        """``guidance`` ``[B, r, in_dim]`` → V̂ ``[B, N, out_dim]``."""
        q = self.queries.expand(guidance.shape[0], -1, -1).to(guidance.dtype)
        out = self.qformer(query_embeds=q, encoder_hidden_states=guidance)
        return self.proj(out.last_hidden_state)
