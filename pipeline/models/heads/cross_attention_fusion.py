"""The paper's head, ``cross_attention``: alignment -> MCAM -> fusion -> SMSAM -> FFN -> M logits.

(Once named ``mcam``, which collided with the ``fusion.mcam`` flag that removes MCAM
from it; the old name still loads old checkpoints.)

Interpretation choices (also in the README):

* ``tokens: sequence`` (default) feeds token sequences (ViT patches or CNN
  cells; OCR token states), so MCAM and SMSAM attend over real sets of
  regions/tokens. ``tokens: pooled`` feeds one pooled vector per modality, the
  literal reading of "f_v in R^D" in the paper, in which attention over a single
  key degenerates to a linear map.
* Eq. 5 fuses with ``LN(Zf_v + Zf_t)``. Sequences of different lengths cannot
  be added, so ``fuse: concat`` (default) joins them along the token axis into
  one sequence for SMSAM; ``fuse: add`` is the literal sum (pooled tokens only).
* After SMSAM the sequence is mean-pooled over real tokens before the FFN (the
  paper does not say how a sequence becomes the FFN's input).
* A poster without OCR text gets a learned empty-text token (one real token)
  in place of its text sequence, never a NaN or an all-masked row.
* Films (``fusion.plot`` / ``fusion.metadata``): the film's plot embedding
  is a further text stream, one more token after the OCR tokens (its own alignment,
  eq. 2, and a learned type vector added, so attention can tell it from OCR words),
  masked out for a film without a plot; the metadata vector is one more such token,
  always present (unknown fields are in its slots). Both go through MCAM on the text
  side and SMSAM with everything else. The plot is one pooled vector, not its token
  states: its tokens would multiply the sequence length (and the cache) by ~4 for the
  one stream the paper's design never saw.
* Dropout (``fusion.dropout``) on each attention sub-layer's output (before
  its residual add) and in the FFN is our addition against over-fitting on a
  few thousand posters; 0 disables it. Not on the attention weights: on a CPU
  that mask cost a third of a training step.
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.models.heads.mcam import MCAM
from pipeline.models.heads.registry import HEADS
from pipeline.models.heads.smsam import SMSAM


class Alignment(nn.Module):
    """Eq. 2: LayerNorm then a linear projection to the common width D_a."""

    def __init__(self, in_dim: int, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(in_dim)
        self.project = nn.Linear(in_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.norm(x))


def ffn(in_dim: int, hidden: list[int], out_dim: int, dropout: float) -> nn.Sequential:
    """The classifier of the paper: hidden layers (512, 128) with ReLU, then M outputs."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.ReLU(), nn.Dropout(dropout)]
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.to(x.dtype)[..., None]
    return (x * m).sum(1) / m.sum(1).clamp(min=1.0)


@HEADS.register("cross_attention", aliases=("mcam",), reads=("plot", "metadata"))  # mcam: its old name
class CrossAttentionFusionHead(nn.Module):
    """The paper's head (``fusion.head: cross_attention``): alignment, MCAM (``fusion.mcam``), SMSAM
    (``fusion.layers``), FFN. ``config`` is plain data (see :func:`head_config`)."""

    def __init__(self, config: dict):
        super().__init__()
        self.config = dict(config)
        c = self.config
        pooled = c["tokens"] == "pooled"
        dim = c["dim"]
        self.align_image = Alignment(c["image_pooled_dim"] if pooled else c["image_token_dim"], dim)
        self.align_text = Alignment(c["text_pooled_dim"] if pooled else c["text_token_dim"], dim)
        self.empty_text = nn.Parameter(torch.zeros(dim))
        nn.init.normal_(self.empty_text, std=0.02)
        for film in ("plot", "metadata"):  # extra text-side tokens (film inputs)
            if c.get(film):
                width = c["plot_pooled_dim" if film == "plot" else "metadata_dim"]
                setattr(self, f"align_{film}", Alignment(width, dim))
                setattr(self, f"type_{film}", nn.Parameter(torch.zeros(dim)))
                nn.init.normal_(getattr(self, f"type_{film}"), std=0.02)
        self.mcam = MCAM(dim, c["heads"], c["dropout"]) if c["mcam"] else None
        self.fuse_norm = nn.LayerNorm(dim)
        self.smsam = SMSAM(dim, c["heads"], c["layers"], c["dropout"]) if c["layers"] > 0 else None
        self.classifier = ffn(dim, c["ffn"], c["num_genres"], c["dropout"])

    @property
    def reads_text_tokens(self) -> bool:
        """True with token sequences: only then does grouping batches by text length (train.group_by_length) pay."""
        return self.config["tokens"] == "sequence"

    def inputs(self, batch: dict[str, torch.Tensor]):
        """Aligned image and text sequences and the text mask, empty texts replaced."""
        if self.config["tokens"] == "pooled":
            image = batch["image_pooled"][:, None, :]
            text = batch["text_pooled"][:, None, :]
            mask = torch.ones(text.shape[:2], dtype=torch.bool, device=text.device)
        else:
            image, text, mask = batch["image_tokens"], batch["text_tokens"], batch["text_mask"].bool()
        image = self.align_image(image.float())
        text = self.align_text(text.float())
        empty = ~batch["has_text"].bool()
        if empty.any():
            only_first = torch.zeros_like(mask)
            only_first[:, 0] = True
            mask = torch.where(empty[:, None], only_first, mask)
            slot = torch.zeros_like(text)
            slot[:, 0] = self.empty_text
            text = torch.where(empty[:, None, None], slot, text)
        for film in ("plot", "metadata"):
            if self.config.get(film):
                vector = batch["plot_pooled"] if film == "plot" else batch["metadata"]
                token = getattr(self, f"align_{film}")(vector.float()) + getattr(self, f"type_{film}")
                present = (batch["has_plot"].bool() if film == "plot"
                           else torch.ones(len(token), dtype=torch.bool, device=token.device))
                text = torch.cat([text, token[:, None, :]], dim=1)
                mask = torch.cat([mask, present[:, None]], dim=1)
        return image, text, mask

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        image, text, text_mask = self.inputs(batch)
        if self.mcam is not None:
            image, text = self.mcam(image, text, text_mask)
        if self.config["fuse"] == "add":
            fused = self.fuse_norm(image + text)
            mask = torch.ones(fused.shape[:2], dtype=torch.bool, device=fused.device)
        else:
            fused = self.fuse_norm(torch.cat([image, text], dim=1))
            image_mask = torch.ones(image.shape[:2], dtype=torch.bool, device=image.device)
            mask = torch.cat([image_mask, text_mask], dim=1)
        if self.smsam is not None:
            fused = self.smsam(fused, mask)
        return self.classifier(masked_mean(fused, mask))
