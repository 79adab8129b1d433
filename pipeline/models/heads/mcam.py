"""MCAM: the Multi-head Cross Attention Module (paper eq. 3-5).

Eq. 3 as printed computes each modality's attention from its *own* queries and
keys (Q_v K_v^T, Q_t K_t^T), which would be self-attention. The text around it
("cross attention", "inter-feature relationships between visual and textual
feature maps") describes cross attention, which is what is implemented: image
tokens query the text tokens, and text tokens query the image tokens:

    Z_v = MHA(Q = f_va, K = V = f_ta)        Z_t = MHA(Q = f_ta, K = V = f_va)
    Zf_v = LN(Z_v + f_va)                    Zf_t = LN(Z_t + f_ta)          (eq. 5)

With ``dropout`` > 0, Z_v and Z_t are dropped out before the residual add
(Vaswani et al.'s residual dropout; the paper has no dropout).

Padding tokens of the text are masked out of the image's keys.
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.models.heads.attention import MultiHeadAttention


class MCAM(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.image_to_text = MultiHeadAttention(dim, heads)
        self.text_to_image = MultiHeadAttention(dim, heads)
        self.drop = nn.Dropout(dropout)
        self.norm_image = nn.LayerNorm(dim)
        self.norm_text = nn.LayerNorm(dim)

    def forward(self, image: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor):
        z_v = self.image_to_text(image, text, text_mask)
        z_t = self.text_to_image(text, image, None)
        return self.norm_image(self.drop(z_v) + image), self.norm_text(self.drop(z_t) + text)
