"""Baselines on the pooled embeddings (the paper's Tables I-II, CLIP/BLIP rows).

* ``concat``: LN'd pooled image and text vectors concatenated, then the FFN;
* ``sum``: each aligned to ``fusion.dim`` (LN + projection, eq. 2) and added, then the FFN;
* ``image`` / ``text``: one modality's pooled vector only, then the FFN;
* ``linear``: a linear probe, logistic regression on the concatenated pooled vectors
  (standardised per poster by a LayerNorm without learned parameters).
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.models.heads.cross_attention_fusion import Alignment, ffn
from pipeline.models.heads.registry import HEADS


def _text_vector(batch, empty: nn.Parameter | None) -> torch.Tensor:
    """Pooled text, or a learned empty-text vector for posters without OCR text."""
    text = batch["text_pooled"].float()
    if empty is None:
        return text
    return torch.where(batch["has_text"].bool()[:, None], text, empty.expand_as(text))


@HEADS.register("concat")
class ConcatHead(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        self.config = dict(c)
        self.norm_image = nn.LayerNorm(c["image_pooled_dim"])
        self.norm_text = nn.LayerNorm(c["text_pooled_dim"])
        self.empty_text = nn.Parameter(torch.zeros(c["text_pooled_dim"]))
        self.classifier = ffn(c["image_pooled_dim"] + c["text_pooled_dim"], c["ffn"], c["num_genres"], c["dropout"])

    def forward(self, batch):
        x = torch.cat([self.norm_image(batch["image_pooled"].float()),
                       self.norm_text(_text_vector(batch, self.empty_text))], dim=1)
        return self.classifier(x)


@HEADS.register("sum")
class SumHead(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        self.config = dict(c)
        self.align_image = Alignment(c["image_pooled_dim"], c["dim"])
        self.align_text = Alignment(c["text_pooled_dim"], c["dim"])
        self.empty_text = nn.Parameter(torch.zeros(c["text_pooled_dim"]))
        self.classifier = ffn(c["dim"], c["ffn"], c["num_genres"], c["dropout"])

    def forward(self, batch):
        x = self.align_image(batch["image_pooled"].float()) + self.align_text(_text_vector(batch, self.empty_text))
        return self.classifier(x)


@HEADS.register("text")
@HEADS.register("image")
class SingleModalityHead(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        self.config = dict(c)
        self.modality = c["head"]  # "image" or "text"
        width = c[f"{self.modality}_pooled_dim"]
        self.norm = nn.LayerNorm(width)
        self.empty_text = nn.Parameter(torch.zeros(width)) if self.modality == "text" else None
        self.classifier = ffn(width, c["ffn"], c["num_genres"], c["dropout"])

    def forward(self, batch):
        x = batch["image_pooled"].float() if self.modality == "image" else _text_vector(batch, self.empty_text)
        return self.classifier(self.norm(x))


@HEADS.register("linear")
class LinearProbe(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        self.config = dict(c)
        self.norm_image = nn.LayerNorm(c["image_pooled_dim"], elementwise_affine=False)
        self.norm_text = nn.LayerNorm(c["text_pooled_dim"], elementwise_affine=False)
        self.linear = nn.Linear(c["image_pooled_dim"] + c["text_pooled_dim"], c["num_genres"])

    def forward(self, batch):
        # posters without text contribute a zero text vector: the probe sees only their image
        text = batch["text_pooled"].float() * batch["has_text"].float()[:, None]
        return self.linear(torch.cat([self.norm_image(batch["image_pooled"].float()), self.norm_text(text)], dim=1))
