import numpy as np
import polars as pl

from pipeline.data.labels import label_matrix
from pipeline.data.split import iterative_stratification, shared_images, split_films, split_summary

GENRES = ["A", "B", "C", "D"]


def posters(n_films=400, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for f in range(n_films):
        labels = [g for g, p in zip(GENRES, (0.5, 0.3, 0.1, 0.04)) if rng.random() < p] or ["A"]
        for k in range(1 + f % 3):  # 1-3 posters per film
            rows.append({"imdb_id": f"tt{f:07d}", "labels": "|".join(labels), "sha256": f"{f}-{k}"})
    return pl.DataFrame(rows)


def test_films_are_never_split_across_sets():
    table = posters()
    split = split_films(table, GENRES, (0.8, 0.1, 0.1), seed=0)
    assert split["imdb_id"].is_unique().all()
    merged = table.join(split, on="imdb_id", how="inner")
    assert (merged.group_by("imdb_id").agg(pl.col("split").n_unique())["split"] == 1).all()
    assert len(merged) == len(table)


def test_proportions_and_stratification():
    table = posters()
    split = split_films(table, GENRES, (0.8, 0.1, 0.1), seed=0)
    counts = dict(split["split"].value_counts().iter_rows())
    assert abs(counts["train"] - 320) <= 4 and abs(counts["val"] - 40) <= 4 and abs(counts["test"] - 40) <= 4
    films = table.unique("imdb_id", keep="first", maintain_order=True).join(split, on="imdb_id", maintain_order="left")
    y = label_matrix(films["labels"], GENRES)
    total = y.sum(0)
    for name, frac in (("train", 0.8), ("val", 0.1), ("test", 0.1)):
        part = y[(films["split"] == name).to_numpy()].sum(0)
        # every genre within 2 films (+ rounding) of its share, even the rarest
        assert np.all(np.abs(part - frac * total) <= 2 + 1e-9), (name, part, frac * total)


def test_deterministic_and_seed_dependent():
    table = posters()
    a = split_films(table, GENRES, seed=1)
    b = split_films(table, GENRES, seed=1)
    c = split_films(table, GENRES, seed=2)
    assert a.equals(b)
    assert not a.equals(c)
    assert split_films(table.reverse(), GENRES, seed=1).equals(a)  # one row per film, sorted by imdb_id


def test_rows_without_labels_are_assigned():
    y = np.zeros((10, 2))
    y[:5, 0] = 1
    fold = iterative_stratification(y, (0.6, 0.2, 0.2), seed=0)
    assert (fold >= 0).all() and np.bincount(fold).tolist() == [6, 2, 2]


def test_films_sharing_a_poster_image_land_in_one_split():
    """The same image under several films (directly, or through a chain of films) keeps them together, so no
    image is trained on and tested; without any shared image the split is the films' own stratification."""
    table = posters()
    films = sorted(set(table["imdb_id"]))
    y = label_matrix([table.filter(pl.col("imdb_id") == f)["labels"][0] for f in films], GENRES)
    fold = iterative_stratification(y, (0.8, 0.1, 0.1), 0)
    alone = split_films(table, GENRES, (0.8, 0.1, 0.1), seed=0)
    assert alone["split"].to_list() == [("train", "val", "test")[k] for k in fold]  # no sharing: as before
    assert shared_images(table) == [] and "films_sharing_an_image" not in split_summary(alone, table, GENRES)
    by_split = dict(alone.iter_rows())
    a = next(f for f in films if by_split[f] == "train")
    b, c = [f for f in films if by_split[f] == "test"][:2]
    shared = table.with_columns(  # b's first poster is a's; c's first poster is b's second (a chain a-b-c)
        sha256=pl.when((pl.col("imdb_id") == b) & (pl.col("sha256").str.ends_with("-0")))
        .then(pl.lit(table.filter(pl.col("imdb_id") == a)["sha256"][0]))
        .when(pl.col("imdb_id") == c).then(pl.lit(f"{int(b[2:])}-1"))
        .otherwise(pl.col("sha256")))
    assert len(table.filter(pl.col("imdb_id") == b)) >= 2, "b needs a second poster for the chain"
    split = split_films(shared, GENRES, (0.8, 0.1, 0.1), seed=0)
    together = split.filter(pl.col("imdb_id").is_in([a, b, c]))["split"]
    assert together.n_unique() == 1
    assert shared_images(shared) == [sorted([a, b, c])]
    assert split_summary(split, shared, GENRES)["films_sharing_an_image"] == [sorted([a, b, c])]


def test_cross_validation_makes_every_film_a_test_film_once_and_keeps_shared_images_together():
    table = posters(n_films=300)
    shared = pl.concat([table, pl.DataFrame([{"imdb_id": "tt0000299", "labels": "A", "sha256": "0-0"}])])
    splits = [split_films(shared, GENRES, seed=3, folds=5, fold=f) for f in range(5)]
    tests = [set(s.filter(pl.col("split") == "test")["imdb_id"]) for s in splits]
    vals = [set(s.filter(pl.col("split") == "val")["imdb_id"]) for s in splits]
    films = set(shared["imdb_id"])
    assert set().union(*tests) == films and sum(len(t) for t in tests) == len(films)  # each film tested once
    assert all(vals[f] == tests[(f + 1) % 5] for f in range(5))  # validation: the next fold
    assert all(abs(len(t) - 60) <= 3 for t in tests)
    for s in splits:  # tt0000299 shares tt0000000's image: always on the same side
        side = dict(s.iter_rows())
        assert side["tt0000299"] == side["tt0000000"]
    assert splits[2].equals(split_films(shared, GENRES, seed=3, folds=5, fold=2))  # deterministic
    assert not splits[0].equals(split_films(shared, GENRES, seed=4, folds=5, fold=0))  # split.seed draws the folds


def test_a_fold_beyond_the_folds_is_one_line_naming_it():
    import pytest

    from pipeline.core.params import SplitParams

    with pytest.raises(ValueError, match=r"fold \(5\) must be below folds \(5\)"):
        SplitParams(folds=5, fold=5)
    with pytest.raises(ValueError):
        SplitParams(folds=2)
