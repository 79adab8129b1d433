"""Tables on disk: Parquet through Polars/PyArrow, written atomically and byte for byte the same; CSV in and out."""

import csv
import io

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.core.io import CsvError, read_csv, read_parquet, write_csv, write_parquet


def _table(n=50) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    return pl.DataFrame({
        "key": [f"k{i:03d}" for i in range(n)],
        "year": pl.Series([2000 + i if i % 7 else None for i in range(n)], dtype=pl.Int64),
        "score": rng.random(n).astype(np.float32),
        "y": rng.integers(0, 2, n).astype(np.int8),
        "texts": [[f"line {j}" for j in range(i % 3)] for i in range(n)],
        "boxes": pl.Series([[[j] * 8 for j in range(i % 3)] for i in range(n)], dtype=pl.List(pl.List(pl.Int32))),
        "flag": [i % 2 == 0 for i in range(n)],
    })


def test_write_parquet_is_deterministic_and_round_trips(tmp_path):
    table = _table()
    write_parquet(tmp_path / "a.parquet", table)
    write_parquet(tmp_path / "b.parquet", table.clone())
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    back = read_parquet(tmp_path / "a.parquet")
    assert isinstance(back, pl.DataFrame) and back.equals(table) and back.schema == table.schema
    # Polars' oldest Arrow types (large_string, large_list) whatever its version; no schema metadata
    schema = pq.read_schema(tmp_path / "a.parquet")
    assert schema.field("key").type == pa.large_string() and schema.field("year").type == pa.int64()
    assert schema.field("texts").type == pa.large_list(pa.large_string()) and schema.metadata is None
    assert schema.field("boxes").type == pa.large_list(pa.large_list(pa.int32()))
    assert not list(tmp_path.glob(".*.tmp"))


def test_write_parquet_takes_an_arrow_table_and_gives_the_same_bytes(tmp_path):
    table = _table()
    write_parquet(tmp_path / "pl.parquet", table)
    write_parquet(tmp_path / "pa.parquet", table.to_arrow(compat_level=pl.CompatLevel.oldest()))
    assert (tmp_path / "pl.parquet").read_bytes() == (tmp_path / "pa.parquet").read_bytes()
    schema = pa.schema([("key", pa.string()), ("confidences", pa.list_(pa.float32()))])
    arrow = pa.table({"key": ["a", "b"], "confidences": [[0.5], []]}, schema=schema)
    write_parquet(tmp_path / "ocr.parquet", arrow)
    assert pq.read_schema(tmp_path / "ocr.parquet").equals(schema)
    assert read_parquet(tmp_path / "ocr.parquet").schema == {"key": pl.String, "confidences": pl.List(pl.Float32)}
    with pytest.raises(TypeError, match="polars DataFrame or a pyarrow Table"):
        write_parquet(tmp_path / "x.parquet", {"key": ["a"]})


def test_write_parquet_empty_table_keeps_its_types(tmp_path):
    empty = _table().clear()
    write_parquet(tmp_path / "e.parquet", empty)
    assert read_parquet(tmp_path / "e.parquet").schema == empty.schema


def test_write_csv_writes_floats_in_their_shortest_form(tmp_path):
    table = pl.DataFrame({
        "method": ["a,b", 'say "hi"', "", "x"],
        "f1": [1e-05, 0.1, float("nan"), 100.0],
        "n": [1, 2, 3, None],
        "p32": pl.Series([0.1, 0.25, 1.0, 3.0], dtype=pl.Float32),
    })
    write_csv(tmp_path / "t.csv", table)
    assert (tmp_path / "t.csv").read_text() == (
        'method,f1,n,p32\n"a,b",1e-05,1,0.1\n"say ""hi""",0.1,2,0.25\n,,3,1.0\nx,100.0,,3.0\n')


@pytest.mark.parametrize("text", [
    "a,b\n1,2\n",
    "\ufeffa,b\n1,2\n",  # byte-order mark
    "a,b\r\n1,2\r\n",
    "a,b\n1,2\n\n3,4\n\n",  # blank lines
    'a,b\n"x, y",2\n"multi\nline",""\n',
    "a,b,c\n1,2\n",  # a short row: missing fields are empty
    "a,b\n1,2,3\n",  # fields past the header are dropped
    "a,b\n 1 , 2 \n",  # no trimming
    "a,b\n",
    "",
])
def test_read_csv_reads_what_pythons_csv_reads(tmp_path, text):
    (tmp_path / "f.csv").write_bytes(text.encode())
    expected = [{k: v or "" for k, v in row.items() if k is not None}
                for row in csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline=""))]
    table = read_csv(tmp_path / "f.csv")
    assert table.to_dicts() == expected
    assert all(dtype == pl.String for dtype in table.dtypes)


def test_read_csv_errors(tmp_path):
    (tmp_path / "q.csv").write_text('a,b\n1,2\n12" Single,3\n')
    with pytest.raises(CsvError):
        read_csv(tmp_path / "q.csv")
    (tmp_path / "l.csv").write_bytes(b"a,b\n\xe9t\xe9,1\n")
    with pytest.raises(UnicodeDecodeError):
        read_csv(tmp_path / "l.csv")



def test_progress_rate_is_over_the_run_so_far_not_the_last_burst():
    """Results of a pool arrive in bursts: 8 posters landing at once one second in is 8 posters/s, not
    rich's own speed over the last updates (a Ray run of 8 posters showed 155462.28 posters/s)."""
    from types import SimpleNamespace

    from pipeline.core.progress import progress_bar

    rate = progress_bar().columns[3]
    task = SimpleNamespace(completed=0, elapsed=0.5, finished=False, finished_time=None, speed=None)
    assert str(rate.render(task)) == "-- posters/s"  # nothing done yet
    task.completed, task.elapsed, task.speed = 8, 1.0, 155462.28
    assert str(rate.render(task)) == "8.00 posters/s"
    task.completed, task.finished, task.finished_time, task.elapsed = 16, True, 4.0, 9.0  # finished: its own time
    assert str(rate.render(task)) == "4.00 posters/s"
