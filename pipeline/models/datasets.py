"""Head inputs: cached image and text features and genre labels of one split, row by row.

Features stay float16 in memory (the head casts per batch); a batch is cut to its longest real
text, since text is padded to ``encoder.text_max_tokens`` and most OCR text is far shorter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import torch

from pipeline.core.errors import PipelineError
from pipeline.data.labels import label_matrix
from pipeline.features.store import FeatureSet


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


def feature_tensors(image: FeatureSet, text: FeatureSet, keys: list[str]) -> dict[str, torch.Tensor]:
    """Head inputs for ``keys`` (float16 kept in memory; the head casts per batch)."""
    ri, rt = image.rows(keys), text.rows(keys)
    return {
        "image_tokens": torch.from_numpy(image.arrays["tokens"][ri]),
        "image_pooled": torch.from_numpy(image.arrays["pooled"][ri]),
        "text_tokens": torch.from_numpy(text.arrays["tokens"][rt]),
        "text_mask": torch.from_numpy(text.arrays["mask"][rt]),
        "text_pooled": torch.from_numpy(text.arrays["pooled"][rt]),
        "has_text": torch.from_numpy(text.arrays["has_text"][rt]),
    }


def feature_dims(image: FeatureSet, text: FeatureSet) -> dict[str, int]:
    return {
        "image_token_dim": int(image.arrays["tokens"].shape[-1]),
        "image_pooled_dim": int(image.arrays["pooled"].shape[-1]),
        "text_token_dim": int(text.arrays["tokens"].shape[-1]),
        "text_pooled_dim": int(text.arrays["pooled"].shape[-1]),
    }


def build_datasets(
    posters: pl.DataFrame, split: pl.DataFrame, image: FeatureSet, text: FeatureSet, genres: list[str]
) -> tuple[dict[str, Dataset], dict]:
    """One dataset per split, posters in the order of ``posters``; posters lacking a feature are counted,
    not silently dropped."""
    have = pl.Series(sorted(set(image.keys) & set(text.keys)), dtype=pl.String)
    merged = posters.join(split.select("imdb_id", "split"), on="imdb_id", how="inner", maintain_order="left")
    featured = pl.col("sha256").is_in(have.implode())
    missing = merged.filter(~featured)
    merged = merged.filter(featured)
    out = {}
    for name in ("train", "val", "test"):
        part = merged.filter(pl.col("split") == name)
        keys = part["sha256"].to_list()
        out[name] = Dataset(
            keys=keys,
            imdb_ids=part["imdb_id"].to_list(),
            tensors=feature_tensors(image, text, keys),
            labels=torch.from_numpy(label_matrix(part["labels"], genres)),
        )
    info = {"posters_without_features": int(len(missing)), **{f"{k}_posters": len(v) for k, v in out.items()}}
    if len(out["train"]) == 0 or len(out["val"]) == 0:
        raise TrainError("no training or validation posters with features; check the split and embed stages")
    return out, info


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


@torch.no_grad()
def mean_loss(model, data: Dataset, loss_fn, device, batch_size: int = 256) -> float:
    model.eval()
    total, n = 0.0, 0
    for idx in _eval_batches(data, batch_size):
        feats, y = data.batch(idx, device)
        total += float(loss_fn(model(feats), y)) * len(idx)
        n += len(idx)
    return total / max(n, 1)
