"""Atomic, deterministic writers and content hashing.

Every output goes to a temporary file in the destination folder and is then
renamed over the target, so an interrupted stage leaves the last good output.
Writers avoid anything that varies between runs (timestamps, dict order), so
the same inputs give byte-identical files and DVC never re-runs downstream
stages for nothing.

Tables are Polars DataFrames; Parquet goes through PyArrow with fixed settings
(:data:`PARQUET_OPTIONS`), a Polars frame without schema metadata, so the same
table always gives the same bytes.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

T = TypeVar("T")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def seeded_order(items: Iterable[T], seed: int, key: Callable[[T], str] = str) -> list[T]:
    """``items`` sorted by ``sha256(f"{seed}:{key(item)}")``: the seeded order in which ``data.limit``
    takes films (ingest, a scrape from a CSV, IMDb's balanced sample), written once here.

    Why a hash and not a shuffle: which of two items comes first depends only on the seed and their
    own keys, never on the order the items came in or on any RNG state, so the order is the same on
    every machine and run, and new items never reorder the old ones. Taking the first ``limit`` items
    of it is deterministic, and raising the limit only adds items (a scrape then fetches only the
    new films). Keys are ids, unique, so there are no ties.
    """
    return sorted(items, key=lambda item: sha256_bytes(f"{seed}:{key(item)}".encode()))


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def stable_hash(obj: Any) -> str:
    """sha256 of the canonical JSON of ``obj`` (sorted keys): a cache key for settings."""
    return sha256_bytes(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode())


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` on success only."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o644)  # mkstemp makes 0600; outputs are ordinary files
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_json(path: str | Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _csv_cell(value: Any, float32: bool) -> str:
    """A CSV field as the project has always written it: floats in their shortest exact form
    (``1e-05``, ``0.1``, ``100.0``), a missing value or NaN as an empty field, booleans ``True``/``False``."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return str(np.float32(value)) if float32 else repr(value)
    return str(value)


def write_csv(path: str | Path, table: pl.DataFrame) -> None:
    """Write ``table`` as CSV atomically: header, ``\\n`` line ends, minimal quoting (Python's csv)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(table.columns)
    float32 = [dtype == pl.Float32 for dtype in table.dtypes]
    for row in table.iter_rows():
        writer.writerow([_csv_cell(v, f) for v, f in zip(row, float32)])
    write_text(path, buf.getvalue())


#: Every Parquet file is written with these settings (pyarrow's defaults of 2024, named so that a
#: new pyarrow cannot change them): zstd level 1, row groups of up to 1 Mi rows, format 2.6.
PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 1,
    "row_group_size": 1 << 20,
    "data_page_size": 1 << 20,
    "version": "2.6",
    "data_page_version": "1.0",
    "use_dictionary": True,
    "write_statistics": True,
    "store_schema": True,
}


def arrow_table(table: pl.DataFrame | pa.Table) -> pa.Table:
    """``table`` as the Arrow table :func:`write_parquet` writes. A Polars frame is exported at Polars' oldest
    compatibility level (``large_string``, ``large_list``: the Arrow types of the files pandas wrote before, and
    the same whatever the Polars version), without schema metadata; an Arrow table is written as it is."""
    if isinstance(table, pl.DataFrame):
        return table.to_arrow(compat_level=pl.CompatLevel.oldest())
    if isinstance(table, pa.Table):
        return table
    raise TypeError(f"write_parquet: expected a polars DataFrame or a pyarrow Table, not {type(table).__name__}")


def write_parquet(path: str | Path, table: pl.DataFrame | pa.Table) -> None:
    """Write Parquet atomically and deterministically (:data:`PARQUET_OPTIONS`, no timestamps):
    the same table gives byte-identical files."""
    table = arrow_table(table)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, **PARQUET_OPTIONS)


def read_parquet(path: str | Path) -> pl.DataFrame:
    """A Parquet file as a Polars DataFrame (read through PyArrow, so any file pyarrow writes reads back)."""
    return pl.from_arrow(pq.read_table(path))


def read_csv(path: str | Path) -> pl.DataFrame:
    """A CSV file (a header row, then one row per record) as a Polars DataFrame of strings, exactly as
    written: no type inference, no whitespace trimmed, an empty or missing field is ``""``, fields beyond
    the header ignored; a UTF-8 byte-order mark is dropped, and so are blank lines (a row whose every field
    is empty), as Python's csv module does. An empty file gives a frame without columns.

    Raises ``UnicodeDecodeError`` for a file that is not UTF-8, :class:`CsvError` (one line) for one
    that is not CSV (a stray quote inside an unquoted field, an unterminated quoted field)."""
    data = Path(path).read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    data.decode("utf-8")  # UnicodeDecodeError (with its reason) before Polars sees the bytes
    try:
        table = pl.read_csv(data, infer_schema=False, empty_string_is_null=False, truncate_ragged_lines=True,
                            raise_if_empty=False)
    except pl.exceptions.PolarsError as err:
        raise CsvError(str(err).strip().splitlines()[0]) from None
    if not table.width:
        return table
    return table.filter(pl.any_horizontal(pl.all() != ""))


class CsvError(ValueError):
    """A file that cannot be read as CSV (the message says why, in one line)."""
