"""Films beside posters: the films CSV and its join, plot features in the store, metadata, masking."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from pipeline.core.params import EncoderParams
from pipeline.data.films import COLUMNS, FilmsError, films_table, read_films
from pipeline.features.metadata import fit_metadata, metadata_columns, metadata_matrix
from pipeline.features.store import FeatureSet, embed_plots, load_features, plot_encoder_params, write_features
from pipeline.models.datasets import FilmInputs, build_datasets

HEADER = ",".join(COLUMNS)
GOOD = [
    'tt0000001,"A spy, a bomb, a train.",src,Run.,120,1999,en,Jane Doe,A One|B Two,R',
    "tt0000002,   ,src,,95,2005,fr|en,,,PG",  # whitespace plot: a missing plot, metadata kept
    "tt0000003,A quiet romance.,src,,,1987,,John Roe,C Three,",
]
BAD = [
    "tt0000004,Bad runtime.,src,,two hours,2001,en,,,",
    "tt0000005,Bad year.,src,,90,19999,en,,,",
    "nm0000006,Not a title.,src,,90,2001,en,,,",
    "tt0000007,First version.,src,,90,2001,en,,,",
    "tt0000007,Second version.,src,,90,2001,en,,,",
    "tt0000009,No poster has this film.,src,,90,2001,en,,,",
    'tt0000001,"A spy, a bomb, a train.",src,Run.,120,1999,en,Jane Doe,A One|B Two,R',  # identical repeat: read once
]


def write(tmp_path, lines, name="films.csv"):
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return path


def posters_of(ids):
    return pl.DataFrame({"imdb_id": ids, "sha256": [f"k{i}" for i in range(len(ids))]})


def test_films_csv_joins_by_id_and_skips_bad_rows_with_reasons(tmp_path):
    path = write(tmp_path, GOOD + BAD)
    ids = ["tt0000001", "tt0000002", "tt0000003", "tt0000004", "tt0000007", "tt0000008"]
    table, report = films_table(posters_of(ids), path)
    assert table["imdb_id"].to_list() == ids  # one row per film of the posters, their order
    assert table["film_row"].to_list() == [True, True, True, False, False, False]
    assert table["plot"].to_list() == ["A spy, a bomb, a train.", None, "A quiet romance.", None, None, None]
    assert table.row(1, named=True)["runtime_min"] == 95 and table.row(1, named=True)["certification"] == "PG"
    assert report["skipped"] == {"bad_id": 1, "bad_runtime": 1, "bad_year": 1, "duplicate_conflict": 2,
                                 "no_poster": 1}
    assert report["duplicates_identical"] == 1 and report["rows_read"] == len(GOOD + BAD)
    assert (report["films"], report["films_with_row"], report["films_with_plot"]) == (6, 3, 2)
    lines = {d["reason"]: d["line"] for d in report["skipped_rows"]}
    assert lines["bad_runtime"] == 5 and lines["no_poster"] == 10  # file lines, header = line 1
    # the same input, the same table
    again, _ = films_table(posters_of(ids), path)
    assert again.equals(table)


def test_no_films_gives_every_film_without_a_row():
    table, report = films_table(posters_of(["tt0000001", "tt0000001", "tt0000002"]), None)
    assert table["imdb_id"].to_list() == ["tt0000001", "tt0000002"]
    assert not table["film_row"].any() and report["films_with_plot"] == 0 and report["source"] is None


@pytest.mark.parametrize(("content", "message"), [
    (b"imdb_id,tagline\ntt0000001,x\n", r"films.csv: missing column\(s\) plot \(required: imdb_id, plot;"),
    ((HEADER + '\ntt0000001,"unterminated,src,,,,,,,\n').encode(), r"films.csv: line \d+: malformed CSV"),
    ((HEADER + "\ntt0000001,ok,src,,,,,,,\ntt0000002,caf\xe9,src,,,,,,,\n").encode("latin-1"),
     r"films.csv: line 3: not UTF-8 text"),
    (b"", r"films.csv: empty file"),
])
def test_a_films_csv_that_cannot_be_read_is_one_line_naming_file_and_line(tmp_path, content, message):
    path = tmp_path / "films.csv"
    path.write_bytes(content)
    with pytest.raises(FilmsError, match=message) as err:
        read_films(path)
    assert "\n" not in str(err.value)


def test_a_catalogue_csv_of_ids_and_plots_only_is_read_with_the_rest_unknown(tmp_path):
    path = tmp_path / "films.csv"
    path.write_text('plot,imdb_id,studio\n"A heist, told backwards.",tt0000001,Acme\n,tt0000002,\n', encoding="utf-8")
    read = read_films(path)
    films = dict((f["imdb_id"], f) for _, f in read.films)
    assert films["tt0000001"]["plot"] == "A heist, told backwards."
    assert films["tt0000002"]["plot"] is None  # an empty plot is a missing plot
    assert all(films["tt0000001"][c] is None for c in ("tagline", "runtime_min", "release_year", "language",
                                                       "director", "cast", "certification"))
    table, report = films_table(posters_of(["tt0000001", "tt0000002"]), path)
    assert report["films_with_plot"] == 1 and report["skipped_total"] == 0
    assert table["film_row"].to_list() == [True, True]


def test_missing_films_file_names_the_param(tmp_path):
    with pytest.raises(FilmsError, match=r"^data.films: .*nope.csv not found"):
        read_films(tmp_path / "nope.csv")


def test_metadata_is_fitted_on_train_only_with_an_unknown_slot():
    train = pl.DataFrame({
        "imdb_id": [f"tt{i:07d}" for i in range(6)], "film_row": [True] * 6,
        "runtime_min": [90, 100, 110, None, 120, 95], "release_year": [1990, 2000, 2010, 2001, None, 1995],
        "certification": ["R"] * 5 + ["NC-17"], "language": ["en|fr"] * 5 + ["de"],
        "director": ["Jane Doe"] * 6, "cast": ["A|B"] * 6,
    })
    spec = fit_metadata(train, "hash", 8)
    assert spec["certification"] == ["R"] and spec["language"] == ["en"]  # NC-17, de: fewer than 5 films
    cols = metadata_columns(spec)
    test = pl.DataFrame({
        "imdb_id": ["a", "b"], "film_row": [True, False], "runtime_min": [100, None], "release_year": [2000, None],
        "certification": ["PG", None], "language": ["en", None], "director": ["Jane Doe", None], "cast": ["A", None],
    })
    m = metadata_matrix(test, spec)
    assert m.shape == (2, len(cols)) and m.dtype == np.float32
    row = dict(zip(cols, m[0]))
    assert row["certification=unknown"] == 1 and row["certification=R"] == 0  # unseen PG: unknown
    assert row["language=en"] == 1 and row["film_row"] == 1 and row["runtime_unknown"] == 0
    assert abs(row["runtime"] - (np.log(100) - spec["runtime"][0]) / spec["runtime"][1]) < 1e-5
    unknown = dict(zip(cols, m[1]))
    assert unknown["runtime_unknown"] == unknown["year_unknown"] == unknown["certification=unknown"] == 1
    assert sum(v for k, v in unknown.items() if k.startswith(("director#", "cast#"))) == 0
    assert sum(v for k, v in row.items() if k.startswith("director#")) == 1  # one director, one slot
    assert len(metadata_columns(fit_metadata(train, "drop", 8))) == len(cols) - 16  # names dropped


def test_onehot_names_are_the_training_films_names_of_two_films_or_more_and_the_first_three_billed():
    train = pl.DataFrame({
        "imdb_id": ["a", "b", "c"], "film_row": [True] * 3, "runtime_min": [90] * 3, "release_year": [2000] * 3,
        "certification": [None] * 3, "language": [None] * 3,
        "director": ["Jane Doe", "jane doe|Solo Once", "Other"],
        "cast": ["A|B|C|D", "a|b|c|d", "D|E"],  # D is billed fourth on two films: not read there
    })
    spec = fit_metadata(train, "onehot", 8)
    assert spec["director"] == ["jane doe"] and spec["cast"] == ["a", "b", "c"] and spec["buckets"] == 0
    cols = metadata_columns(spec)
    assert [c for c in cols if c.startswith(("director", "cast"))] == [
        "director=jane doe", "cast=a", "cast=b", "cast=c"]
    test = pl.DataFrame({
        "imdb_id": ["x", "y"], "film_row": [True, True], "runtime_min": [90, 90], "release_year": [2000, 2000],
        "certification": [None, None], "language": [None, None],
        "director": ["JANE DOE", "Someone New"], "cast": ["Z|Y|X|A", "C|B"],
    })
    rows = [dict(zip(cols, r)) for r in metadata_matrix(test, spec)]
    assert rows[0]["director=jane doe"] == 1 and rows[0]["cast=a"] == 0  # A billed fourth: beyond the three read
    assert rows[1]["director=jane doe"] == 0 and rows[1]["cast=b"] == rows[1]["cast=c"] == 1
    # a hash or drop spec (and an older checkpoint's) has no vocabularies: the same columns as before
    assert "director" not in fit_metadata(train, "hash", 8) and not any(
        c.startswith("director=") for c in metadata_columns(fit_metadata(train, "drop", 8)))


class CountingTextEncoder:
    """A text encoder that counts what it embeds (a plot's vector: its length and first letter)."""

    def __init__(self):
        self.params = EncoderParams(name="offline")
        self.identity = {"fake": "plots"}
        self.seen: list[str] = []
        self.device = torch.device("cpu")

    def encode(self, texts):
        self.seen += texts
        pooled = np.array([[len(t), ord(t[0])] for t in texts], dtype=np.float32)
        return {"pooled": pooled, "tokens": np.zeros((len(texts), 3, 2), np.float32),
                "mask": np.ones((len(texts), 3), bool)}


def test_plot_features_are_keyed_by_content_and_computed_once(tmp_path):
    films = pl.DataFrame({"imdb_id": ["tt1", "tt2", "tt3", "tt4"],
                          "plot": ["Same plot.", None, "Same plot.", "Other plot."]})
    enc = CountingTextEncoder()
    ids, arrays, report = embed_plots(films, enc, batch_size=2)
    assert ids == ["tt1", "tt3", "tt4"]  # no row for a film without a plot
    assert sorted(enc.seen) == ["Other plot.", "Same plot."]  # the same plot once
    np.testing.assert_array_equal(arrays["pooled"][0], arrays["pooled"][1])
    assert set(arrays) == {"pooled"}  # plots keep pooled vectors only
    assert (report["films_with_plot"], report["unique_plots"], report["computed"]) == (3, 2, 2)
    _, _, again = embed_plots(films, enc, batch_size=2)  # the cache: nothing new to embed
    assert again["computed"] == 0 and len(enc.seen) == 2
    write_features(tmp_path / "p.h5", tmp_path / "p.parquet", ids, arrays, enc.identity, {"text": ["a", "a", "b"]})
    assert load_features(tmp_path / "p.h5", tmp_path / "p.parquet").keys == ids


def test_empty_plot_features_when_no_film_has_a_plot(tmp_path):
    write_features(tmp_path / "p.h5", tmp_path / "p.parquet", [], {"pooled": np.zeros((0, 0), np.float16)},
                   {"plot": None}, {"text": []}, allow_empty=True)
    fs = load_features(tmp_path / "p.h5", tmp_path / "p.parquet")
    assert fs.keys == [] and fs.arrays["pooled"].shape == (0, 0)


def test_plot_max_tokens_replaces_the_ocr_limit():
    params = EncoderParams(name="offline", text_max_tokens=77, plot_max_tokens=200)
    assert plot_encoder_params(params).text_max_tokens == 200


def _features(keys, dim, seed):
    rng = np.random.default_rng(seed)
    n = len(keys)
    return FeatureSet(keys, {"pooled": rng.normal(size=(n, dim)).astype(np.float16),
                             "tokens": rng.normal(size=(n, 2, dim)).astype(np.float16),
                             "mask": np.ones((n, 2), bool), "has_text": np.ones(n, bool)}, {}, None)


def test_datasets_mask_a_missing_plot_and_fit_metadata_on_train_films():
    ids = [f"tt{i:07d}" for i in range(10)]
    posters = pl.DataFrame({"imdb_id": ids, "sha256": [f"k{i}" for i in range(10)], "labels": ["Drama"] * 10})
    split = pl.DataFrame({"imdb_id": ids, "split": ["train"] * 6 + ["val"] * 2 + ["test"] * 2})
    image, text = _features(posters["sha256"].to_list(), 4, 0), _features(posters["sha256"].to_list(), 3, 1)
    with_plot = ids[::2]  # films 0, 2, 4, 6, 8
    plot = FeatureSet(with_plot, {"pooled": np.full((5, 6), 7, np.float16)}, {}, None)
    table = pl.DataFrame({"imdb_id": ids, "film_row": [True] * 10, "plot": ["x" if i in with_plot else None
                                                                             for i in ids],
                          "tagline": [None] * 10, "runtime_min": [100] * 9 + [500],  # a val film's runtime
                          "release_year": [2000] * 10, "language": ["en"] * 10, "director": [None] * 10,
                          "cast": [None] * 10, "certification": ["R"] * 10},
                         schema_overrides={"tagline": pl.String, "director": pl.String, "cast": pl.String})
    data, info = build_datasets(posters, split, image, text, ["Drama"], FilmInputs(table, plot, "drop", 0))
    tr = data["train"].tensors
    assert tr["has_plot"].tolist() == [True, False, True, False, True, False]
    assert (tr["plot_pooled"][~tr["has_plot"]] == 0).all() and (tr["plot_pooled"][tr["has_plot"]] == 7).all()
    assert info["metadata_spec"]["runtime"][0] == pytest.approx(np.log(100))  # the val film's 500 is not in it
    assert info["train_posters_with_plot"] == 3
    # without films: no film tensors at all
    none_table = table.with_columns(pl.lit(False).alias("film_row"))
    bare, info2 = build_datasets(posters, split, image, text, ["Drama"], FilmInputs(none_table, plot))
    assert "plot_pooled" not in bare["train"].tensors and info2["metadata_spec"] is None


def test_predict_joins_films_rows_by_the_file_names_imdb_id_or_a_poster_column(tmp_path):
    from pipeline.models.predict import _films_for

    films = tmp_path / "films.csv"
    films.write_text("\n".join([HEADER + ",poster", *(line + "," for line in GOOD[:2]),
                                GOOD[2] + ",cover-of-three.png"]) + "\n", encoding="utf-8")
    posters = [{"path": "in/tt0000001.jpg"}, {"path": "in/tt0000002-alt.jpg"}, {"path": "in/cover-of-three.png"},
               {"path": "in/unknown.jpg"}]
    errors: list[str] = []
    table = _films_for(posters, None, films, errors)
    assert table["film_row"].to_list() == [True, True, True, False]
    assert table["plot"].to_list() == ["A spy, a bomb, a train.", None, "A quiet romance.", None]
    assert table["runtime_min"].to_list() == [120, 95, None, None] and errors == []
    one = _films_for(posters[:1], "  A synopsis,\n  in two lines. ", None, errors)
    assert one["plot"].to_list() == ["A synopsis, in two lines."] and one["runtime_min"].to_list() == [None]
    assert _films_for(posters[:1], "   ", None, errors)["plot"].to_list() == [None]  # whitespace: no plot


def test_evaluate_reports_films_with_and_without_a_plot_apart():
    from pipeline.evaluation.evaluate import plot_subsets
    from pipeline.scoring.decisions import Decision, decide, pattern_of
    from pipeline.scoring.thresholds import DecisionRule

    y = np.array([[1, 0], [0, 1], [1, 1], [0, 1]])
    s = np.array([[0.9, 0.1], [0.2, 0.8], [0.1, 0.2], [0.9, 0.1]])  # right with a plot, wrong without
    rule = DecisionRule.global_threshold(["A", "B"], 0.5)
    has_plot = np.array([True, True, False, False])
    decided = decide({"poster_only": Decision("poster_only", None, rule)}, s, pattern_of(has_plot, 4))
    out = plot_subsets(y, s, has_plot, rule, decided, ["image", "text", "plot"], ["A", "B"])
    assert out["modalities"] == "image+text+plot"
    assert out["with_plot"]["posters"] == 2 and out["with_plot"]["f1_macro"] == 1.0
    assert out["without_plot"]["f1_macro"] == 0.0 and out["without_plot"]["product_f1_macro"] == 0.0


def _tiny_film_datasets(n=40):
    rng = np.random.default_rng(0)
    ids = [f"tt{i:07d}" for i in range(n)]
    genres = ["Drama", "Comedy"]
    labels = ["Drama" if i % 2 else "Comedy" for i in range(n)]
    posters = pl.DataFrame({"imdb_id": ids, "sha256": [f"k{i}" for i in range(n)], "labels": labels})
    split = pl.DataFrame({"imdb_id": ids, "split": ["train"] * (n - 10) + ["val"] * 5 + ["test"] * 5})
    image, text = _features(posters["sha256"].to_list(), 4, 1), _features(posters["sha256"].to_list(), 3, 2)
    with_plot = [i for k, i in enumerate(ids) if k % 5]
    plot = FeatureSet(with_plot, {"pooled": rng.normal(size=(len(with_plot), 6)).astype(np.float16)}, {}, None)
    plots = ["x" if i in with_plot else None for i in ids]
    table = pl.DataFrame({"imdb_id": ids, "film_row": [True] * n, "plot": plots,
                          "tagline": [None] * n, "runtime_min": [90 + i for i in range(n)],
                          "release_year": [1990 + i % 20 for i in range(n)], "language": ["en"] * n,
                          "director": [f"D{i % 3}" for i in range(n)], "cast": ["A|B"] * n,
                          "certification": ["R", "PG"] * (n // 2)},
                         schema_overrides={"tagline": pl.String})
    data, info = build_datasets(posters, split, image, text, genres, FilmInputs(table, plot, "hash", 8))
    return data, info, genres


@pytest.mark.parametrize("method", ["plot", "metadata", "image-plot", "image-plot-dropout", "visio-textual",
                                    "moviescope", "ours-plot", "ours-films"])
def test_each_film_method_trains_on_a_tiny_set_as_its_paper_says(method, monkeypatch):
    from pipeline.core.params import FusionParams, LossParams, TrainParams
    from pipeline.evaluation.methods import method_fusion, method_training
    from pipeline.models import train as training
    from pipeline.models.checkpoint import head_from_checkpoint, modalities
    from pipeline.models.datasets import feature_dims, predict_scores
    from pipeline.models.train import train_head

    # the recipe each paper trains with, seen where training applies it: the loss it builds, whether it draws
    # rare-genre posters more often, the share of plots it hides
    recipe = {"visio-textual": ("soft_f1", True, 0.0), "moviescope": ("weighted_bce", False, 0.0),
              "image-plot-dropout": ("asymmetric", False, 0.25)}.get(method, ("asymmetric", False, 0.0))
    applied = {"oversampled": False, "hidden": 0}
    make_loss, weights, rand = training.make_loss, training.oversampling_weights, torch.rand

    def spy_loss(loss, labels):
        applied["loss"] = loss.name
        return make_loss(loss, labels)

    def spy_weights(labels):
        applied["oversampled"] = True
        return weights(labels)

    def spy_rand(*args, **kwargs):  # plot dropout's draw: the only torch.rand of a training step
        applied["hidden"] += 1
        return rand(*args, **kwargs)

    monkeypatch.setattr(training, "make_loss", spy_loss)
    monkeypatch.setattr(training, "oversampling_weights", spy_weights)
    monkeypatch.setattr(training.torch, "rand", spy_rand)
    data, info, genres = _tiny_film_datasets()
    fusion = FusionParams(**method_fusion(method, FusionParams(dim=16, heads=4).model_dump()))
    train, loss = method_training(method, TrainParams(epochs=2, batch_size=8).model_dump(), LossParams().model_dump())
    dims = feature_dims(_features(["a"], 4, 0), _features(["a"], 3, 0), data)
    result = train_head(data, dims, genres, fusion, TrainParams(**train), LossParams(**loss))
    head = head_from_checkpoint(result.checkpoint)
    reads = modalities(result.checkpoint)
    assert ("plot" in reads) == (method != "metadata") and ("metadata" in reads) == (method in ("metadata",
                                                                                                 "moviescope",
                                                                                                 "ours-films"))
    scores = predict_scores(head, data["test"], torch.device("cpu"))
    assert scores.shape == (5, 2) and np.isfinite(scores).all()
    assert result.summary.epochs_run == 2
    monkeypatch.undo()
    assert (applied["loss"], applied["oversampled"], train["plot_dropout"]) == recipe
    assert (applied["hidden"] > 0) == (recipe[2] > 0)


def test_a_50000_character_plot_is_truncated_by_the_tokenizer():
    from pipeline.features.encoders import create_text_encoder

    params = plot_encoder_params(EncoderParams(name="offline", device="cpu"))
    encoder = create_text_encoder(params)
    out = encoder.encode(["A long plot. " * 3850, "A short plot."])
    assert out["pooled"].shape[0] == 2 and np.isfinite(out["pooled"]).all()
    assert out["mask"][0].sum() == params.plot_max_tokens  # cut at the limit, the short one far below it
    assert out["mask"][1].sum() < 10
