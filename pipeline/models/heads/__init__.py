"""Fusion heads by name: each head module registers its class where it is defined
(``@HEADS.register(name)``, :mod:`.registry`); importing this package imports them all, so
:data:`HEADS` holds every head and params validation (``fusion.head``) reads its names.

Every head maps a batch to M logits with ``forward``. A head may define
``training_loss(batch, targets, loss_fn)`` (multi-task heads: CentralNet, late
fusion) and may be untrainable (``trainable = False`` with ``fit(labels)``: naive).

A head maps a batch of cached features (``image_tokens``, ``image_pooled``,
``text_tokens``, ``text_mask``, ``text_pooled``, ``has_text``; with films ``plot_pooled``,
``has_plot`` and ``metadata``) to M genre logits.

Film inputs: a head registers the ones it *can* read (``reads=("plot", "metadata")``) or *must*
read (``requires=...``); :func:`head_config` resolves ``fusion.plot`` / ``fusion.metadata`` (``auto``:
read it when the data has it and the head can) into plain booleans in the config, so a checkpoint
records which modalities it reads.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from pipeline.core.errors import PipelineError
from pipeline.core.params import FusionParams
from pipeline.models.heads.centralnet import CentralNetHead
from pipeline.models.heads.cross_attention_fusion import CrossAttentionFusionHead
from pipeline.models.heads.gmu import GMUHead
from pipeline.models.heads.late_fusion import LateFusionHead
from pipeline.models.heads.naive import NaiveHead
from pipeline.models.heads.pooled import ConcatHead, LinearProbe, SingleModalityHead, SumHead, VisioTextualHead
from pipeline.models.heads.registry import HEADS

__all__ = [
    "HEADS", "CentralNetHead", "ConcatHead", "CrossAttentionFusionHead", "GMUHead", "LateFusionHead",
    "LinearProbe", "NaiveHead", "SingleModalityHead", "SumHead", "VisioTextualHead", "create_head", "head_config",
    "film_inputs",
]

#: The film inputs a head may read, and the width each needs in ``dims``.
FILM_INPUTS = {"plot": "plot_pooled_dim", "metadata": "metadata_dim"}


def film_inputs(head: str) -> tuple[set[str], set[str]]:
    """The film inputs ``head`` can read and those it must read."""
    meta = HEADS.meta(head)
    requires = set(meta.get("requires", ()))
    return set(meta.get("reads", ())) | requires, requires


def head_config(fusion: FusionParams, dims: dict[str, int], num_genres: int) -> dict[str, Any]:
    """Plain-data config of a head: the fusion params plus the feature widths, with ``plot`` and
    ``metadata`` resolved to whether the head reads them (one line naming the key when it cannot)."""
    config = {**fusion.model_dump(), **dims, "num_genres": num_genres}
    reads, requires = film_inputs(fusion.head)
    for name, width in FILM_INPUTS.items():
        want, have = config[name], dims.get(width, 0) > 0
        if name in requires:
            want = True
        if want == "auto":
            want = have and name in reads
        if want and name not in reads:
            raise PipelineError(f"fusion.{name}: the {fusion.head} head cannot read the film's {name} "
                                f"(heads that can: {', '.join(h for h in HEADS if name in film_inputs(h)[0])})")
        if want and not have:
            raise PipelineError(f"fusion.{name}: the {fusion.head} head reads the film's {name}, but there is "
                                f"none: set data.films (a films CSV or imdb)")
        config[name] = bool(want)
    return config


def create_head(config: dict[str, Any]) -> nn.Module:
    """The head ``config["head"]`` names (an old name, e.g. a checkpoint's ``mcam``, resolves too)."""
    return HEADS.get(config["head"])(config)
