import numpy as np
import polars as pl
import pytest

from pipeline.core.params import OcrParams
from pipeline.features.cache import ArrayCache, RecordCache
from pipeline.features.ocr import run_ocr
from tests.factories import write_poster


class CountingReader:
    """Stands in for EasyOCR: 'reads' the poster's mean colour, counts calls."""

    calls = 0
    fail_after = None

    def __init__(self, params):
        pass

    def __call__(self, image):
        CountingReader.calls += 1
        if CountingReader.fail_after is not None and CountingReader.calls > CountingReader.fail_after:
            raise KeyboardInterrupt
        mean = int(np.asarray(image).mean())
        return {"texts": [f"mean {mean}"], "confidences": [0.9], "boxes": [[0, 0, 10, 0, 10, 5, 0, 5]]}


def _posters(folder, n, start=0):
    rows = []
    from pipeline.data.images import read_poster

    for i in range(start, start + n):
        p = folder / f"p{i}.png"
        write_poster(p, (i * 7 % 255, 0, 0), (64, 96))
        rows.append({"path": str(p), "sha256": read_poster(p)[1].sha256})
    return pl.DataFrame(rows)


def test_array_cache_roundtrip_any_order(tmp_path):
    cache = ArrayCache("t", {"a": 1}, root=tmp_path)
    cache.put(["k1", "k2"], {"x": np.array([[1, 2], [3, 4]], dtype=np.float16)})
    cache.put(["k3"], {"x": np.array([[5, 6]], dtype=np.float16)})
    fresh = ArrayCache("t", {"a": 1}, root=tmp_path)  # re-reads parts from disk
    got = fresh.get(["k3", "k1", "k2", "k1"], ["x"])["x"]
    np.testing.assert_array_equal(got, [[5, 6], [1, 2], [3, 4], [1, 2]])
    assert fresh.missing(["k1", "k4", "k4"]) == ["k4"]
    assert ArrayCache("t", {"a": 2}, root=tmp_path).missing(["k1"]) == ["k1"]  # other identity, other folder


def test_record_cache_roundtrip(tmp_path):
    cache = RecordCache("r", {"v": 1}, root=tmp_path)
    cache.put(["a", "b"], [{"texts": ["x"]}, {"texts": []}])
    got = RecordCache("r", {"v": 1}, root=tmp_path).get(["b", "a"])
    assert got["key"].to_list() == ["b", "a"] and got["texts"].to_list() == [[], ["x"]]


def test_record_cache_schema_types_a_part_of_empty_lists(tmp_path):
    """Without the schema a part whose posters all read no text stores lists of nulls; with it, strings."""
    import pyarrow as pa

    schema = pa.schema([("texts", pa.list_(pa.string()))])
    cache = RecordCache("r", {"v": 1}, root=tmp_path, schema=schema)
    cache.put(["a"], [{"texts": []}])
    cache.put(["b"], [{"texts": ["x"]}])
    got = RecordCache("r", {"v": 1}, root=tmp_path, schema=schema).get(["a", "b"])
    assert got.schema["texts"] == pl.List(pl.String) and got["texts"].to_list() == [[], ["x"]]


def test_second_run_computes_nothing_and_new_poster_costs_one(tmp_path):
    posters = _posters(tmp_path, 5)
    cache = RecordCache("ocr", {"test": 1}, root=tmp_path / "c")
    CountingReader.calls = 0
    t1, r1 = run_ocr(posters, OcrParams(checkpoint_every=2), cache, CountingReader)
    assert CountingReader.calls == 5 and r1["computed"] == 5
    t2, r2 = run_ocr(posters, OcrParams(), RecordCache("ocr", {"test": 1}, root=tmp_path / "c"), CountingReader)
    assert CountingReader.calls == 5 and r2["from_cache"] == 5
    assert t1.equals(t2)
    more = pl.concat([posters, _posters(tmp_path, 1, start=5)])
    _, r3 = run_ocr(more, OcrParams(), RecordCache("ocr", {"test": 1}, root=tmp_path / "c"), CountingReader)
    assert CountingReader.calls == 6 and r3["computed"] == 1 and r3["from_cache"] == 5


def test_interrupted_run_resumes_where_it_stopped(tmp_path):
    posters = _posters(tmp_path, 7)
    CountingReader.calls = 0
    CountingReader.fail_after = 5  # dies on the 6th poster
    with pytest.raises(KeyboardInterrupt):
        run_ocr(posters, OcrParams(checkpoint_every=2), RecordCache("ocr", {"t": 2}, root=tmp_path / "c"),
                CountingReader)
    CountingReader.fail_after = None
    CountingReader.calls = 0
    cache = RecordCache("ocr", {"t": 2}, root=tmp_path / "c")
    _, rep = run_ocr(posters, OcrParams(checkpoint_every=2), cache, CountingReader)
    assert rep["from_cache"] == 4 and CountingReader.calls == 3  # two full parts of 2 survived


def test_unreadable_poster_is_reported_not_fatal(tmp_path):
    posters = _posters(tmp_path, 2)
    (tmp_path / "p1.png").write_bytes(b"not a png any more")
    table, rep = run_ocr(posters, OcrParams(), RecordCache("ocr", {"t": 3}, root=tmp_path / "c"), CountingReader)
    assert len(table) == 1 and len(rep["failed"]) == 1 and rep["failed"][0]["reason"] == "not_an_image"
