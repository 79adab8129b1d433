"""Multi-head scaled dot-product attention as the paper writes it (eq. 3-4, 6).

Queries, keys and values are linear maps of the inputs, each head attends with
softmax(QK^T / sqrt(D_k)) V, and the heads are concatenated. The paper has no
output projection after the concatenation (eq. 4 and 6), so neither does this:
the head width is D_v = dim / heads, so the concatenation is back at ``dim``
and the residual connections of eq. 5 and 7 add up.

No dropout on the attention weights: the paper has none, and on a CPU drawing a
mask over every (head, query, key) triple cost a third of a training step. The
modules that use this one drop out its output instead (see ``fusion.dropout``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MultiHeadAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        return x.view(b, n, self.heads, d // self.heads).transpose(1, 2)

    def forward(self, query: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor | None = None):
        """``query`` (B, Nq, D) attends to ``context`` (B, Nk, D); ``context_mask`` (B, Nk) True = real token."""
        q, k, v = self._split(self.q(query)), self._split(self.k(context)), self._split(self.v(context))
        attn_mask = None if context_mask is None else context_mask[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        b, h, n, dh = out.shape
        return out.transpose(1, 2).reshape(b, n, h * dh)

    def weights(self, query: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor | None = None):
        """The attention weights ``forward`` uses, (B, heads, Nq, Nk): softmax(QK^T / sqrt(D_k)), masked keys 0.
        For explanations only (``forward`` lets the fused kernel compute them)."""
        q, k = self._split(self.q(query)), self._split(self.k(context))
        logits = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
        if context_mask is not None:
            logits = logits.masked_fill(~context_mask[:, None, None, :], float("-inf"))
        return logits.softmax(dim=-1)
