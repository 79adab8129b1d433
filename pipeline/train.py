"""Training a fusion head on cached features (no OCR or encoder runs here).

The loop follows the paper: Adam (lr 1e-4, betas 0.9/0.999, eps 1e-8), batch
32, up to 100 epochs, early stopping with patience 10 on the validation loss,
and the best checkpoint (lowest validation loss) kept. Seeds are fixed and
torch runs in deterministic mode, so the same features and params give the
same checkpoint.
"""

from __future__ import annotations

import io
import random
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from .devices import resolve_device
from .errors import PipelineError
from .features import FeatureSet
from .heads import create_head, head_config
from .ingest import label_matrix
from .losses import create_loss
from .params import FusionParams, LossParams, TrainParams
from .progress import progress_bar


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
    posters: pd.DataFrame, split: pd.DataFrame, image: FeatureSet, text: FeatureSet, genres: list[str]
) -> tuple[dict[str, Dataset], dict]:
    """One dataset per split; posters lacking a feature are counted, not silently dropped."""
    have = set(image.keys) & set(text.keys)
    merged = posters.merge(split, on="imdb_id", how="inner")
    missing = merged[~merged["sha256"].isin(have)]
    merged = merged[merged["sha256"].isin(have)]
    out = {}
    for name in ("train", "val", "test"):
        part = merged[merged["split"] == name]
        keys = part["sha256"].tolist()
        out[name] = Dataset(
            keys=keys,
            imdb_ids=part["imdb_id"].tolist(),
            tensors=feature_tensors(image, text, keys),
            labels=torch.from_numpy(label_matrix(part["labels"], genres)),
        )
    info = {"posters_without_features": int(len(missing)), **{f"{k}_posters": len(v) for k, v in out.items()}}
    if len(out["train"]) == 0 or len(out["val"]) == 0:
        raise TrainError("no training or validation posters with features; check the split and embed stages")
    return out, info


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


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


def epoch_batches(n: int, batch_size: int, generator: torch.Generator, weights: torch.Tensor | None = None,
                  lengths: torch.Tensor | None = None, pool_batches: int = 50) -> list[torch.Tensor]:
    """Index batches of one training epoch.

    A random permutation (or, with ``weights``, ``n`` draws with replacement), cut into
    batches. With ``lengths``, posters are grouped by length first: the order is cut into
    pools of ``pool_batches`` batches, each pool sorted by length (longest first), cut into
    batches, and the batches shuffled, so a batch holds similar lengths but every epoch still
    mixes the whole training set.
    """
    order = (torch.multinomial(weights, n, replacement=True, generator=generator)
             if weights is not None else torch.randperm(n, generator=generator))
    if lengths is None:
        return [order[s:s + batch_size] for s in range(0, n, batch_size)]
    pool = batch_size * pool_batches
    batches = []
    for s in range(0, n, pool):
        part = order[s:s + pool]
        part = part[torch.argsort(lengths[part], descending=True, stable=True)]
        batches += [part[b:b + batch_size] for b in range(0, len(part), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def train_head(
    datasets: dict[str, Dataset],
    dims: dict[str, int],
    genres: list[str],
    fusion: FusionParams,
    train: TrainParams,
    loss: LossParams,
) -> tuple[dict[str, Any], list[dict], dict]:
    """Train; return the best checkpoint, the per-epoch curve and a summary."""
    seed_everything(train.seed)
    device = resolve_device(train.device, "train.device")
    config = head_config(fusion, dims, len(genres))
    model = create_head(config).to(device)
    loss_fn = make_loss(loss, datasets["train"].labels)
    if not getattr(model, "trainable", True):
        return _fit_untrainable(model, datasets, config, genres, loss_fn, device)
    opt = torch.optim.Adam(model.parameters(), lr=train.lr, betas=tuple(train.betas), eps=train.eps)
    gen = torch.Generator().manual_seed(train.seed)
    tr, va = datasets["train"], datasets["val"]

    sample_weights = oversampling_weights(tr.labels) if train.oversample else None
    lengths = tr.text_lengths() if train.group_by_length else None
    best = {"val_loss": float("inf"), "epoch": 0, "state": None}
    curve: list[dict] = []
    stale = 0
    t0 = time.perf_counter()
    with progress_bar("epochs") as bar:
        task = bar.add_task("train", total=train.epochs)
        for epoch in range(1, train.epochs + 1):
            model.train()
            total, n = 0.0, 0
            for idx in epoch_batches(len(tr), train.batch_size, gen, sample_weights, lengths):
                feats, y = tr.batch(idx, device)
                batch_loss = batch_training_loss(model, feats, y, loss_fn)
                opt.zero_grad(set_to_none=True)
                batch_loss.backward()
                opt.step()
                total += batch_loss.item() * len(idx)
                n += len(idx)
            val_loss = mean_loss(model, va, loss_fn, device)
            curve.append({"epoch": epoch, "train_loss": round(total / n, 6), "val_loss": round(val_loss, 6)})
            if val_loss < best["val_loss"]:
                best = {"val_loss": val_loss, "epoch": epoch,
                        "state": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}
                stale = 0
            else:
                stale += 1
            bar.update(task, advance=1, description=f"train (val {val_loss:.4f}, best {best['val_loss']:.4f})")
            if not bar.console.is_terminal:  # logs (dvc repro in CI, nohup): one line per epoch
                bar.console.print(f"epoch {epoch}: train loss {total / n:.5f}, val loss {val_loss:.5f}, "
                                  f"{time.perf_counter() - t0:.0f} s")
            if stale >= train.patience:
                break
    seconds = time.perf_counter() - t0
    checkpoint = make_checkpoint(config, genres, best["state"], best["epoch"], best["val_loss"])
    summary = {
        "best_epoch": best["epoch"],
        "best_val_loss": round(best["val_loss"], 6),
        "epochs_run": len(curve),
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "seconds": round(seconds, 2),
        "device": device.type,
    }
    return checkpoint, curve, summary


def attach_decision_rule(checkpoint: dict, val: Dataset, metric: str = "f1_samples",
                         threshold: float = 0.5) -> dict:
    """Choose the product's decision rule on the validation split and save it in ``checkpoint``.

    The validation scores are those of the checkpoint's head (the best epoch), on the
    CPU as evaluate computes them. ``checkpoint["decision_rule"]`` gets the rule,
    ``checkpoint["decision_rule_validation"]`` the figures behind the choice (the chosen
    rule, the paper's, every candidate: ``metric``, genres per poster predicted and
    true), rounded, so the checkpoint stays byte-identical for the same inputs.
    Returns the summary for ``metrics/train.json``.
    """
    from .thresholds import choose_rule

    head = head_from_checkpoint(checkpoint, "cpu")
    scores = predict_scores(head, val, torch.device("cpu"))
    rule, report = choose_rule(val.labels.numpy(), scores, checkpoint["genres"], metric=metric, threshold=threshold)
    checkpoint["decision_rule"] = rule.to_dict()
    checkpoint["decision_rule_validation"] = report
    chosen = report["chosen"]
    return {"name": rule.name, "max_genres": rule.max_genres, "metric": metric,
            "validation_score": chosen[metric], "validation_score_paper_rule": report["paper"][metric],
            "genres_per_poster": chosen["genres_per_poster"],
            "genres_per_poster_paper_rule": report["paper"]["genres_per_poster"],
            "genres_per_poster_true": report["genres_per_poster_true"]}


def make_loss(loss: LossParams, train_labels: torch.Tensor):
    return create_loss(loss.name, train_labels=train_labels, gamma_pos=loss.gamma_pos,
                       gamma_neg=loss.gamma_neg, margin=loss.margin)


def oversampling_weights(labels: torch.Tensor) -> torch.Tensor:
    """Per poster, 1 / frequency of its rarest genre: rare-genre posters are drawn more often."""
    freq = labels.float().sum(0).clamp(min=1)
    inv = labels.float() / freq  # 1/freq where the poster has the genre, else 0
    return inv.max(dim=1).values.clamp(min=1.0 / len(labels))


def batch_training_loss(model, feats, y, loss_fn):
    """The head's own training loss when it has one (multi-task heads), else loss on its logits."""
    if hasattr(model, "training_loss"):
        return model.training_loss(feats, y, loss_fn)
    return loss_fn(model(feats), y)


def _fit_untrainable(model, datasets, config, genres, loss_fn, device):
    """Heads without parameters (naive): fit on the training labels, no epochs."""
    model.fit(datasets["train"].labels.to(device))
    val_loss = mean_loss(model, datasets["val"], loss_fn, device)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    checkpoint = make_checkpoint(config, genres, state, 0, val_loss)
    curve = [{"epoch": 0, "train_loss": round(mean_loss(model, datasets["train"], loss_fn, device), 6),
              "val_loss": round(val_loss, 6)}]
    summary = {"best_epoch": 0, "best_val_loss": round(val_loss, 6), "epochs_run": 0, "parameters": 0,
               "seconds": 0.0, "device": device.type}
    return checkpoint, curve, summary


def save_checkpoint(checkpoint: dict, path) -> None:
    """torch.save into a buffer, then the atomic writer (same bytes for the same checkpoint)."""
    from .io import atomic_path

    buf = io.BytesIO()
    torch.save(checkpoint, buf)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())


def load_head(path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict]:
    """The trained head (eval mode) and its checkpoint metadata."""
    from pathlib import Path

    path = Path(path)
    if not path.exists():
        raise TrainError(f"{path}: no trained model; run the pipeline first (dvc repro)")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # noqa: BLE001
        raise TrainError(f"{path}: not a poster-genres checkpoint ({type(err).__name__})") from None
    if ckpt.get("format") != "poster-genres/head@1":
        raise TrainError(f"{path}: not a poster-genres checkpoint")
    return head_from_checkpoint(ckpt, device), ckpt


def head_from_checkpoint(ckpt: dict, device: torch.device | str = "cpu") -> torch.nn.Module:
    """The head a checkpoint describes, with its weights, in eval mode."""
    model = create_head(ckpt["head_config"])
    model.load_state_dict(ckpt["state_dict"])
    return model.to(device).eval()


def make_checkpoint(config: dict, genres: list[str], state: dict, epoch: int, val_loss: float) -> dict:
    return {"format": "poster-genres/head@1", "head_config": config, "genres": list(genres),
            "state_dict": state, "best_epoch": epoch, "best_val_loss": val_loss}
