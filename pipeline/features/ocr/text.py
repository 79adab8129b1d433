"""The text that reaches the text encoder: an OCR record's lines in reading order.

Two choices, both measured on the shared posters (README, "Reading the words"):

* **Reading order.** Lines are grouped into rows when their vertical centres are
  closer than half the median line height, rows are read top to bottom and each
  row left to right, whatever order the engine returned them in. Both engines
  return lines (EasyOCR's word groups, PP-OCR's text lines), so one rule fits both.
* **Joined words.** PP-OCRv4's recogniser (RapidOCR) is trained mostly on Chinese
  and often drops the spaces of English lines ("There'sonlyonewayto"). With
  ``ocr.split_words`` such runs are split back into words with ``wordninja``
  (English Wikipedia unigram frequencies, shipped in the wheel): on 423 shared
  posters this raised RapidOCR's every-title-word recall from 44% to 64%.
  ``auto`` splits for engines whose recogniser drops spaces (rapidocr) and leaves
  EasyOCR's text as it is read. Tokens shorter than ``SPLIT_MIN_LETTERS`` letters
  are left alone (short words rarely hide two).

Case is kept: both text encoders lower-case their input themselves.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np
import polars as pl

from pipeline.core.params import OcrParams

#: Engines whose recogniser drops the spaces between English words (``split_words: auto``).
DROPS_SPACES = {"rapidocr"}
#: A whitespace token is split only when it has at least this many letters.
SPLIT_MIN_LETTERS = 6
_LETTERS = re.compile(r"[A-Za-z]")


def splits_words(params: OcrParams) -> bool:
    """Whether ``ocr.split_words`` splits joined words for the chosen engine."""
    if params.split_words == "auto":
        return params.engine in DROPS_SPACES
    return bool(params.split_words)


def split_joined_words(text: str) -> str:
    """``"There'sonlyonewayto stop"`` -> ``"There's only one way to stop"``.

    wordninja drops punctuation inside a token it splits; a token it leaves whole
    keeps it."""
    import wordninja

    out = []
    for token in text.split():
        if len(_LETTERS.findall(token)) >= SPLIT_MIN_LETTERS:
            words = wordninja.split(token)
            out.append(" ".join(words) if len(words) > 1 else token)
        else:
            out.append(token)
    return " ".join(out)


def poster_text(texts: list[str], boxes: list[list[int]], confidences: list[float], min_confidence: float,
                split_words: bool = False) -> str:
    """The text a poster shows, in reading order (see the module docstring)."""
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
    text = " ".join(items[i][0].strip() for i in order)
    return split_joined_words(text) if split_words else text


def ocr_records(ocr: pl.DataFrame) -> Iterator[tuple[str, list[str], list[list[int]], list]]:
    """``(key, texts, boxes, confidences)`` of each row of an OCR table (``key``, ``texts``, ``confidences``,
    ``boxes``), as :func:`poster_text` takes them. Confidences stored as float32 (the OCR Parquet) come as
    ``np.float32``, so ``ocr.min_confidence`` is compared with them in float32, as it always has been."""
    float32 = ocr.schema["confidences"] == pl.List(pl.Float32)
    for key, texts, boxes, confidences in ocr.select("key", "texts", "boxes", "confidences").iter_rows():
        yield key, texts, boxes, (list(np.asarray(confidences, dtype=np.float32)) if float32 else confidences)


def ocr_texts(ocr: pl.DataFrame, params: OcrParams) -> pl.DataFrame:
    """Poster key -> the text its OCR record gives (``ocr.min_confidence``, ``ocr.split_words``): ``key``,
    ``text``, sorted by key (stable). ``ocr`` is an OCR table (``key``, ``texts``, ``confidences``, ``boxes``)."""
    split = splits_words(params)
    texts = [poster_text(lines, boxes, confidences, params.min_confidence, split)
             for _, lines, boxes, confidences in ocr_records(ocr)]
    return pl.DataFrame({"key": ocr["key"], "text": pl.Series(texts, dtype=pl.String)}).sort("key", maintain_order=True)
