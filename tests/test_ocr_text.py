"""The OCR table (Polars) to the text that reaches the encoder: sorted by key, confidences compared as stored."""

import polars as pl

from pipeline.core.params import OcrParams
from pipeline.features.ocr import ocr_texts, read_quality

BOX = [0, 0, 10, 0, 10, 5, 0, 5]


def _ocr(keys, texts, confidences, dtype=pl.Float32) -> pl.DataFrame:
    return pl.DataFrame({
        "key": keys, "texts": texts,
        "confidences": pl.Series(confidences, dtype=pl.List(dtype)),
        "boxes": pl.Series([[BOX] * len(t) for t in texts], dtype=pl.List(pl.List(pl.Int32))),
    })


def test_ocr_texts_sorted_by_key_with_empty_records():
    table = _ocr(["c", "a", "b"], [["THIRD"], [], ["SECOND", "LINE"]], [[0.9], [], [0.8, 0.1]])
    out = ocr_texts(table, OcrParams(engine="easyocr", min_confidence=0.5))
    assert out.schema == {"key": pl.String, "text": pl.String}
    assert out.rows() == [("a", ""), ("b", "SECOND"), ("c", "THIRD")]
    assert ocr_texts(table.clear(), OcrParams(engine="easyocr")).schema == out.schema


def test_min_confidence_compares_in_float32_as_stored():
    """A line the engine scored 0.7 is stored as float32 0.69999999; ocr.min_confidence 0.7 keeps it
    (compared in float32, as the OCR Parquet holds it), while a Python float just under 0.7 is dropped."""
    params = OcrParams(engine="easyocr", min_confidence=0.7)
    assert ocr_texts(_ocr(["k"], [["KEPT"]], [[0.7]]), params)["text"].to_list() == ["KEPT"]
    assert ocr_texts(_ocr(["k"], [["GONE"]], [[0.6999999]], pl.Float64), params)["text"].to_list() == [""]


def test_read_quality_judges_each_image_once():
    table = _ocr(["a", "b"], [["STAND BY ME"], []], [[0.9], []])
    posters = pl.DataFrame({"sha256": ["a", "a", "b", "c"], "title": ["Stand by Me", "Other Title", "Heat", "None"]})
    q = read_quality(posters, table)
    assert q["posters"] == 2 and q["no_text"] == 0.5
    # "a" counted once, under its first row's title; "c" has no OCR record
    assert q["title_recall"]["posters_with_title_words"] == 2 and q["title_recall"]["word_all"] == 0.5
