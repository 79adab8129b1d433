import re

import numpy as np
import polars as pl
import pytest

from pipeline.core.errors import PipelineError
from pipeline.core.params import FusionParams, ParamsError, parse_group
from pipeline.evaluation.compare import compare_two, comparisons_in, films_summary, summarise, with_blends
from pipeline.evaluation.markdown import compare_two_markdown, markdown
from pipeline.evaluation.methods import (
    BASELINES,
    METHODS,
    PAPER_HEAD,
    TABLES,
    method_fusion,
    method_label,
    method_training,
    reads_films,
)
from pipeline.evaluation.runs import run_frame
from pipeline.evaluation.statistics import film_draws, holm, paired_bootstrap, seed_averaged_f1
from pipeline.scoring.metrics import f1

GENRES = ["A", "B", "C"]


def _data(n_films=120, seed=0):
    rng = np.random.default_rng(seed)
    posters_per_film = 1 + (np.arange(n_films) % 2)
    groups = np.repeat([f"tt{i:07d}" for i in range(n_films)], posters_per_film)
    y = (rng.random((len(groups), 3)) < 0.35).astype(int)
    return y, groups, rng


def test_bootstrap_identical_predictions_p_near_one():
    y, groups, rng = _data()
    pred = (rng.random(y.shape) < 0.4).astype(int)
    out = paired_bootstrap(y, [pred], [pred.copy()], groups, n_boot=300)
    assert out["diff"] == 0.0 and out["p_value"] > 0.95 and out["ci_low"] == out["ci_high"] == 0.0


def test_bootstrap_clearly_better_small_p():
    y, groups, rng = _data()
    good = np.where(rng.random(y.shape) < 0.9, y, 1 - y)  # 90% right
    bad = np.where(rng.random(y.shape) < 0.6, y, 1 - y)  # 60% right
    out = paired_bootstrap(y, [good], [bad], groups, n_boot=300)
    assert out["diff"] > 0.2 and out["ci_low"] > 0 and out["p_value"] < 0.01
    flipped = paired_bootstrap(y, [bad], [good], groups, n_boot=300)
    assert flipped["diff"] < 0 and flipped["p_value"] < 0.01


def test_the_report_replays_early_stopping_on_the_runs_curves():
    """Runs that kept their validation-loss curve get epochs per seed and the replay table: a run whose loss
    dips again after a plateau longer than a patience loses its best epoch under that patience."""
    y, groups, rng = _data(n_films=40)
    keys = [f"k{i}" for i in range(len(y))]
    frame = run_frame(keys, groups, "test", y, np.clip(y * 0.8 + rng.random(y.shape) * 0.2, 0, 1), GENRES)
    curves = {"ours": [[3.0, 2.0, 2.5, 2.6, 2.7], [3.0, 2.9, 1.0, 1.5, 1.6, 1.7]],
              "concat": [[3.0, 2.0, 2.1, 2.2, 1.9, 2.0, 2.1, 2.2]]}  # concat: a later best after 3 stale epochs
    runs = {m: [{"method": m, "seed": i, "test": frame, "val": frame.with_columns(split=pl.lit("val")),
                 "seconds": 1.0, "epochs_run": len(c), "best_epoch": int(np.argmin(c)) + 1, "val_loss": c}
                for i, c in enumerate(cs)] for m, cs in curves.items()}
    summary = summarise(runs, GENRES, n_boot=50)
    assert summary["methods"]["ours"]["best_epochs"] == [2, 3] and summary["methods"]["concat"]["epochs_runs"] == [8]
    text = markdown(summary)
    assert "| 5 (2), 6 (3) |" in text
    rows = {line.split(" | ")[0].strip("| "): line for line in text.splitlines()
            if line.startswith("| ") and "of 3 |" in line}
    assert rows["2"].startswith("| 2 | 2 of 3 | 13 |") and "concat" in rows["2"]  # 4 + 5 + 4 epochs
    assert rows["3"].startswith("| 3 | 3 of 3 |") and rows["3"].endswith("| - |")


def test_summary_and_markdown_shape():
    y, groups, rng = _data(n_films=60)
    keys = [f"k{i}" for i in range(len(y))]
    runs = {}
    for m, noise in (("ours", 0.1), ("concat", 0.3), ("naive", 0.5), ("image", 0.4), ("text", 0.45)):
        runs[m] = []
        for seed in (0, 1):
            s = np.clip(y * (1 - noise) + rng.random(y.shape) * noise, 0, 1)
            frame = run_frame(keys, groups, "test", y, s, GENRES)
            runs[m].append({"method": m, "seed": seed, "test": frame, "val": frame.with_columns(split=pl.lit("val")),
                            "seconds": 1.0, "epochs_run": 3})
    summary = summarise(runs, GENRES, n_boot=200)
    assert summary["methods"]["ours"]["thresholds"] == {g: 0.5 for g in GENRES}
    assert summary["best"] == "ours" and summary["best_baseline"] == "concat"
    assert {t["b"] for t in comparisons_in(summary, "head")} == {"concat", "naive", "image", "text"}
    assert {t["a"] for t in comparisons_in(summary, "baseline")} == {"ours", "naive", "image", "text"}
    assert len(summary["tests"]) == 7  # ours vs concat is one test, listed in both families
    text = markdown(summary)
    for heading in ("Table I", "Table II", "Table III", "Table IV", "Hit ratio", "Paired bootstrap", "p (Holm)",
                    "against each ablation and baseline", "validation"):
        assert heading in text
    assert "±" in text
    # every table row has its header's cells: concat's label "image || text" must not split a cell
    for block in text.split("\n\n"):
        rows = [line for line in block.splitlines() if line.startswith("|")]
        cells = [len(re.split(r"(?<!\\)\|", row)) for row in rows]
        assert len(set(cells)) <= 1, f"a row's cells differ from its header's:\n{block}"
    assert "concat (image \\|\\| text)" in text
    # a report is its summary.json rendered, and that file has sorted keys: the methods' order must not matter
    for s in summary["methods"].values():
        s["branches"] = {"blend": {"AP_m": 0.5, "F_m": 0.4}}
    reordered = {**summary, "methods": dict(reversed(list(summary["methods"].items())))}
    assert markdown(reordered) == markdown(summary)


def test_methods_cover_the_tables_and_override_fusion():
    for methods in TABLES.values():
        assert set(methods) <= set(METHODS)
    # the tables are derived from the registrations, in the paper's layout
    assert TABLES["I"][-1] == TABLES["II"][-1] == TABLES["III"][0] == PAPER_HEAD
    assert TABLES["V"][0] == PAPER_HEAD and {"plot", "moviescope", "visio-textual", "ours-films"} <= set(TABLES["V"])
    # baselines: other heads on the poster only (the film methods are Table V's, with their own tests)
    assert set(BASELINES) == {m for m in METHODS if METHODS.get(m).fusion.get("head") != "cross_attention"
                              and not reads_films(m)}
    assert PAPER_HEAD not in BASELINES and "ours-no-mcam" not in BASELINES and "sum" in BASELINES
    assert "moviescope" not in BASELINES and "plot" not in BASELINES
    fusion = {"head": "cross_attention", "layers": 2, "mcam": True, "dim": 64, "plot": "auto"}
    assert method_fusion("ours-no-mcam", fusion) == {"head": "cross_attention", "layers": 4, "mcam": False, "dim": 64,
                                                     "plot": False, "metadata": False}  # poster only, films or not
    assert method_fusion("ours-films", fusion)["plot"] is True and method_fusion("ours-films", fusion)["metadata"]
    # the other papers' systems are trained as their papers say; every other method by the params
    params_train, params_loss = {"oversample": False, "lr": 1e-4}, {"name": "asymmetric"}
    assert method_training("visio-textual", params_train, params_loss) == (
        {"oversample": True, "lr": 1e-4, "patience": 10}, {"name": "soft_f1"})
    assert method_training("moviescope", params_train, params_loss)[1] == {"name": "weighted_bce"}
    assert method_training("image-plot", params_train, params_loss) == (params_train, params_loss)
    assert method_fusion("gmu", fusion)["head"] == "gmu"
    with pytest.raises(KeyError, match=r"^compare.methods 'resnet' unknown; choose one of \['ours', "):
        method_fusion("resnet", fusion)
    # every method's fusion overrides are valid fusion params (its head registered, its keys known); a blend is
    # made from its members' runs and never trained
    for m in METHODS:
        if METHODS.get(m).blend:
            assert set(METHODS.get(m).blend) <= set(METHODS) and reads_films(m)
            with pytest.raises(PipelineError, match=f"{m} is not trained: the report averages the runs of"):
                method_fusion(m, fusion)
            continue
        assert FusionParams(**method_fusion(m, {})).head == METHODS.get(m).fusion["head"]


def test_methods_say_what_they_are_and_old_names_are_refused_with_the_new_one():
    assert not [m for m in METHODS if m.count("mcam") > 1 or m.startswith("mcam")]
    assert method_label("ours-no-mcam") == "Ours (L=4) -MCAM"
    assert method_label("mcam-no-mcam") == "Ours (L=4) -MCAM"  # an earlier comparison's run folder
    assert method_label("resnet") == "resnet"
    with pytest.raises(ParamsError, match=r"^params.yaml: compare.methods 'mcam-L1' was renamed 'ours-L1'$"):
        parse_group("compare", {"methods": ["ours", "mcam-L1"]})
    with pytest.raises(ParamsError, match=r"^params.yaml: compare.methods 'resnet' unknown; choose one of \["):
        parse_group("compare", {"methods": ["resnet"]})
    assert parse_group("compare", {}).methods == [m for m in METHODS.names() if not reads_films(m)]


def test_per_genre_thresholds_come_from_validation_scores_only():
    """The report tunes each run's thresholds on its validation rows; test rows never move them."""
    y, groups, rng = _data(n_films=80)
    keys = [f"k{i}" for i in range(len(y))]
    s_val = np.clip(0.3 * y + 0.5 * rng.random(y.shape), 0, 1)  # positives score higher, all below 0.8
    base = run_frame(keys, groups, "val", y, s_val, GENRES)

    def summary_with_test(s_test):
        test = run_frame(keys, groups, "test", y, s_test, GENRES)
        runs = {"ours": [{"method": "ours", "seed": 0, "test": test, "val": base, "seconds": 1.0, "epochs_run": 1}]}
        return summarise(runs, GENRES, n_boot=10, threshold_mode="per_genre", threshold=0.5)

    a = summary_with_test(rng.random(y.shape))
    b = summary_with_test(np.clip(y * 0.9 + 0.05, 0, 1))
    assert a["methods"]["ours"]["thresholds"] == b["methods"]["ours"]["thresholds"]
    assert any(t != 0.5 for t in a["methods"]["ours"]["thresholds"].values())
    assert "tuned on each run's validation scores" in markdown(a)


def _run(method, seed, keys, groups, y, s_val, s_test):
    return {"method": method, "seed": seed, "val": run_frame(keys, groups, "val", y, s_val, GENRES),
            "test": run_frame(keys, groups, "test", y, s_test, GENRES), "seconds": 1.0, "epochs_run": 1}


def test_best_baseline_is_chosen_on_validation_not_test():
    """concat is best on test, sum on validation: the reference must be sum (no winner's curse)."""
    y, groups, rng = _data(n_films=80)
    keys = [f"k{i}" for i in range(len(y))]
    good = np.clip(y * 0.8 + rng.random(y.shape) * 0.3, 0, 1)
    poor = rng.random(y.shape)
    runs = {"concat": [_run("concat", 0, keys, groups, y, poor, good)],
            "sum": [_run("sum", 0, keys, groups, y, good, poor)]}
    summary = summarise(runs, GENRES, n_boot=50)
    assert summary["ranking"][0] == "concat"
    assert summary["best_baseline"] == "sum"


def test_spread_over_seeds_is_the_sample_std():
    y, groups, rng = _data(n_films=60)
    keys = [f"k{i}" for i in range(len(y))]
    runs = {"concat": [_run("concat", s, keys, groups, y, rng.random(y.shape), rng.random(y.shape))
                       for s in range(3)]}
    summary = summarise(runs, GENRES, n_boot=10)
    values = [f1(y, (r["test"][[f"s_{g}" for g in GENRES]].to_numpy() > 0.5).astype(int)) for r in runs["concat"]]
    assert summary["methods"]["concat"]["std"]["f1_macro"] == pytest.approx(np.std(values, ddof=1))
    assert np.std(values, ddof=1) > np.std(values)


def test_holm_adjustment():
    # sorted p: 0.01*3, 0.02*2, 0.04*1 -> 0.03, 0.04, 0.04 (kept monotone), back in input order
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    assert holm([0.01, 0.2]) == pytest.approx([0.02, 0.2])
    # the cap: 3 x 0.4 and 2 x 0.6 exceed 1 and are held at 1, not 1.2
    assert holm([0.6, 0.4, 0.9]) == [1.0, 1.0, 1.0]
    assert holm([0.02, 0.6]) == pytest.approx([0.04, 0.6])


def test_vectorised_bootstrap_equals_resampling_the_rows():
    y, groups, rng = _data(n_films=50)
    preds = [(rng.random(y.shape) < 0.4).astype(int) for _ in range(2)]
    w = film_draws(groups, n_boot=5, seed=3)
    fast = seed_averaged_f1(y, preds, w)
    for b in range(5):
        rows = np.repeat(np.arange(len(y)), w[b].astype(int))
        assert fast[b] == pytest.approx(np.mean([f1(y[rows], p[rows]) for p in preds]), abs=1e-12)
    # the draws are of films: a film's posters come along together, and each draw takes as many films as there are
    films, first = np.unique(groups, return_index=True)
    w = film_draws(groups, n_boot=200, seed=1)
    for film in films:
        cols = np.flatnonzero(groups == film)
        assert (w[:, cols] == w[:, cols[:1]]).all()  # a per-poster bootstrap would draw them apart
    assert (w[:, first].sum(axis=1) == len(films)).all()


def test_table_iii_ends_at_the_papers_linear_addition():
    assert TABLES["III"][-1] == "sum"
    y, groups, rng = _data(n_films=40)
    keys = [f"k{i}" for i in range(len(y))]
    runs = {m: [_run(m, 0, keys, groups, y, rng.random(y.shape), rng.random(y.shape))]
            for m in ("ours", "ours-no-mcam-no-smsam", "sum")}
    text = markdown(summarise(runs, GENRES, n_boot=10))
    table_iii = text.split("## Table III")[1].split("## Table IV")[0]
    assert "the paper's -MCAM -SMSAM" in table_iii and "linear-addition baseline" in table_iii


def test_report_measures_the_product_rule_on_test():
    """Validation scores that put every genre above 0.5: the paper's rule tags all 3 genres there, and the
    product rule chosen on *validation* tags about as many as the posters have. On test the paper's rule would
    be right (test scores are clean at 0.5), so a rule chosen on test would be the paper's: it is not."""
    y, groups, rng = _data(n_films=120)
    keys = [f"k{i}" for i in range(len(y))]
    s_val = np.clip(0.55 + 0.4 * y * rng.random(y.shape) + 0.02 * rng.random(y.shape), 0, 1)
    s = np.clip(0.55 + 0.4 * y * rng.random(y.shape) + 0.02 * rng.random(y.shape), 0, 1)
    s_clean = np.where(y == 1, 0.9, 0.1)
    from pipeline.scoring.thresholds import choose_rule

    assert choose_rule(y, s_clean, GENRES)[0].name == "global@0.5"  # what choosing on test would give
    clean = summarise({"concat": [_run("concat", 0, keys, groups, y, s_val, s_clean)]}, GENRES, n_boot=10)
    assert clean["methods"]["concat"]["decision_rules"]["chosen"][0] != "global@0.5"
    runs = {"concat": [_run("concat", 0, keys, groups, y, s_val, s)]}
    summary = summarise(runs, GENRES, n_boot=10)
    r = summary["methods"]["concat"]["decision_rules"]
    assert r["paper"]["genres_per_poster"] == 3.0
    assert r["product"]["genres_per_poster"] < 2.0 and r["product"]["f1_samples"] > r["paper"]["f1_samples"]
    assert r["chosen"][0] != "global@0.5"
    assert "## Decision rules on test" in markdown(summary)


def _comparison(y, groups, keys, rng, noise):
    """method -> runs of a fake comparison; ``noise`` per method (less noise = better scores)."""
    out = {}
    for m, n in noise.items():
        out[m] = []
        for seed in (0, 1):
            s = np.clip(y * (1 - n) + rng.random(y.shape) * n, 0, 1)
            out[m].append(_run(m, seed, keys, groups, y, s, s))
    return out


def test_compare_two_pairs_methods_and_gains_over_the_reference():
    """Better text in A: text-using methods gain over image within A, not within B, and the tests say so."""
    y, groups, rng = _data(n_films=150)
    keys = [f"k{i}" for i in range(len(y))]
    a = _comparison(y, groups, keys, rng, {"image": 0.8, "concat": 0.3, "text": 0.5})
    b = _comparison(y, groups, keys, rng, {"image": 0.8, "concat": 0.8, "text": 0.95})
    b["image"] = a["image"]  # image only reads no text: the same runs in both
    out = compare_two(a, b, GENRES, ("new", "old"), n_boot=1000)  # Holm x9 needs p < 1/180
    by = {(t["kind"], t["method"]): t for t in out["tests"]}
    assert by[("method", "image")]["diff"] == 0.0 and by[("method", "image")]["p_holm"] > 0.5
    assert by[("method", "concat")]["diff"] > 0.05 and by[("method", "concat")]["p_holm"] < 0.05
    assert by[("gain_a", "concat")]["ci_low"] > 0 and by[("gain_diff", "concat")]["p_holm"] < 0.05
    assert abs(by[("gain_b", "concat")]["diff"]) < 0.05
    # every test is in the one Holm family, and the report names both sides
    assert len(out["tests"]) == 3 + 2 * 3 and all(t["p_holm"] >= t["p_value"] for t in out["tests"])
    text = compare_two_markdown(out)
    assert "new - old" in text and "Gain over Image only" in text


def test_compare_two_refuses_different_test_posters():
    y, groups, rng = _data(n_films=40)
    keys = [f"k{i}" for i in range(len(y))]
    a = _comparison(y, groups, keys, rng, {"image": 0.5})
    b = _comparison(y, groups, [f"other{i}" for i in range(len(y))], rng, {"image": 0.5})
    with pytest.raises(PipelineError, match="test posters differ"):
        compare_two(a, b, GENRES)
    with pytest.raises(PipelineError, match="no method in both"):
        compare_two(a, {}, GENRES)


def test_a_blend_averages_its_members_probabilities_seed_by_seed_and_is_tested_in_table_v():
    """moviescope-separate is the MovieScope paper's system: its image, plot and metadata networks trained apart,
    their probabilities averaged; the report makes it from those runs and tests it against the joint head."""
    y, groups, rng = _data(n_films=60)
    keys = [f"k{i}" for i in range(len(y))]
    has_plot = np.arange(len(y)) % 4 != 0
    runs = {}
    for m in ("image", "plot", "metadata", "moviescope", "ours"):
        runs[m] = []
        for seed in (0, 1):
            s_val, s_test = rng.random(y.shape), rng.random(y.shape)
            run = _run(m, seed, keys, groups, y, s_val, s_test)
            for split in ("val", "test"):
                run[split] = run[split].with_columns(pl.Series("has_plot", has_plot))
            runs[m].append(run)
    out = with_blends(runs)
    assert set(out) == set(runs) | {"moviescope-separate"} and with_blends({"image": runs["image"]}).keys() == {"image"}
    for i, blended in enumerate(out["moviescope-separate"]):
        assert blended["seed"] == i and blended["epochs_run"] == 3
        for split in ("val", "test"):
            mean = np.mean([runs[m][i][split].select(f"s_{g}" for g in GENRES).to_numpy()
                            for m in ("image", "plot", "metadata")], axis=0)
            np.testing.assert_allclose(blended[split].select(f"s_{g}" for g in GENRES).to_numpy(), mean, rtol=1e-6)
            assert blended[split]["key"].to_list() == keys
    films = films_summary(out, GENRES, n_boot=100)
    assert "moviescope-separate" in films["methods"]
    assert [(t["a"], t["b"]) for t in films["tests"] if "moviescope-separate" in (t["a"], t["b"])] == [
        ("moviescope-separate", "moviescope")]
    runs["plot"] = runs["plot"][:1]
    with pytest.raises(PipelineError, match="moviescope-separate: its members image, plot, metadata ran with "
                                            "different seeds"):
        with_blends(runs)


def test_compare_two_on_validation_judges_the_validation_scores_only():
    """A setting chosen on validation: A is better on validation and worse on test, B the reverse; split val
    calls A better, split test B, and per-genre thresholds (tuned on validation) are refused there."""
    y, groups, rng = _data(n_films=120)
    keys = [f"k{i}" for i in range(len(y))]
    good = np.clip(y * 0.7 + rng.random(y.shape) * 0.4, 0, 1)
    poor = rng.random(y.shape)
    a = {"ours": [_run("ours", s, keys, groups, y, good, poor) for s in (0, 1)]}
    b = {"ours": [_run("ours", s, keys, groups, y, poor, good) for s in (0, 1)]}
    on_val, on_test = (compare_two(a, b, GENRES, n_boot=200, split=split)["tests"][0] for split in ("val", "test"))
    assert on_val["diff"] > 0.1 and on_val["ci_low"] > 0
    assert on_test["diff"] == pytest.approx(-on_val["diff"]) and on_test["ci_high"] < 0
    out = compare_two(a, b, GENRES, n_boot=200, split="val")
    assert (out["split"], out["posters"]) == ("val", len(y)) and compare_two_markdown(out).count("Validation split")
    with pytest.raises(PipelineError, match="split val needs threshold_mode global"):
        compare_two(a, b, GENRES, threshold_mode="per_genre", split="val")


def test_compare_two_restricts_to_named_methods_and_keeps_the_reference():
    y, groups, rng = _data(n_films=40)
    keys = [f"k{i}" for i in range(len(y))]
    a = _comparison(y, groups, keys, rng, {"image": 0.5, "concat": 0.4, "text": 0.6})
    out = compare_two(a, a, GENRES, n_boot=100, methods=["concat"])
    assert out["methods"] == ["concat", "image"] and len(out["tests"]) == 2 + 3
    # a comparison against itself: the same runs on both sides, every method's difference exactly 0 (p 1; the
    # seed-level test's p is not bounded by the draws, so no resolution warning)
    assert all(t["diff"] == 0 and t["p_value"] == 1.0 for t in out["tests"] if t["kind"] == "method")
    assert "No test here can reach" not in compare_two_markdown(out)
    with pytest.raises(PipelineError, match="not in both comparisons: gmu"):
        compare_two(a, a, GENRES, methods=["gmu"])


def _write_comparison(folder, runs):
    """Runs as the compare stage writes them: method/seedN/{scores.parquet, run.json}."""
    import json

    from pipeline.core.io import write_parquet

    for method, rs in runs.items():
        for r in rs:
            d = folder / method / f"seed{r['seed']}"
            d.mkdir(parents=True)
            write_parquet(d / "scores.parquet", pl.concat([r["val"], r["test"]]))
            (d / "run.json").write_text(json.dumps({"method": method, "seed": r["seed"], "epochs_run": 1}))


def test_compare_two_command_writes_the_report(tmp_path):
    import yaml
    from typer.testing import CliRunner

    from stages.cli import app

    y, groups, rng = _data(n_films=60)
    keys = [f"k{i}" for i in range(len(y))]
    _write_comparison(tmp_path / "a", _comparison(y, groups, keys, rng, {"image": 0.8, "concat": 0.3}))
    _write_comparison(tmp_path / "b", _comparison(y, groups, keys, rng, {"image": 0.8, "concat": 0.8}))
    params = yaml.safe_load(open("params.yaml"))
    params["data"]["genres"] = GENRES
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    args = ["compare-two", str(tmp_path / "a"), str(tmp_path / "b"), "--labels", "new", "old",
            "--params", str(tmp_path / "params.yaml"), "--out", str(tmp_path / "two.md")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "two.md").read_text() == result.output and "## Each method: new - old" in result.output
    assert {t["kind"] for t in yaml.safe_load((tmp_path / "two.json").read_text())["tests"]} == {
        "method", "gain_a", "gain_b", "gain_diff"}
    missing = CliRunner().invoke(app, [*args[:2], str(tmp_path / "nowhere"), *args[3:]])
    assert missing.exit_code != 0 and "nowhere: no comparison runs" in missing.output


def test_films_table_v_reports_all_films_and_the_plot_subset_with_its_own_family():
    """Table V: each film method on all test films and on those with a plot; the pairs of FILM_PAIRS and the
    per-genre poster-against-plot tests, Holm-adjusted together; poster-only tests unchanged by film methods."""
    from pipeline.evaluation.compare import films_summary
    from pipeline.evaluation.markdown import films_markdown
    from pipeline.evaluation.methods import FILM_PAIRS

    y, groups, rng = _data(n_films=80)
    keys = [f"k{i}" for i in range(len(y))]
    has_plot = np.array([int(g[2:]) % 4 != 0 for g in groups])  # a quarter of the films have no plot
    runs = {}
    # plot reads the truth where a plot exists, guesses elsewhere; image is noisy everywhere
    for m in ("ours", "image", "plot", "image-plot", "ours-plot"):
        runs[m] = []
        for seed in (0, 1):
            noise = rng.random(y.shape)
            if m in ("plot", "ours-plot"):
                s = np.where(has_plot[:, None], 0.9 * y + 0.1 * noise, noise)
            else:
                s = np.clip(0.6 * y + 0.4 * noise, 0, 1)
            frame = run_frame(keys, groups, "test", y, s, GENRES, has_plot)
            runs[m].append({"method": m, "seed": seed, "test": frame, "val": frame.with_columns(split=pl.lit("val")),
                            "seconds": 1.0, "epochs_run": 3})
    films = films_summary(runs, GENRES, n_boot=200)
    assert films["methods"] == ["ours", "image", "plot", "image-plot", "ours-plot"]  # Table V order
    sub = films["subsets"]
    assert sub["all"]["posters"] == len(y) and sub["with_plot"]["posters"] == int(has_plot.sum())
    assert sub["with_plot"]["films"] == 60
    # the plot is far better where it exists than over all films (a quarter without a plot)
    plot_f1 = {s: sub[s]["figures"]["plot"]["f1_macro"]["mean"] for s in sub}
    assert plot_f1["with_plot"] > plot_f1["all"] + 0.05
    asked = {(t["a"], t["b"]) for t in films["tests"]}
    assert asked == {(a, b) for a, b, _, _ in FILM_PAIRS if a in runs and b in runs}
    assert {t["subset"] for t in films["tests"]} == {"all", "with_plot", "without_plot"}
    # each pair on the films it names: without a plot, a film model against falling back to a poster-only one
    assert {(t["a"], t["b"]) for t in films["tests"] if t["subset"] == "without_plot"} == {("ours-plot", "ours")}
    assert len(films["tests"]) == 2 + 2 + 3  # image-plot vs plot, ours-plot vs plot (2 each), ours-plot vs ours
    assert sub["without_plot"]["posters"] == int((~has_plot).sum())
    assert [t["genre"] for t in films["genre_tests"]] == GENRES
    every = films["tests"] + films["genre_tests"]
    assert all(t["p_holm"] >= t["p_value"] for t in every)
    assert max(t["p_holm"] for t in every) <= 1.0
    # a test's Holm factor counts this family only: the smallest p is multiplied by its size
    smallest = min(every, key=lambda t: t["p_value"])
    assert smallest["p_holm"] == pytest.approx(min(1.0, len(every) * smallest["p_value"]))
    text = "\n".join(films_markdown(films, {m: m for m in runs}))
    assert "Table V" in text and "what the plot adds over the poster" in text and "| Drama" not in text
    # the poster-only tests of the report never include a film method
    summary = summarise(runs, GENRES, n_boot=200)
    tested = {t["a"] for t in summary["tests"]} | {t["b"] for t in summary["tests"]}
    assert tested == {"ours", "image"}
    assert summary["best"] in ("ours", "image")
    # runs without films have no has_plot: a clear error, not a silent table
    bare = {m: [{**r, "test": r["test"].drop("has_plot")} for r in rs] for m, rs in runs.items()}
    with pytest.raises(ValueError, match="has no has_plot column|have no has_plot column"):
        films_summary(bare, GENRES, n_boot=200)


def test_summarise_refuses_runs_of_different_test_posters_or_labels():
    """Runs are paired row by row: a run of another split (or other labels) is one line, not a silent mix-up."""
    from pipeline.core.errors import PipelineError

    y, groups, rng = _data(n_films=40)
    keys = [f"k{i}" for i in range(len(y))]
    s = rng.random(y.shape)
    ok = {"concat": [_run("concat", 0, keys, groups, y, s, s)], "sum": [_run("sum", 0, keys, groups, y, s, s)]}
    summarise(ok, GENRES, n_boot=10)
    other_keys = {"concat": ok["concat"], "sum": [_run("sum", 1, keys[::-1], groups[::-1], y[::-1], s, s)]}
    with pytest.raises(PipelineError, match=r"^sum seed 1: its test posters or labels differ from concat seed 0's"):
        summarise(other_keys, GENRES, n_boot=10)
    flipped = y.copy()
    flipped[0] = 1 - flipped[0]
    other_labels = {"concat": ok["concat"], "sum": [_run("sum", 0, keys, groups, flipped, s, s)]}
    with pytest.raises(PipelineError, match="differ from concat seed 0"):
        summarise(other_labels, GENRES, n_boot=10)


def test_rule_line_calls_only_a_threshold_of_05_the_papers_rule():
    from pipeline.scoring.thresholds import DecisionRule, rule_line

    assert "(the paper's rule)" in rule_line(DecisionRule.global_threshold(GENRES, 0.5))
    line = rule_line(DecisionRule.global_threshold(GENRES, 0.3))
    assert "the paper's rule)" not in line and "at another value" in line


def test_two_level_interval_covers_training_noise_that_the_film_only_one_misses():
    """Two methods whose runs are the same pool of good and poor runs, drawn unluckily (A got two good seeds,
    B one): the film-only bootstrap calls A better; resampling the seeds too does not."""
    y, groups, rng = _data(n_films=300)
    good = [np.where(rng.random(y.shape) < 0.1, 1 - y, y) for _ in range(3)]
    poor = [np.where(rng.random(y.shape) < 0.45, 1 - y, y) for _ in range(3)]
    a, b = [good[0], good[1], poor[0]], [good[2], poor[1], poor[2]]
    out = paired_bootstrap(y, a, b, groups, n_boot=1000)
    assert out["diff"] > 0.1
    assert out["film_only"]["p_value"] < 0.01 and out["film_only"]["ci_low"] > 0  # film-only: a "finding"
    assert out["p_value"] > 0.05 and out["ci_low"] < 0 < out["ci_high"]  # two-level: not one
    width = out["ci_high"] - out["ci_low"]
    assert width > 3 * (out["film_only"]["ci_high"] - out["film_only"]["ci_low"])
    # one seed each: no seed noise to estimate, the interval is the film-only one (its t form: film degrees of freedom)
    one = paired_bootstrap(y, a[:1], b[:1], groups, n_boot=300)
    assert one["df"] == len(np.unique(groups)) - 1
    film_width = one["film_only"]["ci_high"] - one["film_only"]["ci_low"]
    assert one["ci_high"] - one["ci_low"] == pytest.approx(film_width, rel=0.15)


def test_resampler_draws_are_fixed_per_method_and_independent_between_methods():
    from pipeline.evaluation.statistics import Resampler

    _, groups, _ = _data(n_films=50)
    r = Resampler(groups, n_boot=200)
    assert np.array_equal(r.seeds("ours", 5), r.seeds("ours", 5))
    assert not np.array_equal(r.seeds("ours", 5), r.seeds("concat", 5))
    counts = np.bincount(r.seeds("ours", 5).ravel(), minlength=5) / (200 * 5)
    assert np.allclose(counts, 0.2, atol=0.03)  # each seed drawn about equally
    per_seed = np.arange(5, dtype=float)[:, None].repeat(200, 1)  # seed i scores i on every film draw
    two, film, seeds = r.stats("ours", per_seed, np.arange(5, dtype=float))
    assert np.all(film == 2.0) and two.std() > 0.3 and abs(two.mean() - 2.0) < 0.15 and list(seeds) == [0, 1, 2, 3, 4]


def test_every_pair_of_poster_methods_is_tested_in_its_own_holm_family():
    """A claim about any two methods (not only the paper's head against one) has a test: every pair of poster-only
    methods, once, a ahead on test, Holm over that family alone; film methods stay out of it."""
    from pipeline.evaluation.compare import ALL_PAIRS, QUESTIONS

    y, groups, rng = _data(n_films=80)
    keys = [f"k{i}" for i in range(len(y))]
    quality = {"ours": 0.9, "ours-L1": 0.85, "sum": 0.75, "late": 0.7, "image": 0.6}
    runs = {m: [_run(m, s, keys, groups, y, np.where(rng.random(y.shape) < q, y, 1 - y) * 0.8 + 0.1,
                     np.where(rng.random(y.shape) < q, y, 1 - y) * 0.8 + 0.1) for s in range(2)]
            for m, q in quality.items()}
    runs["plot"] = [_run("plot", s, keys, groups, y, rng.random(y.shape), rng.random(y.shape)) for s in range(2)]
    summary = summarise(runs, GENRES, n_boot=400)
    pairs = summary["all_pairs"]
    assert len(pairs) == 10 and {frozenset((t["a"], t["b"])) for t in pairs} == {
        frozenset((a, b)) for i, a in enumerate(quality) for b in list(quality)[i + 1:]}
    f_m = {m: summary["methods"][m]["mean"]["f1_macro"] for m in quality}
    assert all(f_m[t["a"]] >= f_m[t["b"]] and t["diff"] >= 0 for t in pairs)
    assert all(t["family"] == ALL_PAIRS for t in pairs) and all(t["family"] == QUESTIONS for t in summary["tests"])
    # each family is adjusted over itself: its Holm p from its own p-values, not from the other family's too
    assert [t["p_holm"] for t in pairs] == pytest.approx(holm([t["p_value"] for t in pairs]))
    assert [t["p_holm"] for t in summary["tests"]] == pytest.approx(holm([t["p_value"] for t in summary["tests"]]))
    # the pair the paper's questions never ask (two non-reference methods) is in it, with its film-only interval
    late_image = next(t for t in pairs if {t["a"], t["b"]} == {"late", "image"})
    assert not any({t["a"], t["b"]} == {"late", "image"} for t in summary["tests"])
    assert late_image["a"] == "late" and late_image["ci_low"] <= late_image["diff"] <= late_image["ci_high"]
    assert "film_only" in late_image
    text = markdown(summary)
    section = text.split("## Every pair of poster-only methods")[1]
    # the seed-level test's p is Student's t, with no floor; a report made with the percentile bootstrap (no df)
    # counts p from its draws and says the smallest Holm p they allow: 10 * 2 / 401
    assert "all 10 pairs" in section and "smallest p (Holm)" not in section
    percentile = {**summary, "all_pairs": [{k: v for k, v in t.items() if k != "df"} for t in pairs]}
    assert "0.0499" in markdown(percentile).split("## Every pair of poster-only methods")[1]
    assert section.count("| Late fusion (MovieScope ensemble) | Image only |") == 1


def test_report_product_rule_reads_scores_calibrated_as_train_would():
    """With eval.calibration the report's product rule is chosen on calibrated validation scores and measured on
    calibrated test scores (what predict would do); the paper's figures stay on the head's scores."""
    from pipeline.scoring.calibration import apply_calibration, fit_calibration
    from pipeline.scoring.thresholds import choose_rule, measure

    y, groups, rng = _data(n_films=150)
    keys = [f"k{i}" for i in range(len(y))]
    s_val = np.clip(0.5 + 0.3 * y + 0.3 * rng.random(y.shape), 0, 1)  # shifted up, as the asymmetric loss does
    s = np.clip(0.5 + 0.3 * y + 0.3 * rng.random(y.shape), 0, 1)
    runs = {"concat": [_run("concat", 0, keys, groups, y, s_val, s)]}
    plain = summarise(runs, GENRES, n_boot=10)["methods"]["concat"]["decision_rules"]
    platt = summarise(runs, GENRES, n_boot=10, calibration="platt")["methods"]["concat"]["decision_rules"]
    fitted = fit_calibration("platt", y, s_val, GENRES)
    rule, _ = choose_rule(y, apply_calibration(fitted, s_val, GENRES), GENRES)
    expected = measure(rule, y, apply_calibration(fitted, s, GENRES))
    figures = {k: v for k, v in platt["product"].items() if k != "f1_macro_std"}  # one seed: std 0
    assert figures == pytest.approx({k: expected[k] for k in figures}) and platt["product"]["f1_macro_std"] == 0
    assert platt["paper"] == plain["paper"] and platt["product"] != plain["product"]


def test_a_p_value_carries_its_monte_carlo_error_and_another_seed_moves_it_about_that_much():
    from pipeline.evaluation.statistics import paired_test

    stats = np.concatenate([-np.ones(500), np.ones(9500)])  # 5% of draws at or below zero
    t = paired_test(1.0, stats)
    assert t["p_value"] == pytest.approx(2 * 501 / 10001)
    assert t["p_mc_error"] == pytest.approx(2 * np.sqrt(0.0501 * 0.9499 / 10000), rel=1e-3)
    assert paired_test(0.0, np.zeros(100))["p_mc_error"] == pytest.approx(2 * np.sqrt(0.25 / 100))  # capped tail
    y, groups, rng = _data(n_films=80)
    a = [(rng.random(y.shape) < np.where(y == 1, 0.6, 0.3)).astype(np.int64) for _ in range(3)]
    b = [(rng.random(y.shape) < np.where(y == 1, 0.55, 0.3)).astype(np.int64) for _ in range(3)]
    runs = [paired_bootstrap(y, a, b, groups, n_boot=2000, seed=s) for s in range(4)]
    spread = max(r["p_value"] for r in runs) - min(r["p_value"] for r in runs)
    assert spread <= 6 * max(r["p_mc_error"] for r in runs)


def test_a_call_within_its_monte_carlo_error_of_the_threshold_is_re_drawn_before_it_is_stated():
    """settle_borderline re-draws only the tests whose Holm-adjusted p lies within two Monte Carlo errors (times
    the Holm factor) of 0.05, from more draws and the next seed, and adjusts the family again from them."""
    from pipeline.evaluation.markdown import p_cell
    from pipeline.evaluation.statistics import RECHECK_DRAWS, holm_factors, settle_borderline

    assert holm_factors([0.3, 0.01, 0.02]) == [1, 3, 2]
    tests = [{"name": "far", "p_value": 0.0002, "p_mc_error": 0.0003},   # 3 x 0.0002: far below 0.05
             {"name": "edge", "p_value": 0.0245, "p_mc_error": 0.003},   # 2 x 0.0245 = 0.049, error 2 x 0.003
             {"name": "null", "p_value": 0.60, "p_mc_error": 0.01}]
    asked = []

    def retest(t, draws, seed):
        asked.append((t["name"], draws, seed))
        return {"p_value": 0.031, "p_mc_error": 0.0013}

    settled = settle_borderline(tests, retest, 10000, 0)
    assert asked == [("edge", 10000 * RECHECK_DRAWS, 1)] and settled[1]["rechecked"] and "rechecked" not in settled[0]
    assert [t["p_holm"] for t in settled] == holm([0.0002, 0.031, 0.60])  # the family adjusted from the re-draw
    assert settled[1]["p_holm"] > 0.05  # the first draws called it significant, the settled draws do not
    assert p_cell(settled[1]) == "0.0310 ± 0.0013 (re-drawn: 50000 draws, seed 1)"
    # a test the caller cannot re-draw stays as drawn, unmarked
    kept = settle_borderline([{"p_value": 0.0245, "p_mc_error": 0.003} for _ in range(2)], lambda t, n, s: None,
                             10000, 0)
    assert not any("rechecked" in t for t in kept)
