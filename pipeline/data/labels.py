"""Genre labels as the models see them: a multi-hot matrix over ``data.genres``."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def label_matrix(labels: Iterable[str], genres: list[str]) -> np.ndarray:
    """Multi-hot matrix (n, M) of float32 from ``|``-joined label strings (a list, a Polars column)."""
    labels = list(labels)
    index = {g: j for j, g in enumerate(genres)}
    y = np.zeros((len(labels), len(genres)), dtype=np.float32)
    for i, s in enumerate(labels):
        for g in s.split("|"):
            if g in index:
                y[i, index[g]] = 1.0
    return y
