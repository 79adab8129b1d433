"""The registry of fusion heads (``fusion.head``): each head module registers its class(es) where it
is defined, with ``@HEADS.register(name)``; :mod:`pipeline.models.heads` imports them all."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from pipeline.core.registry import Registry

#: name -> class built from a head config (plain data, see :func:`pipeline.models.heads.head_config`).
HEADS: Registry[Callable[[dict], nn.Module]] = Registry("fusion.head")
