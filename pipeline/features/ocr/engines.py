"""OCR engines by name (``ocr.engine``): one registry, like the encoders and heads.

An engine is created from :class:`OcrParams` and called on an RGB poster; every
engine returns the same record, so nothing downstream depends on which one read
the poster::

    {"texts": [str, ...], "confidences": [float, ...], "boxes": [[x1, y1, ..., x4, y4], ...]}

(boxes are four corner points, clockwise from top-left, as 8 ints in pixels of the
original image). Each engine also states its *identity*: the engine, its package
version, the sha256 of its model files and every setting that changes what is read.
The cache folder is named by it, so switching engines (or settings) never mixes
texts of two engines, and switching back finds the old texts again.

Each engine module registers its reader class where it is defined
(``@ENGINES.register(name)``): ``Reader(params, threads)`` reads, the static
``Reader.identity(params)`` states the identity. Importing an engine module is cheap:
its package (EasyOCR, RapidOCR) is imported when a reader or identity is made.
:mod:`pipeline.features.ocr` imports every engine module.

Engines run single-threaded when asked to (``threads=1``): the stage spreads
posters over worker processes instead, which measured faster on small posters
than intra-op threads, and keeps results identical however many workers run.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

from pipeline.core.errors import PipelineError
from pipeline.core.params import OcrParams
from pipeline.core.registry import Registry

#: A reader: RGB PIL image -> record (see the module docstring).
Reader = Callable[[Any], dict[str, list]]


class OcrSetupError(PipelineError, RuntimeError):
    pass


#: name -> reader class: ``Reader(params, threads)`` and the static ``Reader.identity(params)``.
ENGINES: Registry[Any] = Registry("ocr.engine")


def require(module: str, package: str):
    """Import an engine's package, or stop with one line naming what to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise OcrSetupError(f"OCR engine needs the package '{package}': pip install {package}") from None


def ocr_identity(params: OcrParams) -> dict[str, Any]:
    """Everything that decides what the chosen engine reads (names the cache folder)."""
    return ENGINES.get(params.engine).identity(params)


def create_reader(params: OcrParams, threads: int | None = None) -> Reader:
    """The chosen engine, ready to read; ``threads`` caps its CPU threads (None: its default)."""
    return ENGINES.get(params.engine)(params, threads)


def record(lines) -> dict[str, list]:
    """The common record from an engine's ``(box, text, confidence)`` lines (both engines return
    that triple); boxes as 4 (x, y) points in any numeric type."""
    lines = list(lines or [])
    return {
        "texts": [str(text) for _, text, _ in lines],
        "confidences": [float(conf) for _, _, conf in lines],
        "boxes": [[int(round(float(v))) for pt in box for v in pt] for box, _, _ in lines],
    }


def rgb_array(image) -> np.ndarray:
    return np.asarray(image.convert("RGB") if getattr(image, "mode", "RGB") != "RGB" else image)
