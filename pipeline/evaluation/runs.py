"""One comparison run's outputs (the ``compare`` stage): its scores table and, for heads with
branches, each branch's validation figures. Kept apart from :mod:`pipeline.evaluation.compare` (the report's
statistics) so that editing the report never re-trains a run."""

from __future__ import annotations

import numpy as np
import polars as pl

from pipeline.models.datasets import predict_scores
from pipeline.scoring.metrics import average_precision, f1


def has_plot(data) -> np.ndarray | None:
    """Whether each poster's film has a plot (None without films)."""
    return data.tensors["has_plot"].numpy() if "has_plot" in data.tensors else None


def run_frame(keys, imdb_ids, split: str, y: np.ndarray, scores: np.ndarray, genres: list[str],
              with_plot: np.ndarray | None = None) -> pl.DataFrame:
    """Scores and labels of one split of one run, one row per poster: ``key``, ``imdb_id``, ``split``,
    ``has_plot`` (with films only: the report's plot subset), then ``y_<genre>`` (int8) and ``s_<genre>``
    (float32) for each genre in turn."""
    columns = [pl.Series("key", list(keys), pl.String), pl.Series("imdb_id", list(imdb_ids), pl.String),
               pl.Series("split", [split] * len(keys), pl.String)]
    if with_plot is not None:
        columns.append(pl.Series("has_plot", with_plot.astype(bool), pl.Boolean))
    for j, g in enumerate(genres):
        columns += [pl.Series(f"y_{g}", y[:, j].astype(np.int8)), pl.Series(f"s_{g}", scores[:, j].astype(np.float32))]
    return pl.DataFrame(columns)


def branch_figures(head, data, device, threshold: float = 0.5) -> dict[str, dict[str, float]] | None:
    """For a head with branches (``branch_logits``: late fusion), macro F1 at ``threshold`` and macro AP
    of each branch and of the blend on ``data`` (the validation split), to check the blend is at least
    as good as its better branch. None for single-output heads."""
    if not hasattr(head, "branch_logits"):
        return None
    y = data.labels.numpy()
    outputs = {f"{name} branch": (lambda m, b, i=i: m.branch_logits(b)[i]) for i, name in enumerate(head.branch_names)}
    outputs["blend"] = None
    out = {}
    for name, pick in outputs.items():
        s = predict_scores(head, data, device, logits=pick)
        out[name] = {"F_m": round(f1(y, (s > threshold).astype(np.int64), "macro"), 6),
                     "AP_m": round(float(np.nanmean(average_precision(y, s))), 6)}
    return out
