"""SMSAM: the Sequential Multi-head Self Attention Module (paper eq. 6-7).

    z_0 = f_vt;   z_l = MSA(LN(z_{l-1})) + z_{l-1}  (l = 1..L);   y = LN(z_L)

Pre-LayerNorm blocks with residuals and no feed-forward sub-layer, as printed.
With ``dropout`` > 0 each MSA output is dropped out before its residual add.
Padding tokens are masked out of every block's keys.
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.models.heads.attention import MultiHeadAttention


class SMSAM(nn.Module):
    def __init__(self, dim: int, heads: int, layers: int, dropout: float = 0.0):
        super().__init__()
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(layers))
        self.blocks = nn.ModuleList(MultiHeadAttention(dim, heads) for _ in range(layers))
        self.drop = nn.Dropout(dropout)
        self.final_norm = nn.LayerNorm(dim)

    def forward(self, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for norm, msa in zip(self.norms, self.blocks):
            h = norm(z)
            z = self.drop(msa(h, h, mask)) + z
        return self.final_norm(z)
