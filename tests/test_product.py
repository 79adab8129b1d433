"""Decisions per input pattern and the product chosen on validation (pipeline/scoring/decisions.py,
pipeline/models/product.py)."""

import json

import numpy as np
import polars as pl
import pytest
import torch

from pipeline.core.params import FusionParams, LossParams, TrainParams
from pipeline.evaluation.evaluate import product_predictions
from pipeline.features.store import FeatureSet
from pipeline.models.checkpoint import head_from_checkpoint
from pipeline.models.datasets import Dataset, FilmInputs, build_datasets, feature_dims, hide_films, predict_scores
from pipeline.models.product import MAIN, load_product, product_from_head, save_product
from pipeline.models.train import Candidate, attach_decisions, build_product, train_head
from pipeline.scoring.decisions import (
    POSTER_ONLY,
    WITH_PLOT,
    Decision,
    choose_calibration,
    cross_fitted,
    fit_decision,
    folds,
    pattern_of,
)

GENRES = ["Drama", "Comedy", "Horror"]


def _features(keys, width, seed, signal=None, scale=0.0):
    rng = np.random.default_rng(seed)
    tokens = rng.normal(size=(len(keys), 3, width)).astype(np.float32)
    if signal is not None:
        tokens[:, :, : signal.shape[1]] += scale * signal[:, None, :]
    tokens = tokens.astype(np.float16)
    mask = np.ones((len(keys), 3), dtype=bool)
    return FeatureSet(list(keys), {"tokens": tokens, "pooled": tokens.mean(1), "mask": mask,
                                   "has_text": np.ones(len(keys), dtype=bool)}, {"seed": seed}, None)


def film_data(n=200, seed=0):
    """Films whose plot tells the genre well and whose poster tells it weakly; 80% have a plot."""
    rng = np.random.default_rng(seed)
    ids = [f"tt{i:07d}" for i in range(n)]
    y = (rng.random((n, 3)) < [0.5, 0.35, 0.2]).astype(np.float32)
    labels = ["|".join(g for g, v in zip(GENRES, row) if v) or "Drama" for row in y]
    y = np.array([[g in lab.split("|") for g in GENRES] for lab in labels], dtype=np.float32)
    keys = [f"k{i}" for i in range(n)]
    posters = pl.DataFrame({"imdb_id": ids, "sha256": keys, "labels": labels})
    split = pl.DataFrame({"imdb_id": ids, "split": ["train"] * int(n * 0.6) + ["val"] * int(n * 0.25)
                          + ["test"] * (n - int(n * 0.6) - int(n * 0.25))})
    image, text = _features(keys, 8, 1, y, 0.6), _features(keys, 6, 2)
    with_plot = [i for k, i in enumerate(ids) if k % 5]
    rows = [ids.index(i) for i in with_plot]
    plot_vectors = rng.normal(size=(len(with_plot), 6)).astype(np.float32)
    plot_vectors[:, :3] += 3.0 * y[rows]
    plot = FeatureSet(with_plot, {"pooled": plot_vectors.astype(np.float16)}, {}, None)
    table = pl.DataFrame({"imdb_id": ids, "film_row": [i in with_plot for i in ids],
                          "plot": ["x" if i in with_plot else None for i in ids], "tagline": [None] * n,
                          "runtime_min": [None] * n, "release_year": [None] * n, "language": [None] * n,
                          "director": [None] * n, "cast": [None] * n, "certification": [None] * n},
                         schema_overrides={c: pl.String for c in ("tagline", "language", "director", "cast",
                                                                   "certification")} | {
                             "runtime_min": pl.Int64, "release_year": pl.Int64})
    datasets, info = build_datasets(posters, split, image, text, GENRES, FilmInputs(table, plot, "hash", 8))
    return datasets, feature_dims(image, text, datasets), info


@pytest.fixture(scope="module")
def films():
    return film_data()


def _train(datasets, dims, info, head="visio_textual", plot=True, loss="bce", epochs=30):
    fusion = FusionParams(head=head, plot=plot, metadata=False, dim=16, heads=4, dropout=0.0)
    result = train_head(datasets, dims, GENRES, fusion, TrainParams(epochs=epochs, patience=epochs, lr=3e-3),
                        LossParams(name=loss))
    result.checkpoint["metadata_spec"] = info["metadata_spec"]
    result.checkpoint["features"] = {"image": {"seed": 1}, "text": {"seed": 2}}
    result.checkpoint["modalities"] = ["image", "text"] + (["plot"] if plot else [])
    return result.checkpoint


def test_a_film_without_a_plot_gets_the_rule_fitted_on_validation_scores_without_plots(films):
    datasets, dims, info = films
    ckpt = _train(datasets, dims, info)
    attach_decisions(ckpt, datasets["val"], "f1_macro", 0.5, "auto")
    assert list(ckpt["decisions"]) == [POSTER_ONLY, WITH_PLOT]
    head = head_from_checkpoint(ckpt)
    val, test = datasets["val"], datasets["test"]
    cpu = torch.device("cpu")
    y_val = val.labels.numpy()

    # the poster-only decision is fitted on every validation film's scores with its plot hidden ...
    hidden = predict_scores(head, hide_films(val, info["metadata_spec"]), cpu)
    expected = fit_decision(POSTER_ONLY, y_val, hidden, GENRES, val.imdb_ids, "f1_macro", 0.5, "auto")
    assert Decision.from_dict(ckpt["decisions"][POSTER_ONLY]) == expected
    # ... the with-plot one on the validation films that have a plot, scored with it
    rows = val.tensors["has_plot"].numpy()
    with_plot = fit_decision(WITH_PLOT, y_val[rows], predict_scores(head, val, cpu)[rows], GENRES,
                             [i for i, r in zip(val.imdb_ids, rows) if r], "f1_macro", 0.5, "auto")
    assert Decision.from_dict(ckpt["decisions"][WITH_PLOT]) == with_plot
    # and one rule for all (what a single rule fitted on validation as it comes would be) is not the poster-only one
    single = fit_decision(POSTER_ONLY, y_val, predict_scores(head, val, cpu), GENRES, val.imdb_ids, "f1_macro")
    assert single.rule.thresholds != expected.rule.thresholds

    # evaluate and predict: a test film without a plot is decided by the poster-only decision, one with a plot
    # by the with-plot one
    decided = product_from_head(ckpt).decide(test)
    scores = predict_scores(head, test, cpu)
    has_plot = test.tensors["has_plot"].numpy()
    assert (~has_plot).any() and has_plot.any()
    for i in range(len(test)):
        d = expected if not has_plot[i] else with_plot
        assert decided.rules[i] == f"{d.pattern}:{d.rule.name}"
        np.testing.assert_array_equal(decided.probabilities[i], d.probabilities(scores[i:i + 1])[0])
        np.testing.assert_array_equal(decided.chosen[i], d.rule.apply(d.probabilities(scores[i:i + 1]))[0])
    # the product stage's "withheld" view: every test film with its plot hidden gets the poster-only decision of
    # the scores computed without it, which for a film that had no plot is what it got anyway
    product = product_from_head(ckpt)
    hidden_test = hide_films(test, info["metadata_spec"])
    withheld = product.decide(hidden_test, product.member_scores(hidden_test))
    assert set(withheld.rules) == {f"{POSTER_ONLY}:{expected.rule.name}"}
    np.testing.assert_array_equal(withheld.chosen, expected.rule.apply(expected.probabilities(
        predict_scores(head, hidden_test, cpu))))
    np.testing.assert_array_equal(withheld.chosen[~has_plot], decided.chosen[~has_plot])
    frame = product_predictions(test.keys, test.imdb_ids, has_plot, test.labels.numpy(), GENRES, decided, decided,
                                withheld)
    assert frame[f"withheld_{GENRES[0]}"].to_list() == withheld.chosen[:, 0].astype(int).tolist()


def test_a_poster_only_head_has_one_decision_for_every_film(films):
    datasets, dims, info = films
    ckpt = _train(datasets, dims, info, head="concat", plot=False, epochs=3)
    attach_decisions(ckpt, datasets["val"], "f1_samples", 0.5, "none")
    assert list(ckpt["decisions"]) == [POSTER_ONLY]
    decided = product_from_head(ckpt).decide(datasets["test"])
    assert {r.split(":")[0] for r in decided.rules} == {POSTER_ONLY, WITH_PLOT}  # the film's pattern, named ...
    assert len({r.split(":")[1] for r in decided.rules}) == 1  # ... and one rule for both


def test_calibration_auto_is_chosen_by_cross_fitting_on_validation():
    rng = np.random.default_rng(3)
    y = (rng.random((300, 3)) < [0.4, 0.2, 0.1]).astype(int)
    s = np.clip(0.6 + 0.3 * y + rng.normal(0, 0.1, y.shape), 0.001, 0.999)  # over-confident, as the ASL makes
    films_ = [f"tt{i:07d}" for i in range(300)]
    figures = cross_fitted(y, s, GENRES, films_, "f1_macro", 0.5)
    assert set(figures) == {"none", "temperature", "platt"}
    # Platt brings the out-of-fold probabilities close to frequencies; the raw scores are far off
    assert figures["platt"]["ece_macro"] < figures["none"]["ece_macro"]
    d = fit_decision(POSTER_ONLY, y, s, GENRES, films_, "f1_macro", 0.5, "auto")
    top = max(f["f1_macro"] for f in figures.values())
    near = [m for m in figures if figures[m]["f1_macro"] >= top - 0.005]
    assert d.calibration_method == min(near, key=lambda m: figures[m]["ece_macro"])
    assert d.validation["calibration"]["cross_fitted"] == figures
    # decisions first: a calibration that costs the rule more than the tolerance is not taken for its ECE
    costly = {"none": {"f1_macro": 0.60, "ece_macro": 0.30}, "platt": {"f1_macro": 0.58, "ece_macro": 0.03}}
    assert choose_calibration(costly, "f1_macro") == "none"
    close = {"none": {"f1_macro": 0.600, "ece_macro": 0.30}, "platt": {"f1_macro": 0.597, "ece_macro": 0.03}}
    assert choose_calibration(close, "f1_macro") == "platt"
    # folds are by film: the same film in the same fold whatever the order
    assert folds(films_[::-1]).tolist() == folds(films_).tolist()[::-1]
    assert 100 < folds(films_).sum() < 200
    # a fixed setting is used as it is
    assert fit_decision(POSTER_ONLY, y, s, GENRES, films_, "f1_macro", 0.5, "none").calibration is None
    with pytest.raises(ValueError, match="eval.calibration"):
        fit_decision(POSTER_ONLY, y, s, GENRES, films_, "f1_macro", 0.5, "isotonic")


def test_pattern_of_names_each_film_by_its_plot():
    assert pattern_of(None, 2).tolist() == [POSTER_ONLY, POSTER_ONLY]
    assert pattern_of(np.array([True, False]), 2).tolist() == [WITH_PLOT, POSTER_ONLY]


def test_the_product_is_chosen_on_validation_and_never_reads_test(films, tmp_path):
    datasets, dims, info = films
    main = _train(datasets, dims, info, head="image", plot=False, epochs=5)
    attach_decisions(main, datasets["val"], "f1_macro", 0.5, "auto")
    candidates = [Candidate("plot-model", FusionParams(head="visio_textual", plot=True, metadata=False, dim=16,
                                                       heads=4, dropout=0.0),
                            TrainParams(epochs=30, patience=30, lr=3e-3), LossParams(name="bce"))]

    def record(ckpt):
        ckpt["features"] = {"image": {"seed": 1}, "text": {"seed": 2}}
        ckpt["metadata_spec"] = info["metadata_spec"]

    product, trained = build_product(datasets, dims, GENRES, main, candidates, "f1_macro", 0.5, "auto", 2, record)
    assert set(trained) == {"plot-model"}
    choice = product.choice["patterns"]
    assert set(choice) == {POSTER_ONLY, WITH_PLOT}
    assert choice[POSTER_ONLY]["posters"] == len(datasets["val"])
    assert choice[WITH_PLOT]["posters"] == int(datasets["val"].tensors["has_plot"].sum())
    assert set(choice[WITH_PLOT]["candidates"]) == {MAIN, "plot-model", f"mean({MAIN}, plot-model)"}
    # where the plot is there, reading it wins by far (the plot tells the genre, the poster weakly)
    assert "plot-model" in product.plans[WITH_PLOT].members
    for c in choice.values():
        best = max(c["candidates"].values(), key=lambda f: f["f1_macro"])["f1_macro"]
        assert c["candidates"][c["chosen"]]["f1_macro"] == best
    save_product(product, tmp_path / "a.pt")

    # the same choice, byte for byte, with the test split's labels shuffled or the test split gone
    shuffled = dict(datasets)
    test = datasets["test"]
    perm = np.random.default_rng(0).permutation(len(test))
    shuffled["test"] = Dataset(test.keys, test.imdb_ids, test.tensors, test.labels[perm])
    again, _ = build_product(shuffled, dims, GENRES, main, candidates, "f1_macro", 0.5, "auto", 2, record)
    save_product(again, tmp_path / "b.pt")
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
    without_test = {k: v for k, v in datasets.items() if k != "test"}
    third, _ = build_product(without_test, dims, GENRES, main, candidates, "f1_macro", 0.5, "auto", 2, record)
    save_product(third, tmp_path / "c.pt")
    assert (tmp_path / "c.pt").read_bytes() == (tmp_path / "a.pt").read_bytes()

    # loaded back, it decides the same
    loaded = load_product(tmp_path / "a.pt")
    first, second = product.decide(test), loaded.decide(test)
    assert first.rules == second.rules
    np.testing.assert_array_equal(first.probabilities, second.probabilities)
    assert loaded.reads == ["image", "text", "plot"] and loaded.features["image"] == {"seed": 1}


def _prediction_frames(folder, variant, seeds, rng, with_plot, quality):
    """product_predictions.parquet files of a fake variant: the product right on ``quality`` of the labels, the
    main model on half as many."""
    n = len(with_plot)
    y = (np.random.default_rng(7).random((n, 3)) < 0.4).astype(np.int8)
    for k in seeds:
        cols = {"key": [f"k{i:03d}" for i in range(n)], "imdb_id": [f"tt{i:07d}" for i in range(n)],
                "has_plot": with_plot if variant == "films" else [None] * n}
        for j, g in enumerate(GENRES):
            right = rng.random(n) < quality
            cols[f"y_{g}"] = y[:, j]
            cols[f"product_{g}"] = np.where(right, y[:, j], 1 - y[:, j]).astype(np.int8)
            cols[f"main_{g}"] = np.where(rng.random(n) < quality / 2 + 0.5 * (1 - quality), y[:, j],
                                         1 - y[:, j]).astype(np.int8)
            cols[f"prob_{g}"] = np.full(n, 0.5, dtype=np.float32)
            if variant == "films":  # with the synopsis withheld: the product's decisions on films without one
                cols[f"withheld_{g}"] = np.where(np.asarray(with_plot), y[:, j], cols[f"product_{g}"])
        cols["product_rule"] = ["with_plot:per_genre" if p else "poster_only:per_genre" for p in with_plot]
        cols["main_rule"] = cols["product_rule"]
        path = folder / variant / f"seed{k}" / "product_predictions.parquet"
        path.parent.mkdir(parents=True)
        pl.DataFrame(cols, schema_overrides={"has_plot": pl.Boolean}).write_parquet(path)
    return y


def test_the_product_report_pairs_seeds_and_tests_every_question(tmp_path):
    from pipeline.evaluation.product_report import (
        load_product_runs,
        load_training_curves,
        product_headline,
        product_markdown,
        product_summary,
    )
    from pipeline.models.early_stopping import replay_table

    rng = np.random.default_rng(0)
    with_plot = [i % 4 != 0 for i in range(80)]
    y = _prediction_frames(tmp_path, "films", [0, 1, 2], rng, with_plot, 0.95)
    _prediction_frames(tmp_path, "poster", [0, 1, 2], rng, with_plot, 0.7)
    runs, plans, folds = load_product_runs(tmp_path)
    assert set(runs) == {"films", "poster"} and len(runs["films"]) == 3 and folds == 1
    summary = product_summary(runs, GENRES, n_boot=500, plans=plans)
    tests = {(t["a"], t["b"], t["subset"]): t for t in summary["tests"]}
    assert len(tests) == 8
    # the films product with each synopsis withheld, on the films that had one, against the poster-only models
    assert {("films/withheld", b, "with_plot") for b in ("poster/product", "poster/main")} <= set(tests)
    withheld = [r for r in summary["rows"] if r["model"] == "withheld"]
    assert {r["subset"] for r in withheld} == {"all", "with_plot"} and withheld[1]["f1_macro_mean"] == 1.0
    assert "films/withheld" not in summary["tags_without_plot"]["Drama"]
    better = tests[("films/product", "films/main", "all")]
    assert better["diff"] > 0 and better["ci_low"] > 0 and better["significant"]
    assert all(t["p_holm"] >= t["p_value"] for t in summary["tests"])
    row = next(r for r in summary["rows"] if (r["variant"], r["model"], r["subset"]) == ("films", "product",
                                                                                       "without_plot"))
    assert row["posters"] == 20 and row["seeds"] == 3
    assert summary["tags_without_plot"]["Drama"]["true"] == int(y[[not p for p in with_plot], 0].sum())
    summary["references"] = {"Table V (films)": {"method": "moviescope", "f1_macro": 0.5926}}
    text = product_markdown(summary)
    assert "| films | product | without_plot | 20 | 3 |" in text and "| moviescope | 59.26 | - |" in text
    summary["references"] = {"Table V": {"method": "moviescope", "f1_macro": 0.5926, "f1_macro_std": 0.0089}}
    lines = product_headline(summary)
    t = better
    assert f"{100 * t['diff']:+.2f} [{100 * t['ci_low']:+.2f}, {100 * t['ci_high']:+.2f}], significant" in lines[0]
    assert "without a synopsis" in lines[1] and "moviescope, macro F1 59.26 ± 0.89." in lines[-2]
    withheld_test = tests[("films/withheld", "poster/product", "with_plot")]
    assert "withheld from the 60 test films" in lines[2] and f"{100 * withheld_test['diff']:+.2f} [" in lines[2]
    # each run's validation-loss curves (the main model's dvclive tsv, the candidates' from the product stage):
    # the early-stopping replay; a candidate whose loss falls again after two stale epochs needs patience 3
    for k in (0, 1, 2):
        run = tmp_path / "films" / f"seed{k}"
        (run / "val_loss.tsv").write_text("step\tloss\n1\t0.5\n2\t0.4\n3\t0.45\n4\t0.5\n5\t0.55\n")
        (run / "product_metrics.json").write_text(json.dumps(
            {"plans": {}, "training": {"late": {"val_loss": [0.9, 0.8, 0.85, 0.86, 0.7, 0.75, 0.76, 0.77]}}}))
    curves = load_training_curves(tmp_path)
    assert len(curves) == 6 and curves[0] == ("films/main", [0.5, 0.4, 0.45, 0.5, 0.55])
    summary["early_stopping"] = replay_table(curves)
    by_patience = {r["patience"]: r for r in summary["early_stopping"]}
    assert by_patience[2]["kept"] == 3 and by_patience[2]["moved"] == ["films/late"]
    assert by_patience[3]["kept"] == 6 and by_patience[3]["epochs"] == 3 * 5 + 3 * 8
    assert 4 not in by_patience  # recorded with patience 3: what 4 would do is past every curve's end
    assert "| 3 | 6 of 6 | 39 |" in product_markdown(summary)
    # runs on other test posters cannot be paired
    other = tmp_path / "other"
    _prediction_frames(other, "films", [0], rng, with_plot[:60], 0.9)
    _prediction_frames(other, "poster", [0], rng, with_plot, 0.9)
    with pytest.raises(Exception, match="do not share their test posters"):
        load_product_runs(other)


def test_the_product_report_pools_the_folds_of_a_cross_validation_seed_by_seed(tmp_path):
    """Runs over the folds of split.folds (each fold its own test films): a seed's folds are one run whose test
    films are every fold's, so the report reads them as it reads one split's seeds."""
    from pipeline.evaluation.product_report import load_product_runs, product_markdown, product_summary

    rng = np.random.default_rng(1)
    with_plot = [i % 4 != 0 for i in range(80)]
    flat = tmp_path / "flat"
    for variant, quality in (("films", 0.95), ("poster", 0.7)):
        _prediction_frames(flat, variant, [0, 1], rng, with_plot, quality)
    folded = tmp_path / "folded"
    for path in flat.glob("*/seed*/product_predictions.parquet"):
        frame = pl.read_parquet(path)
        for f in range(4):  # fold f holds films 20f to 20f + 19, some with a plot and some without
            out = folded / path.parent.parent.name / f"fold{f}" / path.parent.name / path.name
            out.parent.mkdir(parents=True)
            frame.filter(pl.Series([i // 20 == f for i in range(len(frame))])).write_parquet(out)
        (folded / path.parent.parent.name / "fold0" / path.parent.name / "product_metrics.json").write_text(
            json.dumps({"plans": {"poster_only": {"members": "late", "calibration": "platt", "rule": "per_genre"}}}))
    runs, plans, folds = load_product_runs(folded)
    expected, _, _ = load_product_runs(flat)
    assert folds == 4 and all(a.equals(b) for v in runs for a, b in zip(runs[v], expected[v]))
    assert plans["films"][0] == {"fold0 poster_only": {"members": "late", "calibration": "platt", "rule": "per_genre"}}
    summary = product_summary(runs, GENRES, n_boot=200, plans=plans, folds=folds)
    assert summary["test_posters"] == 80 and summary["folds"] == 4
    assert "the test folds of a 4-fold cross-validation pooled" in product_markdown(summary)
    assert "over 2 seeds (each seed's 4 cross-validation folds pooled: every film a test film once)" in (
        product_markdown(summary))
    # a fold without a seed the others have, or a poster in two folds' tests: not one cross-validation
    missing = folded / "poster" / "fold3" / "seed1"
    moved = missing.rename(tmp_path / "aside")
    with pytest.raises(Exception, match="every fold needs the same seeds"):
        load_product_runs(folded)
    moved.rename(missing)
    twice = folded / "poster" / "fold3" / "seed0" / "product_predictions.parquet"
    pl.read_parquet(flat / "poster" / "seed0" / "product_predictions.parquet").head(30).write_parquet(twice)
    with pytest.raises(Exception, match="a test poster of two folds"):
        load_product_runs(folded)


def test_the_best_single_method_reference_carries_its_seed_spread():
    """The bar "at least the best single method, within its seed spread" reads the product rule's seed std, which
    the comparison keeps per rule; the best is chosen by the mean (a reference made before the std was kept:
    None, rendered "-")."""
    from pipeline.evaluation.compare import _rules_summary
    from pipeline.evaluation.product_report import best_product_rule

    def rules(*f1):
        return _rules_summary([{"product": {"name": "per_genre", "f1_macro": f, "f1_samples": 0.5,
                                            "hamming_loss": 0.1, "genres_per_poster": 2.0},
                                "paper": {"f1_macro": f - 0.1, "f1_samples": 0.4, "hamming_loss": 0.2,
                                          "genres_per_poster": 5.0},
                                "genres_per_poster_true": 2.1} for f in f1])

    summary = {"methods": {"late": {"decision_rules": rules(0.50, 0.54)},
                           "concat": {"decision_rules": rules(0.51, 0.51, 0.51)}}}
    method, mean, std = best_product_rule(summary)
    assert (method, round(mean, 4), round(std, 4)) == ("late", 0.52, round(np.std([0.50, 0.54], ddof=1), 4))
    assert summary["methods"]["concat"]["decision_rules"]["paper"]["f1_macro_std"] < 1e-12
    del summary["methods"]["late"]["decision_rules"]["product"]["f1_macro_std"]
    assert best_product_rule(summary)[2] is None
    assert best_product_rule(summary, ["concat"])[:2] == ("concat", 0.51)
