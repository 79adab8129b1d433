"""What a trained head's checkpoint holds: one typed record, read in models, scoring, evaluation and the stages.

The checkpoint stays plain data on disk (``torch.save`` of a dict, loaded with ``weights_only=True``), so this
is a :class:`~typing.TypedDict`: the keys, their types and what each means, checked by a type checker, with
the same bytes on disk as a dict (key order is the order they are set: see
:func:`pipeline.models.checkpoint.make_checkpoint`).
"""

from __future__ import annotations

from typing import Any, TypedDict

HEAD_FORMAT = "poster-genres/head@1"


class HeadCheckpoint(TypedDict, total=False):
    format: str  #: :data:`HEAD_FORMAT`
    head_config: dict[str, Any]  #: the head's plain-data config (``create_head`` builds it)
    genres: list[str]  #: the order of the head's outputs
    state_dict: dict[str, Any]  #: the weights of the best epoch
    best_epoch: int
    best_val_loss: float
    features: dict[str, dict[str, Any]]  #: kind (image, text, plot) -> the encoder identity it was trained on
    modalities: list[str]  #: what it reads: image and text, then plot and metadata
    metadata_spec: dict[str, Any]  #: the metadata vector fitted on the training films (heads that read it)
    decisions: dict[str, dict[str, Any]]  #: input pattern -> its Decision (calibration, rule, validation figures)
    # written by earlier versions, still read: one rule for every film, and its calibration
    decision_rule: dict[str, Any]
    decision_rule_validation: dict[str, Any]
    calibration: dict[str, Any]
