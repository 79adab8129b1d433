"""Fusion heads by name: each head module registers its class where it is defined
(``@HEADS.register(name)``, :mod:`.registry`); importing this package imports them all, so
:data:`HEADS` holds every head and params validation (``fusion.head``) reads its names.

Every head maps a batch to M logits with ``forward``. A head may define
``training_loss(batch, targets, loss_fn)`` (multi-task heads: CentralNet, late
fusion) and may be untrainable (``trainable = False`` with ``fit(labels)``: naive).

A head maps a batch of cached features (``image_tokens``, ``image_pooled``,
``text_tokens``, ``text_mask``, ``text_pooled``, ``has_text``) to M genre logits.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from pipeline.core.params import FusionParams
from pipeline.models.heads.centralnet import CentralNetHead
from pipeline.models.heads.cross_attention_fusion import CrossAttentionFusionHead
from pipeline.models.heads.gmu import GMUHead
from pipeline.models.heads.late_fusion import LateFusionHead
from pipeline.models.heads.naive import NaiveHead
from pipeline.models.heads.pooled import ConcatHead, LinearProbe, SingleModalityHead, SumHead
from pipeline.models.heads.registry import HEADS

__all__ = [
    "HEADS", "CentralNetHead", "ConcatHead", "CrossAttentionFusionHead", "GMUHead", "LateFusionHead",
    "LinearProbe", "NaiveHead", "SingleModalityHead", "SumHead", "create_head", "head_config",
]


def head_config(fusion: FusionParams, dims: dict[str, int], num_genres: int) -> dict[str, Any]:
    """Plain-data config of a head: the fusion params plus the feature widths."""
    return {**fusion.model_dump(), **dims, "num_genres": num_genres}


def create_head(config: dict[str, Any]) -> nn.Module:
    """The head ``config["head"]`` names (an old name, e.g. a checkpoint's ``mcam``, resolves too)."""
    return HEADS.get(config["head"])(config)
