"""RapidOCR: PaddleOCR's PP-OCRv4 detector and recogniser, run by ONNX Runtime or OpenVINO.

The same ONNX files ship inside the ``rapidocr-onnxruntime`` and ``rapidocr-openvino``
wheels (byte-identical; their sha256 is part of the identity), so nothing is
downloaded at run time. ``ocr.rapidocr.runtime`` picks what runs them, both on the CPU:

* ``onnxruntime``: f32;
* ``openvino`` (the default): at ``ocr.rapidocr.precision``. OpenVINO's CPU plugin would
  run ``bf16`` on CPUs with bfloat16 instructions (AVX512-BF16, AMX) and f32 elsewhere, so
  the same params would read different texts on different CPUs; the precision is set
  explicitly (``f32`` by default), and the identity records the precision that actually
  runs on this CPU, so texts read at bf16 never share a cache folder with texts read at
  f32. Measured on this project's 2-core machine (README, "Reading the words on a
  poster"): f32 reads the same texts as ONNX Runtime (confidences differ in the last
  bits) 1.3x faster; bf16 is 1.6x faster again but reads a letter differently here and
  there and finds title words on 0.2-0.4 points fewer posters of the shared set.

The 0/180 degree direction classifier is off by default (posters are upright; it
costs time). Images are handed over as BGR arrays, the channel order the PP-OCR
models were trained on (OpenCV's). ``ocr.device`` does not apply (the CUDA builds of
either runtime would be needed for a GPU).
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.io import sha256_file
from pipeline.core.params import OcrParams, RapidOcrSettings
from pipeline.features.ocr.engines import ENGINES, record, require, rgb_array

DET_MODEL = "ch_PP-OCRv4_det_infer.onnx"
REC_MODEL = "ch_PP-OCRv4_rec_infer.onnx"
CLS_MODEL = "ch_ppocr_mobile_v2.0_cls_infer.onnx"

#: runtime -> (RapidOCR's module, its PyPI package, the runtime's own package)
RUNTIMES = {
    "onnxruntime": ("rapidocr_onnxruntime", "rapidocr-onnxruntime", "onnxruntime"),
    "openvino": ("rapidocr_openvino", "rapidocr-openvino", "openvino"),
}


def _package(runtime: str):
    module, package, _ = RUNTIMES[runtime]
    return require(module, package)


def _models_dir(runtime: str) -> Path:
    return Path(_package(runtime).__file__).parent / "models"


def openvino_precision(requested: str) -> str:
    """The precision OpenVINO's CPU plugin runs when asked for ``requested``: bf16 only where the
    CPU has bfloat16 instructions (the plugin's ``BF16`` capability), else f32."""
    if requested == "f32":
        return "f32"
    require("openvino", "rapidocr-openvino")
    from openvino.runtime import Core

    return "bf16" if "BF16" in Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES") else "f32"


def identity(params: OcrParams) -> dict[str, Any]:
    s = params.rapidocr
    _, package, runtime_package = RUNTIMES[s.runtime]
    models_dir = _models_dir(s.runtime)
    models = [DET_MODEL, REC_MODEL] + ([CLS_MODEL] if s.use_cls else [])
    # runtime and precision stay out of the ONNX Runtime identity: it is the one of the texts read
    # before OpenVINO was supported, so their cache stays valid
    settings = s.model_dump(exclude={"runtime", "precision"})
    ident: dict[str, Any] = {"engine": "rapidocr", "version": version(package),
                             runtime_package: version(runtime_package)}
    if s.runtime == "openvino":
        ident |= {"runtime": "openvino", "precision": openvino_precision(s.precision)}
    return ident | {"models": {m: sha256_file(models_dir / m) for m in models}, **settings}


def _compile_openvino(engine: Any, models_dir: Path, threads: int | None, precision: str) -> None:
    """Recompile RapidOCR's OpenVINO sessions with an explicit precision (RapidOCR sets only the
    thread count, so the CPU plugin would pick bf16 or f32 by itself)."""
    from openvino.runtime import Core

    # no pinning: the CPU plugin pins its threads to cores from the first one, so the stage's
    # single-threaded worker processes all ran on core 0 (measured: 2 workers as fast as one)
    config = {"INFERENCE_PRECISION_HINT": precision, "ENABLE_CPU_PINNING": False}
    if threads:
        config["INFERENCE_NUM_THREADS"] = str(threads)
    sessions = [(engine.text_det.infer, DET_MODEL), (engine.text_rec.session, REC_MODEL),
                (engine.text_cls.infer, CLS_MODEL)]
    core = Core()
    for session, model in sessions:
        session.session = core.compile_model(core.read_model(str(models_dir / model)), "CPU", config) \
            .create_infer_request()


@ENGINES.register("rapidocr")
class Reader:
    """A RapidOCR engine configured from ``ocr.rapidocr``; call it on an RGB image."""

    identity = staticmethod(identity)  # Reader.identity(params): what the registry's users call

    def __init__(self, params: OcrParams, threads: int | None = None):
        s: RapidOcrSettings = params.rapidocr
        rapidocr = _package(s.runtime)
        n = -1 if threads is None else int(threads)
        threads_kwargs = ({"intra_op_num_threads": n, "inter_op_num_threads": n} if s.runtime == "onnxruntime"
                          else {"inference_num_threads": n})
        self.engine = rapidocr.RapidOCR(
            use_cls=s.use_cls,
            text_score=s.text_score,
            det_limit_side_len=s.det_limit_side_len,
            det_limit_type=s.det_limit_type,
            det_thresh=s.det_thresh,
            det_box_thresh=s.box_thresh,
            det_unclip_ratio=s.unclip_ratio,
            **threads_kwargs,
        )
        if s.runtime == "openvino":
            _compile_openvino(self.engine, _models_dir(s.runtime), threads, openvino_precision(s.precision))
        self.settings = s

    def __call__(self, image) -> dict[str, list]:
        bgr = np.ascontiguousarray(rgb_array(image)[:, :, ::-1])
        s = self.settings
        result, _ = self.engine(bgr, box_thresh=s.box_thresh, unclip_ratio=s.unclip_ratio, text_score=s.text_score)
        return record(result)
