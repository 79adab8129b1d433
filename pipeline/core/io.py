"""Atomic, deterministic writers and content hashing.

Every output goes to a temporary file in the destination folder and is then
renamed over the target, so an interrupted stage leaves the last good output.
Writers avoid anything that varies between runs (timestamps, dict order), so
the same inputs give byte-identical files and DVC never re-runs downstream
stages for nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
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


def write_csv(path: str | Path, table: pd.DataFrame) -> None:
    write_text(path, table.to_csv(index=False, lineterminator="\n"))


def write_parquet(path: str | Path, table: pd.DataFrame | pa.Table) -> None:
    """Write Parquet atomically; no pandas index, no per-run metadata."""
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def read_parquet(path: str | Path) -> pd.DataFrame:
    return pq.read_table(path).to_pandas()
