"""Evaluation of a trained head on the test split: metrics, per-genre table, PR curves."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .metrics import all_metrics, precision_recall_curve


def per_genre_table(metrics: dict) -> pd.DataFrame:
    rows = [{"genre": g, **{k: v for k, v in m.items()}} for g, m in metrics["per_genre"].items()]
    return pd.DataFrame(rows)


def pr_curves(y_true: np.ndarray, y_score: np.ndarray, genres: list[str], points: int = 101) -> pd.DataFrame:
    """Interpolated precision (best precision at recall >= r) at ``points`` recall levels.

    One column per genre (wide), so ``dvc plots`` draws one line per genre;
    a genre without a positive test poster gets an empty column.
    """
    grid = np.linspace(0, 1, points)
    table = pd.DataFrame({"recall": np.round(grid, 4)})
    for j, g in enumerate(genres):
        if y_true[:, j].sum() == 0:
            table[g] = np.nan
            continue
        precision, recall, _ = precision_recall_curve(y_true[:, j], y_score[:, j])
        table[g] = [round(float(precision[recall >= r - 1e-12].max()), 6) for r in grid]
    return table


def predictions_table(keys, imdb_ids, y_true, y_score, genres, threshold) -> pd.DataFrame:
    threshold = np.broadcast_to(np.asarray(threshold, dtype=np.float64), (len(genres),))
    table = pd.DataFrame({"key": keys, "imdb_id": imdb_ids})
    for j, g in enumerate(genres):
        table[f"score_{g}"] = y_score[:, j].astype(np.float32)
    table["true"] = ["|".join(g for g, t in zip(genres, row) if t) for row in y_true]
    table["predicted"] = ["|".join(g for g, s, t in zip(genres, row, threshold) if s > t) for row in y_score]
    return table


def evaluate_scores(y_true, y_score, genres, threshold) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    metrics = all_metrics(y_true, y_score, threshold, genres)
    return metrics, per_genre_table(metrics), pr_curves(np.asarray(y_true), np.asarray(y_score), genres)


def decision_thresholds(mode: str, threshold: float, y_val: np.ndarray, s_val: np.ndarray) -> np.ndarray:
    """Per-genre thresholds: ``threshold`` everywhere, or tuned on the validation posters only."""
    from .thresholds import tune_thresholds

    m = y_val.shape[1]
    if mode == "global":
        return np.full(m, threshold)
    return tune_thresholds(y_val, s_val, default=threshold)
