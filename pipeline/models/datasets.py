"""Head inputs: cached image and text features and genre labels of one split, row by row.

Features stay float16 in memory (the head casts per batch); a batch is cut to its longest real
text, since text is padded to ``encoder.text_max_tokens`` and most OCR text is far shorter.

With films (``data.films``) every poster also carries its film's ``plot_pooled`` (zeros where the
film has no plot), ``has_plot`` (the mask every head reads: a film without a plot never reads a plot
vector) and ``metadata`` (:mod:`pipeline.features.metadata`, fitted on the training films).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch

from pipeline.core.errors import PipelineError
from pipeline.core.io import read_parquet
from pipeline.data.films import SCHEMA as FILMS_SCHEMA
from pipeline.data.labels import label_matrix
from pipeline.features.metadata import fit_metadata, metadata_matrix
from pipeline.features.store import FeatureSet, StoredArray, load_feature_pair, load_features
from pipeline.scoring.decisions import POSTER_ONLY, WITH_PLOT


class TrainError(PipelineError):
    pass


@dataclass
class Dataset:
    """Features of a set of posters, aligned row by row with ``labels`` and ``keys``."""

    keys: list[str]
    imdb_ids: list[str]
    tensors: dict[str, torch.Tensor]
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.keys)

    def text_lengths(self) -> torch.Tensor:
        return self.tensors["text_mask"].sum(1)

    def batch(self, idx: torch.Tensor, device: torch.device) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        feats = {k: v[idx] for k, v in self.tensors.items()}
        # Text is padded to encoder.text_max_tokens, most OCR text is far shorter: cut the batch to
        # its longest real text. Padding is masked everywhere, so the result is the same, only faster.
        longest = max(int(feats["text_mask"].sum(1).max()), 1)
        feats["text_tokens"] = feats["text_tokens"][:, :longest]
        feats["text_mask"] = feats["text_mask"][:, :longest]
        return {k: v.to(device) for k, v in feats.items()}, self.labels[idx].to(device)


@dataclass
class FilmInputs:
    """A film's plot and metadata: the films table (``data/films.parquet``), the plot features (by imdb_id)
    and how names enter the metadata vector; ``spec`` is the fitted metadata (a checkpoint's, at predict)."""

    table: pl.DataFrame
    plot: FeatureSet
    names: str = "hash"
    buckets: int = 256
    spec: dict | None = None

    @property
    def available(self) -> bool:
        """True when any film has a row (``data.films`` set): only then do heads get film inputs."""
        return bool(self.table["film_row"].any())


def film_tensors(films: FilmInputs, imdb_ids: list[str], spec: dict) -> dict[str, torch.Tensor]:
    """``plot_pooled`` (zeros where missing), ``has_plot`` and ``metadata`` for each of ``imdb_ids``."""
    plot_rows = dict(zip(films.plot.keys, range(len(films.plot.keys))))
    pooled = films.plot.arrays["pooled"]
    has_plot = np.array([i in plot_rows for i in imdb_ids], dtype=bool)
    vectors = np.zeros((len(imdb_ids), pooled.shape[1]), dtype=np.float16)
    if has_plot.any():
        vectors[has_plot] = pooled[[plot_rows[i] for i in imdb_ids if i in plot_rows]]
    table = pl.DataFrame({"imdb_id": imdb_ids}).join(films.table, on="imdb_id", how="left", maintain_order="left")
    table = table.with_columns(pl.col("film_row").fill_null(False))
    return {"plot_pooled": torch.from_numpy(vectors), "has_plot": torch.from_numpy(has_plot),
            "metadata": torch.from_numpy(metadata_matrix(table, spec))}


def hide_films(data: Dataset, spec: dict | None) -> Dataset:
    """``data`` as if no film had a plot or metadata (the poster-only input pattern): ``has_plot`` false, zero
    plot vectors and every metadata slot unknown (``spec``: the metadata fitted on the training films). Data
    without film inputs is returned as it is."""
    if "has_plot" not in data.tensors:
        return data
    unknown = pl.DataFrame({"imdb_id": data.imdb_ids, "film_row": [False] * len(data)}).join(
        pl.DataFrame(schema=FILMS_SCHEMA).drop("film_row"), on="imdb_id", how="left")
    tensors = dict(data.tensors)
    tensors["has_plot"] = torch.zeros_like(data.tensors["has_plot"])
    tensors["plot_pooled"] = torch.zeros_like(data.tensors["plot_pooled"])
    if spec is not None and "metadata" in tensors:
        tensors["metadata"] = torch.from_numpy(metadata_matrix(unknown, spec))
    return Dataset(data.keys, data.imdb_ids, tensors, data.labels)


class StoredTensor:
    """Rows of a stored array (:class:`~pipeline.features.store.StoredArray`) as torch tensors, read when a batch
    asks for them: what :meth:`Dataset.batch` indexes like an in-memory tensor."""

    def __init__(self, array: StoredArray):
        self.array = array

    @property
    def shape(self) -> torch.Size:
        return torch.Size(self.array.shape)

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, idx: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.array[np.asarray(idx)])


def _rows_of(array: np.ndarray | StoredArray, rows: np.ndarray) -> torch.Tensor | StoredTensor:
    """``rows`` of a feature array: in memory when it is, else a view read per batch."""
    if isinstance(array, StoredArray):
        return StoredTensor(array.take(rows))
    return torch.from_numpy(array[rows])


def feature_tensors(image: FeatureSet, text: FeatureSet, keys: list[str]) -> dict[str, torch.Tensor]:
    """Head inputs for ``keys`` (float16, cast by the head per batch); the token arrays stay in the feature file
    and are read per batch."""
    ri, rt = image.rows(keys), text.rows(keys)
    return {
        "image_tokens": _rows_of(image.arrays["tokens"], ri),
        "image_pooled": torch.from_numpy(image.arrays["pooled"][ri]),
        "text_tokens": _rows_of(text.arrays["tokens"], rt),
        "text_mask": torch.from_numpy(text.arrays["mask"][rt]),
        "text_pooled": torch.from_numpy(text.arrays["pooled"][rt]),
        "has_text": torch.from_numpy(text.arrays["has_text"][rt]),
    }


def feature_dims(image: FeatureSet, text: FeatureSet, datasets: dict[str, Dataset] | None = None) -> dict[str, int]:
    """Widths of every input (``plot_pooled_dim`` and ``metadata_dim`` 0 without films)."""
    film = datasets["train"].tensors if datasets else {}
    return {
        "image_token_dim": int(image.arrays["tokens"].shape[-1]),
        "image_pooled_dim": int(image.arrays["pooled"].shape[-1]),
        "text_token_dim": int(text.arrays["tokens"].shape[-1]),
        "text_pooled_dim": int(text.arrays["pooled"].shape[-1]),
        "plot_pooled_dim": int(film["plot_pooled"].shape[-1]) if "plot_pooled" in film else 0,
        "metadata_dim": int(film["metadata"].shape[-1]) if "metadata" in film else 0,
    }


def build_datasets(
    posters: pl.DataFrame, split: pl.DataFrame, image: FeatureSet, text: FeatureSet, genres: list[str],
    films: FilmInputs | None = None,
) -> tuple[dict[str, Dataset], dict]:
    """One dataset per split, posters in the order of ``posters``; posters lacking a feature are counted,
    not silently dropped.

    With ``films`` (and a film row for any film) the datasets carry the film inputs too; the metadata
    spec is fitted on the training films only (``info["metadata_spec"]``, for the checkpoint)."""
    have = pl.Series(sorted(set(image.keys) & set(text.keys)), dtype=pl.String)
    merged = posters.join(split.select("imdb_id", "split"), on="imdb_id", how="inner", maintain_order="left")
    featured = pl.col("sha256").is_in(have.implode())
    missing = merged.filter(~featured)
    merged = merged.filter(featured)
    spec = None
    if films is not None and films.available:
        spec = films.spec
        if spec is None:
            train_ids = merged.filter(pl.col("split") == "train")["imdb_id"].unique()
            spec = fit_metadata(films.table.filter(pl.col("imdb_id").is_in(train_ids.implode())),
                                films.names, films.buckets)
    out = {}
    for name in ("train", "val", "test"):
        part = merged.filter(pl.col("split") == name)
        keys = part["sha256"].to_list()
        ids = part["imdb_id"].to_list()
        tensors = feature_tensors(image, text, keys)
        if spec is not None:
            tensors |= film_tensors(films, ids, spec)
        out[name] = Dataset(
            keys=keys,
            imdb_ids=ids,
            tensors=tensors,
            labels=torch.from_numpy(label_matrix(part["labels"], genres)),
        )
    info = {"posters_without_features": int(len(missing)), **{f"{k}_posters": len(v) for k, v in out.items()},
            "metadata_spec": spec}
    if spec is not None:
        info |= {f"{k}_posters_with_plot": int(v.tensors["has_plot"].sum()) for k, v in out.items()}
    if len(out["train"]) == 0 or len(out["val"]) == 0:
        raise TrainError("no training or validation posters with features; check the split and embed stages")
    return out, info


@dataclass
class Inputs:
    """Everything a head is trained or scored on: the datasets, their info, input widths and the identities
    of the features (for the checkpoint)."""

    datasets: dict[str, Dataset]
    info: dict
    dims: dict[str, int]
    identities: dict[str, dict]


def load_datasets(features: str | Path, posters: str | Path, split: str | Path, genres: list[str],
                  films: str | Path | None = None, names: str = "hash", buckets: int = 256,
                  spec: dict | None = None) -> Inputs:
    """The datasets of the pipeline's files: features (image, text and, with ``films``, plot), the posters
    table, the split and the films table (``data/films.parquet``; None: poster only)."""
    features = Path(features)
    image, text = load_feature_pair(features)
    film_inputs = None
    identities = {"image": image.identity, "text": text.identity}
    if films is not None:
        if not Path(films).exists():
            raise TrainError(f"{films}: not found; run the films stage first (dvc repro)")
        plot = load_features(features / "plot.h5", features / "plot.parquet")
        film_inputs = FilmInputs(read_parquet(films), plot, names, buckets, spec)
        if film_inputs.available:
            identities["plot"] = plot.identity
    datasets, info = build_datasets(read_parquet(posters), read_parquet(split), image, text, genres, film_inputs)
    return Inputs(datasets, info, feature_dims(image, text, datasets), identities)


def _eval_batches(data: Dataset, batch_size: int):
    """Index batches covering ``data`` once, posters of similar text length together (less padding)."""
    order = torch.argsort(data.text_lengths(), stable=True)
    return [order[start:start + batch_size] for start in range(0, len(data), batch_size)]


@torch.no_grad()
def predict_scores(model: torch.nn.Module, data: Dataset, device: torch.device, batch_size: int = 256,
                   logits=None) -> np.ndarray:
    """Sigmoid scores (n, M) for every poster of ``data``, in order.

    ``logits(model, batch)`` picks another output than ``model(batch)`` (a branch of a
    multi-branch head)."""
    model.eval()
    out = np.zeros((len(data), data.labels.shape[1]), dtype=np.float32)
    for idx in _eval_batches(data, batch_size):
        feats, _ = data.batch(idx, device)
        z = model(feats) if logits is None else logits(model, feats)
        out[idx.numpy()] = torch.sigmoid(z).float().cpu().numpy()
    return out


def pattern_scores(heads: dict[str, torch.nn.Module], val: Dataset, spec: dict | None
                   ) -> dict[str, tuple[np.ndarray, dict[str, np.ndarray], list[str]]]:
    """Per pattern, the validation labels, every head's scores and the films: ``poster_only`` on every validation
    film with plot and metadata hidden, ``with_plot`` on the films that have a plot (when any has)."""
    cpu = torch.device("cpu")
    y = val.labels.numpy()
    hidden = hide_films(val, spec)
    out = {POSTER_ONLY: (y, {n: predict_scores(h, hidden, cpu) for n, h in heads.items()}, list(val.imdb_ids))}
    if "has_plot" in val.tensors and bool(val.tensors["has_plot"].any()):
        rows = val.tensors["has_plot"].numpy()
        out[WITH_PLOT] = (y[rows], {n: predict_scores(h, val, cpu)[rows] for n, h in heads.items()},
                          [i for i, keep in zip(val.imdb_ids, rows) if keep])
    return out


@torch.no_grad()
def loss_and_scores(model, data: Dataset, loss_fn, device, batch_size: int = 256) -> tuple[float, np.ndarray]:
    """Mean loss over ``data`` and its sigmoid scores (as :func:`predict_scores`), from one forward pass: what
    early stopping and the per-epoch validation metrics both read."""
    model.eval()
    out = np.zeros((len(data), data.labels.shape[1]), dtype=np.float32)
    total, n = 0.0, 0
    for idx in _eval_batches(data, batch_size):
        feats, y = data.batch(idx, device)
        z = model(feats)
        total += float(loss_fn(z, y)) * len(idx)
        n += len(idx)
        out[idx.numpy()] = torch.sigmoid(z).float().cpu().numpy()
    return total / max(n, 1), out


def mean_loss(model, data: Dataset, loss_fn, device, batch_size: int = 256) -> float:
    return loss_and_scores(model, data, loss_fn, device, batch_size)[0]
