"""Decision thresholds: one global value (eq. 10), or one per genre tuned on the validation split."""

from __future__ import annotations

import numpy as np

from .metrics import _f1, confusion_counts

GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)


def tune_thresholds(y_val: np.ndarray, s_val: np.ndarray, default: float = 0.5, grid: np.ndarray = GRID) -> np.ndarray:
    """Per genre, the threshold of ``grid`` with the best F1 on the *validation* posters given.

    Ties go to the threshold closest to ``default``; a genre without a positive
    validation poster keeps ``default`` (there is nothing to tune on).
    """
    y_val = np.asarray(y_val).astype(bool)
    s_val = np.asarray(s_val, dtype=np.float64)
    out = np.full(y_val.shape[1], default, dtype=np.float64)
    for j in range(y_val.shape[1]):
        if not y_val[:, j].any():
            continue
        preds = s_val[:, j][:, None] > grid[None, :]  # (n, len(grid))
        truth = np.repeat(y_val[:, j][:, None], len(grid), axis=1)
        f1 = _f1(confusion_counts(truth, preds))
        best = np.flatnonzero(np.isclose(f1, f1.max()))
        out[j] = float(grid[best[np.argmin(np.abs(grid[best] - default))]])
    return out
