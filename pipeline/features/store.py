"""The feature store: frozen embeddings as float16 HDF5 arrays with a Parquet index.

Layout of one feature file pair (``features/image.h5`` + ``features/image.parquet``):

* HDF5 datasets ``pooled`` (n, D_p), ``tokens`` (n, T, D_t) and, for text,
  ``mask`` (n, T) and ``has_text`` (n,); attribute ``identity`` is the encoder's
  full identity as JSON;
* Parquet index: ``key`` (poster sha256) -> ``row``, plus for text the embedded
  string.

Image features are cached by poster sha256; text features by the sha256 of the
embedded text itself, so posters that read the same (or OCR settings that read
the same) share an embedding, and changing OCR re-embeds only changed texts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from pipeline.core.errors import PipelineError
from pipeline.core.io import atomic_path, sha256_bytes, write_parquet
from pipeline.core.progress import progress_bar
from pipeline.data.images import PosterError, load_rgb
from pipeline.features.cache import ArrayCache
from pipeline.features.encoders import ImageEncoder, TextEncoder


class FeatureError(PipelineError):
    pass


@dataclass
class FeatureSet:
    keys: list[str]
    arrays: dict[str, np.ndarray]
    identity: dict[str, Any]
    index: pd.DataFrame

    def rows(self, keys: list[str]) -> np.ndarray:
        pos = dict(zip(self.keys, range(len(self.keys))))
        return np.array([pos[k] for k in keys], dtype=np.int64)


def _batched(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def embed_images(
    posters: pd.DataFrame, encoder: ImageEncoder, batch_size: int, cache: ArrayCache | None = None
) -> tuple[list[str], dict[str, np.ndarray], dict]:
    """Embed every unique poster (by sha256); unreadable posters are reported and left out."""
    cache = cache or ArrayCache("image", encoder.identity)
    unique = posters.drop_duplicates("sha256").sort_values("sha256", kind="mergesort")
    paths = dict(zip(unique["sha256"], unique["path"]))
    todo = cache.missing(unique["sha256"])
    failed: list[dict] = []
    if todo:
        with progress_bar() as bar:
            task = bar.add_task("embed-image", total=len(todo))
            for chunk in _batched(todo, batch_size):
                keys, images = [], []
                for key in chunk:
                    try:
                        images.append(load_rgb(paths[key], key))
                        keys.append(key)
                    except PosterError as err:
                        failed.append({"key": key, "path": paths[key], "reason": err.reason, "detail": str(err)})
                if keys:
                    out = encoder.encode(images)
                    cache.put(keys, {k: v.astype(np.float16) for k, v in out.items()})
                bar.advance(task, len(chunk))
    bad = {f["key"] for f in failed}
    keys = [k for k in unique["sha256"] if k not in bad]
    arrays = cache.get(keys, ["pooled", "tokens"]) if keys else {}
    report = {"posters": int(len(unique)), "computed": len(todo) - len(failed),
              "from_cache": int(len(unique) - len(todo)), "failed": failed}
    return keys, arrays, report


def text_key(text: str) -> str:
    return sha256_bytes(text.encode("utf-8"))


def embed_texts(
    texts: pd.DataFrame, encoder: TextEncoder, batch_size: int, cache: ArrayCache | None = None
) -> tuple[list[str], dict[str, np.ndarray], dict]:
    """Embed the text of every poster (``texts``: key, text); cached by the text's own sha256."""
    cache = cache or ArrayCache("text", encoder.identity)
    tkeys = [text_key(t) for t in texts["text"]]
    by_tkey = dict(zip(tkeys, texts["text"]))
    todo = cache.missing(tkeys)
    if todo:
        with progress_bar("texts") as bar:
            task = bar.add_task("embed-text", total=len(todo))
            for chunk in _batched(todo, batch_size):
                out = encoder.encode([by_tkey[k] for k in chunk])
                cache.put(chunk, {
                    "pooled": out["pooled"].astype(np.float16),
                    "tokens": out["tokens"].astype(np.float16),
                    "mask": out["mask"].astype(bool),
                })
                bar.advance(task, len(chunk))
    keys = texts["key"].tolist()
    arrays = cache.get(tkeys, ["pooled", "tokens", "mask"]) if keys else {}
    if keys:
        arrays["has_text"] = np.array([len(t) > 0 for t in texts["text"]], dtype=bool)
    report = {"posters": len(keys), "unique_texts": len(set(tkeys)), "computed": len(todo),
              "from_cache": len(set(tkeys)) - len(todo), "empty_texts": int(sum(t == "" for t in texts["text"]))}
    return keys, arrays, report


def write_features(
    h5_path: str | Path, index_path: str | Path, keys: list[str], arrays: dict[str, np.ndarray],
    identity: dict[str, Any], extra_index: dict[str, list] | None = None,
) -> None:
    """Write the feature pair atomically and deterministically (no timestamps, fixed order)."""
    if not keys:
        raise FeatureError(f"{h5_path}: no poster could be embedded")
    with atomic_path(h5_path) as tmp:
        with h5py.File(tmp, "w", track_order=True) as f:
            f.attrs["identity"] = json.dumps(identity, sort_keys=True)
            for name in sorted(arrays):
                arr = arrays[name]
                f.create_dataset(name, data=arr, track_times=False,
                                 chunks=(min(len(arr), 256), *arr.shape[1:]) if arr.ndim > 1 else None)
    index = pd.DataFrame({"key": keys, "row": np.arange(len(keys), dtype=np.int64), **(extra_index or {})})
    write_parquet(index_path, index)


def load_features(h5_path: str | Path, index_path: str | Path, names: list[str] | None = None) -> FeatureSet:
    """Read a feature pair fully into memory (float16 arrays stay float16)."""
    h5_path, index_path = Path(h5_path), Path(index_path)
    for p in (h5_path, index_path):
        if not p.exists():
            raise FeatureError(f"{p}: not found; run the embed stages first (dvc repro)")
    index = pd.read_parquet(index_path)
    with h5py.File(h5_path, "r") as f:
        identity = json.loads(f.attrs["identity"])
        arrays = {n: f[n][()] for n in (names or list(f.keys()))}
    keys = index.sort_values("row")["key"].tolist()
    if any(len(a) != len(keys) for a in arrays.values()):
        raise FeatureError(f"{h5_path} and {index_path} disagree on the number of rows; re-run the stage")
    return FeatureSet(keys, arrays, identity, index)


def load_feature_pair(folder: str | Path) -> tuple[FeatureSet, FeatureSet]:
    """The image and text features of a features folder (``image.h5``/``text.h5`` + indexes)."""
    folder = Path(folder)
    return (load_features(folder / "image.h5", folder / "image.parquet"),
            load_features(folder / "text.h5", folder / "text.parquet"))


def describe_features(h5_path: str | Path) -> dict[str, Any]:
    """Shapes, dtypes and identity of a feature file (for the ``features`` CLI)."""
    with h5py.File(h5_path, "r") as f:
        return {
            "file": str(h5_path),
            "identity": json.loads(f.attrs["identity"]),
            "datasets": {n: {"shape": list(f[n].shape), "dtype": str(f[n].dtype)} for n in f.keys()},
        }
