"""Content-addressed, resumable feature cache.

A cache is a folder named by the hash of an *identity* (everything that
determines the result: model, weights, preprocessing, settings). Inside, results
are stored in immutable *parts*, each written atomically once a batch of posters
is done, keyed by the poster's sha256. So:

* a second run over the same posters computes nothing;
* adding posters computes only the new ones;
* an interrupted run loses at most the batch in flight and resumes from there;
* changing any part of the identity uses a different folder, so features of two
  encoders (or two OCR settings) can never be mixed.

Two kinds of part: :class:`ArrayCache` (HDF5, fixed-shape float16 arrays per
key) and :class:`RecordCache` (Parquet, one row of any columns per key).

The cache root is ``$POSTER_GENRES_CACHE`` or ``.cache/`` under the working
folder: it is not a DVC output (DVC deletes outputs before re-running a stage,
which would defeat the cache), and it is not a parameter, because moving the
cache must not invalidate any stage.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.core.io import atomic_path, stable_hash, write_json


def cache_root() -> Path:
    return Path(os.environ.get("POSTER_GENRES_CACHE", ".cache"))


class _PartCache:
    suffix = ""

    def __init__(self, kind: str, identity: dict[str, Any], root: str | Path | None = None):
        self.identity = identity
        self.key = stable_hash(identity)
        self.dir = Path(root or cache_root()) / kind / self.key[:20]
        self.dir.mkdir(parents=True, exist_ok=True)
        ident = self.dir / "identity.json"
        if not ident.exists():
            write_json(ident, identity)
        self._index: dict[str, tuple[Path, int]] | None = None

    def parts(self) -> list[Path]:
        return sorted(self.dir.glob(f"part-*{self.suffix}"))

    def _part_keys(self, part: Path) -> list[str]:
        raise NotImplementedError

    def index(self) -> dict[str, tuple[Path, int]]:
        """key -> (part, row). Built once per instance, updated as parts are written."""
        if self._index is None:
            self._index = {}
            for part in self.parts():
                try:
                    keys = self._part_keys(part)
                except Exception:  # a part damaged outside our atomic writes: recompute it
                    continue
                for row, k in enumerate(keys):
                    self._index.setdefault(k, (part, row))
        return self._index

    def missing(self, keys: Iterable[str]) -> list[str]:
        """Keys not yet cached, de-duplicated, in first-seen order."""
        have = self.index()
        out, seen = [], set()
        for k in keys:
            if k not in have and k not in seen:
                seen.add(k)
                out.append(k)
        return out

    def _part_path(self, keys: list[str]) -> Path:
        return self.dir / f"part-{stable_hash(keys)[:24]}{self.suffix}"


class ArrayCache(_PartCache):
    """Fixed-shape arrays per key, stored as HDF5 parts."""

    suffix = ".h5"

    def _part_keys(self, part: Path) -> list[str]:
        with h5py.File(part, "r") as f:
            return [k.decode() for k in f["keys"][()]]

    def put(self, keys: list[str], arrays: dict[str, np.ndarray]) -> None:
        if not keys:
            return
        path = self._part_path(keys)
        with atomic_path(path) as tmp:
            with h5py.File(tmp, "w", track_order=True) as f:
                f.create_dataset("keys", data=np.array([k.encode() for k in keys]), track_times=False)
                for name, arr in arrays.items():
                    if len(arr) != len(keys):
                        raise ValueError(f"array {name} has {len(arr)} rows for {len(keys)} keys")
                    f.create_dataset(name, data=arr, track_times=False)
        index = self.index()
        for row, k in enumerate(keys):
            index.setdefault(k, (path, row))

    def get(self, keys: list[str], names: list[str]) -> dict[str, np.ndarray]:
        """Arrays for ``keys`` in that order (every key must be cached)."""
        index = self.index()
        by_part: dict[Path, list[tuple[int, int]]] = {}
        for i, k in enumerate(keys):
            part, row = index[k]
            by_part.setdefault(part, []).append((i, row))
        out: dict[str, np.ndarray] = {}
        for part, pairs in sorted(by_part.items()):
            dst = np.array([i for i, _ in pairs])
            # h5py fancy indexing needs increasing, unique rows
            rows, inverse = np.unique(np.array([r for _, r in pairs]), return_inverse=True)
            with h5py.File(part, "r") as f:
                for name in names:
                    ds = f[name]
                    if name not in out:
                        out[name] = np.empty((len(keys), *ds.shape[1:]), dtype=ds.dtype)
                    out[name][dst] = ds[rows][inverse]
        return out


class RecordCache(_PartCache):
    """One row of arbitrary (Arrow-typed) columns per key, stored as Parquet parts.

    ``schema`` (the columns besides ``key``) fixes the types, so a part whose lists all
    happen to be empty still reads back as lists of strings, not of nulls."""

    suffix = ".parquet"

    def __init__(self, kind: str, identity: dict[str, Any], root: str | Path | None = None,
                 schema: pa.Schema | None = None):
        super().__init__(kind, identity, root)
        self.schema = None if schema is None else pa.schema([pa.field("key", pa.string()), *schema])

    def _part_keys(self, part: Path) -> list[str]:
        return pq.read_table(part, columns=["key"]).column("key").to_pylist()

    def put(self, keys: list[str], records: list[dict[str, Any]]) -> None:
        if not keys:
            return
        rows = [{"key": k, **r} for k, r in zip(keys, records, strict=True)]
        path = self._part_path(keys)
        with atomic_path(path) as tmp:
            pq.write_table(pa.Table.from_pylist(rows, schema=self.schema), tmp)
        index = self.index()
        for row, k in enumerate(keys):
            index.setdefault(k, (path, row))

    def get(self, keys: list[str]) -> pl.DataFrame:
        """Rows for ``keys`` in that order (every key must be cached)."""
        index = self.index()
        needed = sorted({index[k][0] for k in keys})
        offsets, tables, start = {}, [], 0
        for part in needed:
            table = pq.read_table(part)
            if self.schema is not None:
                table = table.select(self.schema.names).cast(self.schema)
            offsets[part] = start
            start += table.num_rows
            tables.append(table)
        if not tables:
            return pl.from_arrow(self.schema.empty_table()) if self.schema is not None else pl.DataFrame()
        merged = pa.concat_tables(tables, promote_options="permissive")
        rows = pa.array([offsets[index[k][0]] + index[k][1] for k in keys], type=pa.int64())
        return pl.from_arrow(merged.take(rows))


def describe(root: str | Path | None = None) -> list[dict[str, Any]]:
    """What is in the cache: one entry per identity folder (for ``features`` CLI)."""
    root = Path(root or cache_root())
    out = []
    for ident in sorted(root.glob("*/*/identity.json")):
        folder = ident.parent
        parts = sorted(p for p in folder.glob("part-*") if not p.name.endswith(".tmp"))
        out.append({
            "kind": folder.parent.name,
            "folder": str(folder),
            "identity": json.loads(ident.read_text()),
            "parts": len(parts),
            "bytes": sum(p.stat().st_size for p in parts),
        })
    return out
