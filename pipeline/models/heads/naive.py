"""The naive classifier of the visio-textual paper: always predict the k most frequent genres.

No learned parameters: :meth:`fit` reads the training labels, ``k`` is the mean
number of genres per training poster (rounded, at least 1). Scores are the
genres' training frequencies, with the top k lifted above 0.5, so at the usual
threshold exactly those k are predicted while ranking metrics (AP, Hit) still
see the frequency order.
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.models.heads.registry import HEADS


@HEADS.register("naive")
class NaiveHead(nn.Module):
    trainable = False

    def __init__(self, c: dict):
        super().__init__()
        self.config = dict(c)
        self.register_buffer("logits", torch.zeros(c["num_genres"]))

    def fit(self, labels: torch.Tensor) -> None:
        freq = labels.float().mean(0)
        k = max(1, int(round(float(labels.float().sum(1).mean()))))
        top = torch.argsort(freq, descending=True, stable=True)[:k]
        score = freq * 0.5  # every genre below 0.5 ...
        score[top] = 0.5 + 0.5 * freq[top]  # ... but the k most frequent, above it
        self.logits = torch.logit(score.clamp(1e-6, 1 - 1e-6))

    def forward(self, batch):
        n = batch["image_pooled"].shape[0]
        return self.logits.expand(n, -1)
