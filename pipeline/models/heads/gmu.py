"""Gated Multimodal Unit (Arevalo et al., ICLR-W 2017), adapted to poster image + poster text.

    h_v = tanh(W_v x_v)   h_t = tanh(W_t x_t)   z = sigmoid(W_z [x_v; x_t])   h = z * h_v + (1 - z) * h_t

on the pooled embeddings (LN'd), then the paper's FFN. ``fusion.dim`` is the width of h.
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.models.heads.cross_attention_fusion import ffn
from pipeline.models.heads.pooled import _text_vector
from pipeline.models.heads.registry import HEADS


@HEADS.register("gmu")
class GMUHead(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        self.config = dict(c)
        dv, dt, d = c["image_pooled_dim"], c["text_pooled_dim"], c["dim"]
        self.norm_image = nn.LayerNorm(dv)
        self.norm_text = nn.LayerNorm(dt)
        self.empty_text = nn.Parameter(torch.zeros(dt))
        self.image = nn.Linear(dv, d, bias=False)
        self.text = nn.Linear(dt, d, bias=False)
        self.gate = nn.Linear(dv + dt, d, bias=False)
        self.classifier = ffn(d, c["ffn"], c["num_genres"], c["dropout"])

    def gates(self, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        xv = self.norm_image(batch["image_pooled"].float())
        xt = self.norm_text(_text_vector(batch, self.empty_text))
        z = torch.sigmoid(self.gate(torch.cat([xv, xt], dim=1)))
        return z, torch.tanh(self.image(xv)), torch.tanh(self.text(xt))

    def forward(self, batch):
        z, hv, ht = self.gates(batch)
        return self.classifier(z * hv + (1 - z) * ht)
