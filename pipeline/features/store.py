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

Reading: the per-token arrays (3-D, ``tokens``: 49 x 1280 float16 per poster for the image, 125 KB) stay in
the file and are read per batch (:class:`StoredArray`), so a head's memory grows with its batch, not with
the catalogue; the per-poster vectors (pooled, mask, has_text: a few KB) are read into memory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np
import polars as pl

from pipeline.core.errors import PipelineError
from pipeline.core.io import atomic_path, sha256_bytes, write_parquet
from pipeline.data.images import PosterError, load_rgb
from pipeline.features.cache import ArrayCache
from pipeline.features.encoders import ImageEncoder, TextEncoder
from pipeline.features.executors import (
    Item,
    Result,
    Worker,
    batched,
    check_identity,
    executor_name,
    failure,
    fill_cache,
    poster_paths,
)

if TYPE_CHECKING:
    from pipeline.core.params import EncoderParams, RayParams


class FeatureError(PipelineError):
    pass


class StoredArray:
    """Rows of one HDF5 array read on demand from its open file: ``a[idx]`` reads the rows ``idx`` (any order,
    repeats allowed) and returns them as numpy, the same values a full read would hold; ``a.take(idx)`` is a
    view on those rows that reads nothing yet."""

    def __init__(self, dataset: h5py.Dataset, rows: np.ndarray | None = None):
        self.dataset = dataset
        self.rows = np.arange(dataset.shape[0], dtype=np.int64) if rows is None else np.asarray(rows, np.int64)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.rows), *self.dataset.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self.dataset.dtype

    @property
    def ndim(self) -> int:
        return self.dataset.ndim

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, idx) -> StoredArray:
        return StoredArray(self.dataset, self.rows[np.asarray(idx, dtype=np.int64)])

    def __getitem__(self, idx) -> np.ndarray:
        wanted = self.rows[np.asarray(idx, dtype=np.int64)]
        if wanted.ndim != 1:
            raise IndexError("a StoredArray is read by a 1-D array of rows")
        out = np.empty((len(wanted), *self.dataset.shape[1:]), dtype=self.dtype)
        # one read per row: h5py's fancy indexing builds a point selection that costs ~80 ms for a batch of 32
        # image-token rows, a row at a time ~1 ms (each row is contiguous inside its chunk)
        for i, row in enumerate(wanted.tolist()):
            out[i] = self.dataset[row]
        return out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[np.arange(len(self))]
        return out if dtype is None else out.astype(dtype)


@dataclass
class FeatureSet:
    keys: list[str]
    arrays: dict[str, np.ndarray | StoredArray]
    identity: dict[str, Any]
    index: pl.DataFrame | None

    def rows(self, keys: list[str]) -> np.ndarray:
        pos = dict(zip(self.keys, range(len(self.keys))))
        return np.array([pos[k] for k in keys], dtype=np.int64)


def _multiple_of_batch(stage: str, batch_size: int, encoder_batch: int) -> None:
    if batch_size % encoder_batch:
        raise FeatureError(
            f"ray.{stage}.batch_size {batch_size} must be a multiple of encoder.batch_size {encoder_batch}, "
            f"so the encoder sees the same batches as in-process"
        )


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _stack(values: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {name: np.stack([v[name] for v in values]) for name in values[0]}


def _rows(arrays: dict[str, np.ndarray], n: int, casts: dict[str, Any]) -> list[dict[str, np.ndarray]]:
    """Per-item slices of a batch's arrays, cast to what the cache stores."""
    cast = {name: arr.astype(casts.get(name, np.float16)) for name, arr in arrays.items()}
    return [{name: arr[i] for name, arr in cast.items()} for i in range(n)]


@dataclass
class _EncoderJob:
    """Embedding as a job of the shared loop: batches of exactly ``batch_size`` items, as in-process."""

    encoder: ImageEncoder | TextEncoder | None  #: the driver's encoder (in-process); actors build their own
    params: EncoderParams
    identity: dict[str, Any]
    batch_size: int
    #: CPU threads of the encoder: on CPU the last bits of the features depend on the thread count
    #: (float16 tokens move by up to 0.004 between 1 and 2 threads), so actors use the driver's.
    threads: int | None = None
    splittable: bool = False
    kind = ""  #: image | text

    @property
    def stage(self) -> str:
        return f"embed_{self.kind}"

    def __getstate__(self) -> dict:
        return {**self.__dict__, "encoder": None}  # an actor builds the encoder from params

    def _create(self) -> ImageEncoder | TextEncoder:
        raise NotImplementedError

    def _encode(self, encoder: Any, chunk: list[Item]) -> list[Result]:
        raise NotImplementedError

    def worker(self, threads: int | None) -> Worker:
        encoder = self.encoder
        if encoder is None:
            import torch

            if threads:
                torch.set_num_threads(threads)
            encoder = self._create()
            check_identity(f"{self.kind} encoder", encoder.identity, self.identity,
                           f"give the actors the same device (ray.embed_{self.kind}.gpus, encoder.device) and weights")
        return lambda items: [r for chunk in batched(items, self.batch_size) for r in self._encode(encoder, chunk)]

    def store(self, cache: ArrayCache, keys: list[str], values: list[dict[str, np.ndarray]]) -> None:
        if keys:
            cache.put(keys, _stack(values))

    def check_batch(self, batch_size: int) -> None:
        _multiple_of_batch(self.stage, batch_size, self.batch_size)


@dataclass
class ImageJob(_EncoderJob):
    """Image embedding: an item is a poster; one that cannot be read is reported, the rest encoded."""

    kind = "image"
    reads_files: bool = True

    def _create(self) -> ImageEncoder:
        from pipeline.features.encoders import create_image_encoder

        return create_image_encoder(self.params)

    def _encode(self, encoder: ImageEncoder, chunk: list[Item]) -> list[Result]:
        out: list[Result] = []
        loaded, images = [], []
        for item in chunk:
            try:
                images.append(load_rgb(item.path, item.key, item.data))
                loaded.append(item.key)
            except PosterError as err:
                out.append((item.key, None, failure(item.key, item.path, err.reason, str(err))))
        if loaded:
            rows = _rows(encoder.encode(images), len(loaded), {})
            out.extend((k, row, None) for k, row in zip(loaded, rows, strict=True))
        order = {item.key: i for i, item in enumerate(chunk)}
        return sorted(out, key=lambda r: order[r[0]])


def embed_images(
    posters: pl.DataFrame, encoder: ImageEncoder, batch_size: int, cache: ArrayCache | None = None,
    ray: RayParams | None = None,
) -> tuple[list[str], dict[str, np.ndarray], dict]:
    """Embed every unique poster (by sha256); unreadable posters are reported and left out.

    ``ray`` (its ``address`` set) embeds on a Ray actor pool instead of this process."""
    cache = cache or ArrayCache("image", encoder.identity)
    paths = poster_paths(posters)
    todo = cache.missing(paths)
    job = ImageJob(encoder, encoder.params, encoder.identity, batch_size, _torch_threads())
    failed = fill_cache(job, [Item(k, paths[k]) for k in todo], cache, ray=ray,
                        description=f"embed-image ({executor_name(1, ray)})")
    bad = {f["key"] for f in failed}
    keys = [k for k in paths if k not in bad]
    arrays = cache.get(keys, ["pooled", "tokens"]) if keys else {}
    report = {"posters": len(paths), "computed": len(todo) - len(failed),
              "from_cache": len(paths) - len(todo), "failed": failed}
    return keys, arrays, report


def text_key(text: str) -> str:
    return sha256_bytes(text.encode("utf-8"))


@dataclass
class TextJob(_EncoderJob):
    """Text embedding: an item is a text (``Item.data``), keyed by its own sha256."""

    kind = "text"
    reads_files: bool = False
    #: The encoder outputs stored (all when empty): plots keep only ``pooled``, since no head reads their
    #: token states and 256 float16 states of 384 per plot would be 1 GB for the shared films.
    keep: tuple[str, ...] = ()

    def _create(self) -> TextEncoder:
        from pipeline.features.encoders import create_text_encoder

        return create_text_encoder(self.params)

    def _encode(self, encoder: TextEncoder, chunk: list[Item]) -> list[Result]:
        arrays = encoder.encode([item.data for item in chunk])
        if self.keep:
            arrays = {name: arrays[name] for name in self.keep}
        rows = _rows(arrays, len(chunk), {"mask": bool})
        return [(item.key, row, None) for item, row in zip(chunk, rows, strict=True)]


def embed_texts(
    texts: pl.DataFrame, encoder: TextEncoder, batch_size: int, cache: ArrayCache | None = None,
    ray: RayParams | None = None,
) -> tuple[list[str], dict[str, np.ndarray], dict]:
    """Embed the text of every poster (``texts``: key, text); cached by the text's own sha256."""
    cache = cache or ArrayCache("text", encoder.identity)
    strings = texts["text"].to_list()
    tkeys = [text_key(t) for t in strings]
    by_tkey = dict(zip(tkeys, strings))
    todo = cache.missing(tkeys)
    job = TextJob(encoder, encoder.params, encoder.identity, batch_size, _torch_threads())
    fill_cache(job, [Item(k, "", by_tkey[k]) for k in todo], cache, ray=ray,
               description=f"embed-text ({executor_name(1, ray)})")
    keys = texts["key"].to_list()
    arrays = cache.get(tkeys, ["pooled", "tokens", "mask"]) if keys else {}
    if keys:
        arrays["has_text"] = np.array([len(t) > 0 for t in strings], dtype=bool)
    report = {"posters": len(keys), "unique_texts": len(set(tkeys)), "computed": len(todo),
              "from_cache": len(set(tkeys)) - len(todo), "empty_texts": sum(t == "" for t in strings)}
    return keys, arrays, report


def plot_encoder_params(params: EncoderParams) -> EncoderParams:
    """The text encoder's params for plots: ``encoder.plot_max_tokens`` in place of the OCR text's limit."""
    return params.model_copy(update={"text_max_tokens": params.plot_max_tokens})


def embed_plots(
    films: pl.DataFrame, encoder: TextEncoder, batch_size: int, cache: ArrayCache | None = None,
    ray: RayParams | None = None,
) -> tuple[list[str], dict[str, np.ndarray], dict]:
    """Embed the plot of every film that has one (``films``: imdb_id, plot), with the OCR text's encoder
    registry, executors and content-keyed cache (the ``plot`` cache: pooled vectors only).

    A film without a plot gets no row: it is *missing*, never an empty text's embedding. Returns the
    film ids, ``{"pooled": (n, D)}`` and a report."""
    cache = cache or ArrayCache("plot", encoder.identity)
    with_plot = films.filter(pl.col("plot").is_not_null())
    ids, strings = with_plot["imdb_id"].to_list(), with_plot["plot"].to_list()
    tkeys = [text_key(t) for t in strings]
    by_tkey = dict(zip(tkeys, strings))
    todo = cache.missing(tkeys)
    job = TextJob(encoder, encoder.params, encoder.identity, batch_size, _torch_threads(), keep=("pooled",))
    fill_cache(job, [Item(k, "", by_tkey[k]) for k in todo], cache, ray=ray,
               description=f"embed-plot ({executor_name(1, ray)})")
    arrays = cache.get(tkeys, ["pooled"]) if ids else {}
    report = {"films": len(films), "films_with_plot": len(ids), "unique_plots": len(set(tkeys)),
              "computed": len(todo), "from_cache": len(set(tkeys)) - len(todo)}
    return ids, arrays, report


def write_features(
    h5_path: str | Path, index_path: str | Path, keys: list[str], arrays: dict[str, np.ndarray],
    identity: dict[str, Any], extra_index: dict[str, list] | None = None, allow_empty: bool = False,
) -> None:
    """Write the feature pair atomically and deterministically (no timestamps, fixed order).

    ``allow_empty``: zero rows is a valid result (plots when ``data.films`` is null), not a failure."""
    if not keys and not allow_empty:
        raise FeatureError(f"{h5_path}: no poster could be embedded")
    with atomic_path(h5_path) as tmp:
        with h5py.File(tmp, "w", track_order=True) as f:
            f.attrs["identity"] = json.dumps(identity, sort_keys=True)
            for name in sorted(arrays):
                arr = arrays[name]
                f.create_dataset(name, data=arr, track_times=False,
                                 chunks=(min(len(arr), 256), *arr.shape[1:]) if arr.ndim > 1 and len(arr) else None)
    index = pl.DataFrame({"key": pl.Series(keys, dtype=pl.String), "row": np.arange(len(keys), dtype=np.int64),
                          **{k: pl.Series(v, dtype=pl.String) for k, v in (extra_index or {}).items()}})
    write_parquet(index_path, index)


def load_features(h5_path: str | Path, index_path: str | Path, names: list[str] | None = None,
                  in_memory: bool = False) -> FeatureSet:
    """A feature pair: the per-poster arrays read into memory, the per-token (3-D) arrays left in the file and
    read per batch (:class:`StoredArray`; ``in_memory``: read them too). float16 arrays stay float16."""
    h5_path, index_path = Path(h5_path), Path(index_path)
    for p in (h5_path, index_path):
        if not p.exists():
            raise FeatureError(f"{p}: not found; run the embed stages first (dvc repro)")
    index = pl.read_parquet(index_path)
    # kept open while the arrays are read (closed when the last StoredArray goes); a stage that rewrites the
    # file replaces it atomically, so an open handle keeps reading the version it opened
    f = h5py.File(h5_path, "r")
    identity = json.loads(f.attrs["identity"])
    arrays = {n: StoredArray(f[n]) if f[n].ndim == 3 and not in_memory else f[n][()]
              for n in (names or list(f.keys()))}
    keys = index.sort("row")["key"].to_list()
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
