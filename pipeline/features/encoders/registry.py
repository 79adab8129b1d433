"""The registries of frozen encoders (``encoder.name``): each encoder module registers its image and
its text encoder under the same name, where they are defined (``@IMAGE_ENCODERS.register(name)``,
``@TEXT_ENCODERS.register(name)``); :mod:`pipeline.features.encoders` imports them all."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pipeline.core.registry import Registry

if TYPE_CHECKING:
    from pipeline.core.params import EncoderParams
    from pipeline.features.encoders.base import ImageEncoder, TextEncoder

#: name -> image encoder class, built from :class:`EncoderParams`.
IMAGE_ENCODERS: Registry[Callable[[EncoderParams], ImageEncoder]] = Registry("encoder.name")
#: name -> text encoder class (the same names: every encoder reads both modalities).
TEXT_ENCODERS: Registry[Callable[[EncoderParams], TextEncoder]] = Registry("encoder.name")
