"""Film-grouped, multi-label stratified train/val/test split.

All posters of a film land in one split (a film's posters share genres and
often artwork, so splitting them would leak). Films are assigned by iterative
stratification (Sechidis, Tsoumakas & Vlahavas, 2011) on each film's genre
vector: the rarest genre still unassigned is handled first, and each of its
films goes to the split that most lacks that genre (ties: the split that most
lacks films overall, then a seeded random draw). The result is deterministic
for a given ``split.seed``.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from pipeline.data.labels import label_matrix

SPLITS = ("train", "val", "test")


def iterative_stratification(y: np.ndarray, fractions: tuple[float, ...], seed: int = 0) -> np.ndarray:
    """Assign each row of the multi-hot ``y`` (n, M) to a fold index, following ``fractions``."""
    rng = np.random.default_rng(seed)
    n, m = y.shape
    frac = np.asarray(fractions, dtype=np.float64)
    desired = frac * n  # rows still wanted per fold
    desired_label = np.outer(frac, y.sum(axis=0))  # (k, m) positives still wanted
    fold = np.full(n, -1, dtype=np.int64)
    remaining = np.ones(n, dtype=bool)
    # Rows without any label would never be picked by the label loop: handle at the end.
    while remaining.any() and y[remaining].sum() > 0:
        counts = y[remaining].sum(axis=0)
        counts[counts == 0] = np.inf
        label = int(np.argmin(counts))  # rarest label among unassigned rows (ties: lowest index)
        rows = np.flatnonzero(remaining & (y[:, label] > 0))
        rows = rows[rng.permutation(len(rows))]
        for r in rows:
            want = desired_label[:, label]
            best = np.flatnonzero(want == want.max())
            if len(best) > 1:
                best = best[desired[best] == desired[best].max()]
            f = int(best[rng.integers(len(best))]) if len(best) > 1 else int(best[0])
            fold[r] = f
            remaining[r] = False
            desired[f] -= 1
            desired_label[f] -= y[r]
    for r in np.flatnonzero(remaining):
        best = np.flatnonzero(desired == desired.max())
        f = int(best[rng.integers(len(best))])
        fold[r] = f
        desired[f] -= 1
    return fold


def split_films(posters: pl.DataFrame, genres: list[str], fractions=(0.8, 0.1, 0.1), seed: int = 0) -> pl.DataFrame:
    """One row per film (sorted by ``imdb_id``): ``imdb_id``, ``split`` (train/val/test), stratified by
    the film's genres (the union of its posters' labels)."""
    labels: dict[str, set[str]] = {}
    for imdb_id, joined in posters.select("imdb_id", "labels").iter_rows():
        labels.setdefault(imdb_id, set()).update(joined.split("|"))
    films = sorted(labels)
    y = label_matrix(("|".join(sorted(labels[f])) for f in films), genres)
    fold = iterative_stratification(y, tuple(fractions), seed)
    return pl.DataFrame({"imdb_id": films, "split": [SPLITS[f] for f in fold]},
                        schema={"imdb_id": pl.String, "split": pl.String})


def split_summary(split: pl.DataFrame, posters: pl.DataFrame, genres: list[str]) -> dict:
    """Films, posters and positives per genre in each split (the split stage's report)."""
    merged = posters.join(split, on="imdb_id", how="inner", maintain_order="left")
    out = {}
    for name in SPLITS:
        part = merged.filter(pl.col("split") == name)
        y = label_matrix(part["labels"], genres)
        out[name] = {
            "films": int(part["imdb_id"].n_unique()),
            "posters": int(len(part)),
            "per_genre": {g: int(v) for g, v in zip(genres, y.sum(axis=0))},
        }
    return out
