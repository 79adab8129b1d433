"""RapidOCR: PaddleOCR's PP-OCRv4 detector and recogniser, run by ONNX Runtime.

The ONNX files ship inside the ``rapidocr-onnxruntime`` wheel, so nothing is
downloaded at run time. The 0/180 degree direction classifier is off by default
(posters are upright; it costs time). Images are handed over as BGR arrays, the
channel order the PP-OCR models were trained on (OpenCV's).

ONNX Runtime runs on the CPU here; ``ocr.device`` does not apply (the
``onnxruntime-gpu`` build would be needed for CUDA).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.io import sha256_file
from pipeline.core.params import OcrParams
from pipeline.features.ocr.engines import ENGINES, record, require, rgb_array

DET_MODEL = "ch_PP-OCRv4_det_infer.onnx"
REC_MODEL = "ch_PP-OCRv4_rec_infer.onnx"
CLS_MODEL = "ch_ppocr_mobile_v2.0_cls_infer.onnx"


def _models_dir() -> Path:
    rapidocr = require("rapidocr_onnxruntime", "rapidocr-onnxruntime")
    return Path(rapidocr.__file__).parent / "models"


def identity(params: OcrParams) -> dict[str, Any]:
    from importlib.metadata import version

    require("rapidocr_onnxruntime", "rapidocr-onnxruntime")
    s = params.rapidocr
    models = [DET_MODEL, REC_MODEL] + ([CLS_MODEL] if s.use_cls else [])
    return {
        "engine": "rapidocr",
        "version": version("rapidocr-onnxruntime"),
        "onnxruntime": version("onnxruntime"),
        "models": {m: sha256_file(_models_dir() / m) for m in models},
        **s.model_dump(),
    }


@ENGINES.register("rapidocr")
class Reader:
    """A RapidOCR engine configured from ``ocr.rapidocr``; call it on an RGB image."""

    identity = staticmethod(identity)  # Reader.identity(params): what the registry's users call

    def __init__(self, params: OcrParams, threads: int | None = None):
        rapidocr = require("rapidocr_onnxruntime", "rapidocr-onnxruntime")
        s = params.rapidocr
        n = -1 if threads is None else int(threads)
        self.engine = rapidocr.RapidOCR(
            use_cls=s.use_cls,
            text_score=s.text_score,
            det_limit_side_len=s.det_limit_side_len,
            det_limit_type=s.det_limit_type,
            det_thresh=s.det_thresh,
            det_box_thresh=s.box_thresh,
            det_unclip_ratio=s.unclip_ratio,
            intra_op_num_threads=n,
            inter_op_num_threads=n,
        )
        self.settings = s

    def __call__(self, image) -> dict[str, list]:
        bgr = np.ascontiguousarray(rgb_array(image)[:, :, ::-1])
        s = self.settings
        result, _ = self.engine(bgr, box_thresh=s.box_thresh, unclip_ratio=s.unclip_ratio, text_score=s.text_score)
        return record(result)
