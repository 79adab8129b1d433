"""Baselines on the pooled embeddings (the paper's Tables I-II, CLIP/BLIP rows).

* ``concat``: LN'd pooled image and text vectors concatenated, then the FFN;
* ``sum``: each aligned to ``fusion.dim`` (LN + projection, eq. 2) and added, then the FFN;
* ``image`` / ``text`` / ``plot`` / ``metadata``: one modality's vector only, then the FFN (a film
  without a plot reads a learned empty-plot vector, as a poster without OCR text an empty-text one);
* ``visio_textual``: the visio-textual paper's integrated model: the poster's image vector and the
  film's plot embedding concatenated, then the FFN. The paper fine-tunes BERT on the plots (its main
  ingredient) and keeps its poster ResNet's features (fine-tuning it is that report's future work); here
  both encoders are frozen (the feature store), so only the joint classifier is trained. A film without
  a plot reads a learned empty-plot vector. Its loss (macro double soft-F1) and oversampling are the
  method's (:mod:`pipeline.evaluation.methods`), not the head's;
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
    return masked_vector(batch, "text", empty)


def masked_vector(batch, modality: str, empty: nn.Parameter | None) -> torch.Tensor:
    """``<modality>_pooled``, or the learned ``empty`` vector where ``has_<modality>`` is false
    (a film without a plot never reads a plot vector). Metadata has no mask: unknown is in its slots."""
    if modality == "metadata":
        return batch["metadata"].float()
    vector = batch[f"{modality}_pooled"].float()
    if empty is None:
        return vector
    return torch.where(batch[f"has_{modality}"].bool()[:, None], vector, empty.expand_as(vector))


#: The input width of each modality's vector in a head config.
WIDTH = {"image": "image_pooled_dim", "text": "text_pooled_dim", "plot": "plot_pooled_dim", "metadata": "metadata_dim"}


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


@HEADS.register("metadata", requires=("metadata",))
@HEADS.register("plot", requires=("plot",))
@HEADS.register("text")
@HEADS.register("image")
class SingleModalityHead(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        self.config = dict(c)
        self.modality = c["head"]  # image, text, plot or metadata
        width = c[WIDTH[self.modality]]
        self.norm = nn.LayerNorm(width)
        masked = self.modality in ("text", "plot")
        empty = nn.Parameter(torch.zeros(width)) if masked else None
        if self.modality == "plot":
            self.empty_plot = empty
        else:
            self.empty_text = empty  # the attribute's name in checkpoints of the text head
        self.classifier = ffn(width, c["ffn"], c["num_genres"], c["dropout"])

    def forward(self, batch):
        empty = self.empty_plot if self.modality == "plot" else self.empty_text
        return self.classifier(self.norm(masked_vector(batch, self.modality, empty)))


@HEADS.register("visio_textual", requires=("plot",))
class VisioTextualHead(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        self.config = dict(c)
        self.norm_image = nn.LayerNorm(c["image_pooled_dim"])
        self.norm_plot = nn.LayerNorm(c["plot_pooled_dim"])
        self.empty_plot = nn.Parameter(torch.zeros(c["plot_pooled_dim"]))
        self.classifier = ffn(c["image_pooled_dim"] + c["plot_pooled_dim"], c["ffn"], c["num_genres"], c["dropout"])

    def forward(self, batch):
        x = torch.cat([self.norm_image(batch["image_pooled"].float()),
                       self.norm_plot(masked_vector(batch, "plot", self.empty_plot))], dim=1)
        return self.classifier(x)


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
