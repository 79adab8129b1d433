import numpy as np
import pytest
from sklearn import metrics as skm

from pipeline.scoring import metrics as m


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    y = (rng.random((200, 6)) < 0.3).astype(int)
    y[y.sum(1) == 0, 0] = 1
    score = np.clip(y * 0.35 + rng.random((200, 6)) * 0.7, 0, 1)
    return y, score, (score > 0.5).astype(int)


@pytest.mark.parametrize("average", ["macro", "micro", "weighted", "samples"])
def test_f1_matches_sklearn(data, average):
    y, _, pred = data
    assert m.f1(y, pred, average) == pytest.approx(skm.f1_score(y, pred, average=average, zero_division=0))


def test_hamming_and_per_genre_match_sklearn(data):
    y, _, pred = data
    assert m.hamming_loss(y, pred) == pytest.approx(skm.hamming_loss(y, pred))
    pg = m.per_genre(y, pred)
    p, r, f, s = skm.precision_recall_fscore_support(y, pred, zero_division=0)
    np.testing.assert_allclose(pg["precision"], p)
    np.testing.assert_allclose(pg["recall"], r)
    np.testing.assert_allclose(pg["f1"], f)
    np.testing.assert_array_equal(pg["support"], s)
    for j in range(y.shape[1]):
        assert pg["balanced_accuracy"][j] == pytest.approx(skm.balanced_accuracy_score(y[:, j], pred[:, j]))
        tn, fp, fn, tp = skm.confusion_matrix(y[:, j], pred[:, j]).ravel()
        assert pg["specificity"][j] == pytest.approx(tn / (tn + fp))


def test_average_precision_and_pr_curve_match_sklearn(data):
    y, score, _ = data
    ap = m.average_precision(y, score)
    np.testing.assert_allclose(ap, skm.average_precision_score(y, score, average=None))
    p, r, t = m.precision_recall_curve(y[:, 2], score[:, 2])
    sp, sr, st = skm.precision_recall_curve(y[:, 2], score[:, 2])
    np.testing.assert_allclose(p, sp)
    np.testing.assert_allclose(r, sr)
    np.testing.assert_allclose(t, st)


def test_balanced_accuracy_hand_worked():
    # genre 0: tp=1 fn=1 tn=2 fp=0 -> (0.5 + 1)/2 = 0.75 ; genre 1: tp=2 fn=0 tn=1 fp=1 -> (1 + 0.5)/2 = 0.75
    # genre 2: tp=0 fn=1 tn=3 fp=0 -> (0 + 1)/2 = 0.5
    y = np.array([[1, 1, 0], [1, 0, 0], [0, 1, 1], [0, 0, 0]])
    p = np.array([[1, 1, 0], [0, 1, 0], [0, 1, 0], [0, 0, 0]])
    assert m.balanced_accuracy(y, p, "macro") == pytest.approx((0.75 + 0.75 + 0.5) / 3)
    # micro: tp=3 fn=2 tn=6 fp=1 -> (3/5 + 6/7)/2
    assert m.balanced_accuracy(y, p, "micro") == pytest.approx((3 / 5 + 6 / 7) / 2)
    # weighted by support (2, 2, 1)
    assert m.balanced_accuracy(y, p, "weighted") == pytest.approx((0.75 * 2 + 0.75 * 2 + 0.5) / 5)
    # samples: row0 tpr 1 tnr 1 -> 1; row1 tpr 0 tnr 0.5 -> .25; row2 tpr .5 tnr 1 -> .75; row3 no positive -> tnr 1
    assert m.balanced_accuracy(y, p, "samples") == pytest.approx((1 + 0.25 + 0.75 + 1) / 4)


def test_all_negative_predictions_give_half_balanced_accuracy():
    y = np.array([[1, 0], [0, 1], [1, 1]])
    assert m.balanced_accuracy(y, np.zeros_like(y), "macro") == 0.5


def test_hit_ratio_hand_worked():
    y = np.array([[1, 0, 0], [0, 1, 1], [0, 0, 1]])
    s = np.array([[0.9, 0.1, 0.0], [0.5, 0.4, 0.3], [0.1, 0.2, 0.3]])
    assert m.hit_ratio(y, s) == pytest.approx(2 / 3)


def test_all_metrics_threshold_is_strict_and_finite(data):
    y, score, _ = data
    out = m.all_metrics(y, score, 0.5, [f"g{j}" for j in range(6)])
    assert all(np.isfinite(v) for k, v in out.items() if k != "per_genre")
    s = np.full((2, 2), 0.5)
    assert m.all_metrics(np.array([[1, 0], [0, 1]]), s, 0.5, ["a", "b"])["f1_micro"] == 0.0  # 0.5 is not > 0.5


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError):
        m.f1(np.zeros((2, 3)), np.zeros((3, 2)))


def test_per_genre_thresholds_are_tuned_on_validation_only():
    from pipeline.evaluation.evaluate import decision_thresholds
    from pipeline.scoring.thresholds import tune_thresholds

    rng = np.random.default_rng(1)
    y_val = (rng.random((300, 3)) < 0.3).astype(int)
    s_val = np.clip(y_val * 0.3 + rng.random((300, 3)) * 0.6, 0, 1)  # positives score 0.3 higher
    tau = tune_thresholds(y_val, s_val)
    # each tuned threshold is the best on validation: no grid value does better
    for j in range(3):
        best = m.f1(y_val[:, [j]], (s_val[:, [j]] > tau[j]).astype(int))
        for t in np.arange(0.05, 0.96, 0.05):
            assert m.f1(y_val[:, [j]], (s_val[:, [j]] > t).astype(int)) <= best + 1e-12
    # the thresholds are a function of (y_val, s_val) alone: the evaluate step has no test input
    assert np.array_equal(decision_thresholds("per_genre", 0.5, y_val, s_val), tau)
    assert np.array_equal(decision_thresholds("global", 0.4, y_val, s_val), [0.4] * 3)
    # a genre with no validation positive keeps the default
    y0 = y_val.copy()
    y0[:, 1] = 0
    assert tune_thresholds(y0, s_val)[1] == 0.5


def test_per_genre_threshold_array_in_all_metrics():
    y = np.array([[1, 0], [0, 1], [1, 1]])
    s = np.array([[0.6, 0.2], [0.3, 0.35], [0.7, 0.4]])
    out = m.all_metrics(y, s, np.array([0.5, 0.3]), ["a", "b"])
    assert out["f1_micro"] == 1.0


# --- decision rules (pipeline/scoring/thresholds.py) --------------------------------------------------------------

def test_decision_rule_caps_genres_by_margin_over_threshold():
    from pipeline.scoring.thresholds import DecisionRule

    rule = DecisionRule({"A": 0.5, "B": 0.25, "C": 0.75, "D": 0.5}, max_genres=2, name="r")
    scores = np.array([
        [0.9, 0.5, 0.8, 0.55],     # margins .4 .25 .05 .05 -> A, B
        [0.4, 0.3, 0.95, 0.2],     # only B (.05) and C (.2) above: both kept
        [0.1, 0.1, 0.1, 0.1],      # nothing above
        [0.75, 0.5, 1.0, 0.75],    # four margins of exactly .25: the genres listed first, A and B
        [0.5, 0.25, 0.75, 0.5],    # exactly at the threshold is not above (eq. 10)
    ])
    expected = np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]], dtype=bool)
    np.testing.assert_array_equal(rule.apply(scores), expected)
    uncapped = DecisionRule(rule.thresholds, None, "u")
    np.testing.assert_array_equal(uncapped.apply(scores)[0], [1, 1, 1, 1])
    assert DecisionRule.from_dict(rule.to_dict()) == rule
    assert rule.describe() == "per-genre thresholds tuned on validation, at most 2 genres"
    with pytest.raises(ValueError):
        rule.apply(scores[:, :3])


def _over_predicting(seed=0, n=400, m=13):
    """Two true genres a poster; every score of a poster shifted by one offset, so that most posters have
    most genres above 0.5 and no per-genre threshold separates them, but a poster's true genres score highest."""
    rng = np.random.default_rng(seed)
    y = np.zeros((n, m), dtype=int)
    for i in range(n):
        y[i, rng.choice(m, 2, replace=False)] = 1
    offset = rng.uniform(0.3, 0.7, size=(n, 1))
    s = np.clip(offset + 0.25 * y + rng.uniform(0, 0.1, size=(n, m)), 0, 1)
    return y, s


def test_choose_rule_caps_genres_where_over_prediction_is_rampant():
    from pipeline.scoring.thresholds import choose_rule

    y, s = _over_predicting()
    genres = [f"g{j}" for j in range(13)]
    rule, report = choose_rule(y, s, genres)
    assert report["metric"] == "f1_samples" and report["genres_per_poster_true"] == 2.0
    assert report["paper"]["genres_per_poster"] > 5  # the paper's rule tags most genres
    assert rule.max_genres == 2 and rule.name == "per_genre_max2"
    assert report["chosen"]["f1_samples"] > report["paper"]["f1_samples"]
    assert report["chosen"]["genres_per_poster"] <= 2
    assert [c["name"] for c in report["candidates"]] == [
        "global@0.5", "per_genre", *(f"per_genre_max{k}" for k in (5, 4, 3, 2, 1))]
    # the metric chooses: every candidate's figure is at most the chosen one's
    assert all(c["f1_samples"] <= report["chosen"]["f1_samples"] for c in report["candidates"])
    for metric in ("f1_macro", "f1_micro"):
        assert choose_rule(y, s, genres, metric=metric)[1]["metric"] == metric
    with pytest.raises(ValueError):
        choose_rule(y, s, genres, metric="f1_weighted")


def test_choose_rule_keeps_the_papers_rule_where_half_is_already_best():
    from pipeline.scoring.thresholds import choose_rule

    rng = np.random.default_rng(2)
    n, genres = 200, ["A", "B", "C", "D", "E", "F", "G", "H"]
    y = (rng.random((n, len(genres))) < 0.5).astype(int)
    y[:20, :7] = 1  # some posters have 7 genres: any cap of 5 or fewer loses them
    s = np.where(y == 1, rng.uniform(0.55, 0.95, y.shape), rng.uniform(0.05, 0.45, y.shape))
    rule, report = choose_rule(y, s, genres)
    # per-genre thresholds measure the same here (a tie): the simpler rule, the paper's, is kept
    assert rule.name == "global@0.5" and rule.max_genres is None
    assert set(rule.thresholds.values()) == {0.5}
    assert report["chosen"] == report["paper"] and report["chosen"]["f1_samples"] == 1.0


def test_rule_metric_param_is_validated():
    from pipeline.core.params import EvalParams

    assert EvalParams().rule_metric == "f1_macro_samples"
    assert EvalParams(rule_metric="f1_macro").rule_metric == "f1_macro"
    with pytest.raises(ValueError):
        EvalParams(rule_metric="f1_weighted")


def test_the_default_rule_metric_is_the_mean_of_macro_and_samples_f1():
    from pipeline.scoring.thresholds import DecisionRule, measure

    y = np.array([[1, 0, 0], [1, 0, 1], [0, 1, 0], [1, 0, 0]])
    s = np.array([[0.9, 0.1, 0.1], [0.8, 0.2, 0.1], [0.6, 0.4, 0.2], [0.7, 0.1, 0.1]])  # rare genre C never tagged
    figures = measure(DecisionRule.global_threshold(["A", "B", "C"], 0.5), y, s)
    assert figures["f1_macro_samples"] == pytest.approx((figures["f1_macro"] + figures["f1_samples"]) / 2, abs=1e-6)
    assert figures["f1_macro"] < figures["f1_samples"]  # dropping a rare genre costs macro F1, barely samples F1


def test_evaluate_reports_both_rules_and_keeps_the_papers_metrics():
    from pipeline.evaluation.evaluate import evaluate_scores, predictions_table, rule_figures
    from pipeline.scoring.decisions import Decision, decide
    from pipeline.scoring.thresholds import DecisionRule

    y, s = _over_predicting(seed=3, n=60, m=4)
    genres = ["A", "B", "C", "D"]
    paper = DecisionRule.global_threshold(genres, 0.5)
    product = DecisionRule.per_genre(genres, [0.5] * 4, max_genres=2)
    metrics, _, _ = evaluate_scores(y, s, genres, paper)
    assert {k: v for k, v in metrics.items() if k != "per_genre"} == {
        k: v for k, v in m.all_metrics(y, s, 0.5, genres).items() if k != "per_genre"}
    decided = decide({"poster_only": Decision("poster_only", None, product)}, s, np.full(60, "poster_only"))
    fig = rule_figures(y, s, paper, decided)
    assert fig["genres_per_poster_true"] == 2.0
    assert fig["genres_per_poster"] == pytest.approx((s > 0.5).sum(1).mean(), abs=1e-6)
    assert fig["product_rule"]["rules"] == ["poster_only:per_genre_max2"]
    assert fig["product_rule"]["genres_per_poster"] <= 2
    assert set(fig["product_rule"]) == {"rules", "f1_macro", "f1_micro", "f1_samples", "f1_macro_samples",
                                        "hamming_loss", "genres_per_poster"}
    keys, ids = [f"k{i}" for i in range(60)], [f"tt{i}" for i in range(60)]
    table = predictions_table(keys, ids, y, s, genres, paper, decided)
    assert all(len(p.split("|")) <= 2 for p in table["predicted_product"] if p)
    assert set(table["product_rule"]) == {"poster_only:per_genre_max2"}
    assert table["predicted"].to_list() == ["|".join(g for g, v in zip(genres, row) if v > 0.5) for row in s]
