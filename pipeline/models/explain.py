"""Why this genre: which OCR words and which image regions the paper's head attended to.

The paper's head (``cross_attention`` with ``fusion.mcam: true`` and token sequences) has one cross-attention
module, MCAM (eq. 3-5): image tokens query the text tokens, text tokens query the image tokens. What is shown
(a documented choice, as the paper has no figure of it):

* **words**: MCAM's image-to-text weights, averaged over its heads and over every image token (query), give
  one weight per text token; a word's weight is the sum of its tokens' (the encoder's tokenizer says which
  tokens a word made). Start, end and padding tokens are left out, so a poster's word weights need not sum
  to 1: what is left went to those tokens (or, with films, to the plot and metadata tokens, reported apart).
* **regions**: MCAM's text-to-image weights, averaged over heads and over the real text tokens (queries),
  one weight per image token (a cell of the encoder's last feature map, or a ViT patch; a class token is
  left out), drawn as a heat map over the part of the poster the encoder saw (``encoder.image_fit``).
* Only MCAM, not SMSAM: SMSAM's self-attention runs over the fused sequence, image and text tokens mixed, L
  times, and rolling it out would credit the modalities through one another. MCAM is the module whose
  weights answer "which words, which regions" directly.

A head without MCAM (the ``-MCAM`` ablations, every baseline), or with ``tokens: pooled`` (attention over one
key is a copy, weight 1), has nothing to show: :func:`attention_note` says so for the card.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch


def attention_note(head: torch.nn.Module) -> str | None:
    """None when :func:`attention_maps` can explain ``head``; else why not, in one line for a card."""
    config = getattr(head, "config", {})
    name = config.get("head", type(head).__name__)
    if getattr(head, "mcam", None) is None:
        return (f"no attention to show: this head ({name}) has no cross-attention module (MCAM)"
                if name == "cross_attention" else f"no attention to show: the {name} head does not use attention")
    if config.get("tokens") == "pooled":
        return "no attention to show: with tokens: pooled, MCAM attends to one token (weight 1)"
    return None


@torch.no_grad()
def attention_maps(head: torch.nn.Module, batch: dict[str, torch.Tensor]) -> list[dict[str, Any]] | None:
    """Per poster of ``batch``: ``text`` (weight per OCR-text token position), ``image`` (weight per image token,
    class token included if the encoder has one), and ``plot`` / ``metadata`` (the film tokens' weights, when
    the head reads them). None for a head :func:`attention_note` excuses."""
    if attention_note(head) is not None:
        return None
    head.eval()
    image, text, mask = head.inputs(batch)
    to_text = head.mcam.image_to_text.weights(image, text, mask).mean(dim=1).mean(dim=1)  # (B, Nt)
    to_image = head.mcam.text_to_image.weights(text, image, None).mean(dim=1)  # (B, Nt, Ni)
    real = mask.to(to_image.dtype)[..., None]
    to_image = (to_image * real).sum(dim=1) / real.sum(dim=1).clamp(min=1.0)  # mean over real text queries
    n_ocr = batch["text_tokens"].shape[1]
    extras = [f for f in ("plot", "metadata") if head.config.get(f)]
    out = []
    for b in range(len(to_text)):
        row = {"text": to_text[b, :n_ocr].numpy().astype(np.float64), "image": to_image[b].numpy().astype(np.float64)}
        for i, film in enumerate(extras):
            row[film] = float(to_text[b, n_ocr + i])
        out.append(row)
    return out


def word_weights(text: str, token_words: list[int | None] | None, weights: np.ndarray) -> list[tuple[str, float]]:
    """``text``'s whitespace words with the summed weight of their tokens (``token_words``: the encoder's
    position -> word index); [] when the encoder cannot map its tokens to words."""
    words = text.split()
    if token_words is None or not words:
        return []
    sums = [0.0] * len(words)
    for position, word in enumerate(token_words[: len(weights)]):
        if word is not None:
            sums[word] += float(weights[position])
    return [(w, round(s, 6)) for w, s in zip(words, sums)]


def region_grid(weights: np.ndarray) -> tuple[tuple[int, int], np.ndarray] | None:
    """``weights`` of image tokens as a square grid (rows, cols) and its cells in row order; a leading class
    token (one token more than a square) is dropped. None when the tokens are not a square grid."""
    n = len(weights)
    side = math.isqrt(n)
    if side * side == n:
        return (side, side), weights
    side = math.isqrt(n - 1)
    if n > 1 and side * side == n - 1:
        return (side, side), weights[1:]
    return None


def image_frame(fit: str, width: int, height: int) -> tuple[float, float, float, float]:
    """The part of a ``width`` x ``height`` poster (x0, y0, x1, y1, in its pixels) that the encoder's square input
    showed, by ``encoder.image_fit``: squash, the whole poster; crop, its centred square; pad, a square larger
    than the poster, centred on it."""
    if fit == "crop":
        side = min(width, height)
        x0, y0 = (width - side) / 2, (height - side) / 2
        return x0, y0, x0 + side, y0 + side
    if fit == "pad":
        side = max(width, height)
        x0, y0 = (width - side) / 2, (height - side) / 2
        return x0, y0, x0 + side, y0 + side
    return 0.0, 0.0, float(width), float(height)


def card_attention(row: dict[str, Any], text: str, token_words: list[int | None] | None, fit: str,
                   size: tuple[int, int] | None) -> dict[str, Any]:
    """One poster's :func:`attention_maps` row as the review page draws it: words with weights, the region grid
    and the frame it covers, the film tokens' weights."""
    out: dict[str, Any] = {"words": word_weights(text, token_words, row["text"])}
    grid = region_grid(row["image"])
    if grid is not None and size is not None:
        (rows, cols), cells = grid
        out |= {"grid": [rows, cols], "regions": [round(float(c), 6) for c in cells],
                "frame": list(image_frame(fit, *size))}
    for film in ("plot", "metadata"):
        if film in row:
            out[film] = round(row[film], 6)
    return out


def dataset_attention(head: torch.nn.Module, data, batch_size: int = 64) -> list[dict[str, Any]] | None:
    """:func:`attention_maps` for every poster of a :class:`pipeline.models.datasets.Dataset`, in its order."""
    if attention_note(head) is not None:
        return None
    out: list[dict[str, Any]] = []
    for start in range(0, len(data), batch_size):
        feats, _ = data.batch(torch.arange(start, min(start + batch_size, len(data))), torch.device("cpu"))
        out += attention_maps(head, feats)
    return out
