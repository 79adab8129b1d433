"""Film-grouped, multi-label stratified train/val/test split.

All posters of a film land in one split (a film's posters share genres and
often artwork, so splitting them would leak), and so do films that share a poster image (the same bytes,
sha256, under two titles: a re-release, a catalogue error), which would otherwise be seen in training and
judged in test. Groups of such films are assigned by iterative
stratification (Sechidis, Tsoumakas & Vlahavas, 2011) on each film's genre
vector: the rarest genre still unassigned is handled first, and each of its
films goes to the split that most lacks that genre (ties: the split that most
lacks films overall, then a seeded random draw). The result is deterministic
for a given ``split.seed``.

Cross-validation (``split.folds: k``): the groups are stratified into k equal folds instead (the same
draw for every ``split.fold``), fold ``split.fold`` is the test split, the next fold (cyclically) the
validation split and the other k-2 the training split; run over every fold, each film is a test film
exactly once, so an evaluation can pool k test splits' predictions (the films without a plot of the shared
set, 66 in one test split, are all test films once over ten folds). k = 10 keeps the default split's
proportions, 0.8 / 0.1 / 0.1.
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


def image_groups(posters: pl.DataFrame) -> dict[str, str]:
    """Each film's group: the smallest ``imdb_id`` among the films it shares a poster image with, directly or
    through others (union-find over ``sha256``); a film that shares none is its own group."""
    parent: dict[str, str] = {}

    def root(f: str) -> str:
        while parent.setdefault(f, f) != f:
            parent[f] = parent[parent[f]]
            f = parent[f]
        return f

    first: dict[str, str] = {}
    for imdb_id, sha in posters.select("imdb_id", "sha256").iter_rows():
        a, b = root(imdb_id), root(first.setdefault(sha, imdb_id))
        if a != b:
            parent[max(a, b)] = min(a, b)
    return {f: root(f) for f in parent}


def shared_images(posters: pl.DataFrame) -> list[list[str]]:
    """The groups of two or more films that share a poster image, each sorted, in order of their first film."""
    groups: dict[str, list[str]] = {}
    for film, group in sorted(image_groups(posters).items()):
        groups.setdefault(group, []).append(film)
    return [films for _, films in sorted(groups.items()) if len(films) > 1]


def split_films(posters: pl.DataFrame, genres: list[str], fractions=(0.8, 0.1, 0.1), seed: int = 0,
                folds: int | None = None, fold: int = 0) -> pl.DataFrame:
    """One row per film (sorted by ``imdb_id``): ``imdb_id``, ``split`` (train/val/test), stratified by
    the genres of its group (the union of its posters' labels, and of the films it shares an image with:
    :func:`image_groups`). Where no image is shared, every film is its own group. ``folds``: ``fold`` of a
    k-fold split instead of ``fractions`` (the module)."""
    group = image_groups(posters)
    labels: dict[str, set[str]] = {}
    for imdb_id, joined in posters.select("imdb_id", "labels").iter_rows():
        labels.setdefault(group[imdb_id], set()).update(joined.split("|"))
    groups = sorted(labels)
    y = label_matrix(("|".join(sorted(labels[g])) for g in groups), genres)
    if folds:
        assigned = iterative_stratification(y, (1.0 / folds,) * folds, seed)
        # fold -> 2 (test), the next fold -> 1 (val), every other fold -> 0 (train)
        part = np.where(assigned == fold, 2, np.where(assigned == (fold + 1) % folds, 1, 0))
    else:
        part = iterative_stratification(y, tuple(fractions), seed)
    split_of = dict(zip(groups, part))
    films = sorted(group)
    return pl.DataFrame({"imdb_id": films, "split": [SPLITS[split_of[group[f]]] for f in films]},
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
    shared = shared_images(posters)
    if shared:  # films that share a poster image, kept in one split (absent where none do)
        out["films_sharing_an_image"] = shared
    return out
