import numpy as np
import pytest
from sklearn import metrics as skm

from pipeline import metrics as m


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
    from pipeline.evaluate import decision_thresholds
    from pipeline.thresholds import tune_thresholds

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
