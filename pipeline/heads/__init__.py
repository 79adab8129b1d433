"""Registry of fusion heads, created by name from a plain-data config.

A head maps a batch of cached features (``image_tokens``, ``image_pooled``,
``text_tokens``, ``text_mask``, ``text_pooled``, ``has_text``) to M genre logits.
"""

from __future__ import annotations

from typing import Any, Callable

from torch import nn

from ..params import FusionParams
from .cross_attention_fusion import CrossAttentionFusionHead

HEADS: dict[str, Callable[[dict], nn.Module]] = {
    "mcam": CrossAttentionFusionHead,
}


def head_config(fusion: FusionParams, dims: dict[str, int], num_genres: int) -> dict[str, Any]:
    """Plain-data config of a head: the fusion params plus the feature widths."""
    return {**fusion.model_dump(), **dims, "num_genres": num_genres}


def create_head(config: dict[str, Any]) -> nn.Module:
    name = config["head"]
    if name not in HEADS:
        raise KeyError(f"fusion.head '{name}' unknown; choose one of {sorted(HEADS)}")
    return HEADS[name](config)
