from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.scoring import calibration as cal


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _synthetic(seed: int, n: int, true_logits, shown_logits) -> tuple[np.ndarray, np.ndarray]:
    """Labels ~ Bernoulli(sigmoid(true_logits(z))), scores sigmoid(shown_logits(z)) as float32, one column per map."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.5, size=(n, len(true_logits)))
    y = np.stack([rng.random(n) < _sigmoid(f(z[:, j])) for j, f in enumerate(true_logits)], axis=1).astype(int)
    s = np.stack([_sigmoid(f(z[:, j])) for j, f in enumerate(shown_logits)], axis=1).astype(np.float32)
    return y, s


# --- ECE -------------------------------------------------------------------------------------------------------


def test_ece_hand_computed():
    # bins=2: [0, .5) and [.5, 1]; genre 0: low bin p=(.1,.2) y=(0,1), high bin p=(.6,.9) y=(1,1)
    y = np.array([[0, 1], [1, 0], [1, 0], [1, 1]])
    p = np.array([[0.1, 0.5], [0.2, 0.5], [0.6, 0.0], [0.9, 1.0]])
    ece = cal.expected_calibration_error(y, p, bins=2)
    low = 2 / 4 * abs(0.5 - 0.15)
    high = 2 / 4 * abs(1.0 - 0.75)
    # genre 1: low bin p=(0) y=(0) -> 0; high bin p=(.5,.5,1) y=(1,0,1) -> 3/4 * |2/3 - 2/3| = 0
    np.testing.assert_allclose(ece, [low + high, 0.0], atol=1e-12)
    assert cal.macro_ece(y, p, bins=2) == pytest.approx((low + high) / 2)


def test_ece_edges_probability_one_and_zero():
    # p = 1 must land in the last bin and p = 0 in the first (no index error, no dropped posters)
    y = np.array([[1], [0], [1], [0]])
    p = np.array([[1.0], [0.0], [1.0], [1.0]])
    # last bin: p=(1,1,1), y=(1,1,0): 3/4 * |2/3 - 1| = 1/4; first bin: p=0, y=0: 0
    np.testing.assert_allclose(cal.expected_calibration_error(y, p, bins=15), [0.25], atol=1e-12)
    points = cal.reliability(y, p, ["g"], bins=15)
    genre = [q for q in points if q["genre"] == "g"]
    assert [(q["bin"], q["count"]) for q in genre] == [(0, 1), (14, 3)]
    # an exact bin edge goes to the upper bin: [k/B, (k+1)/B)
    edge = cal.reliability(np.array([[1]]), np.array([[0.5]]), ["g"], bins=2)
    assert edge[-1]["bin"] == 1


def test_ece_near_zero_for_calibrated_data():
    rng = np.random.default_rng(1)
    p = rng.random((200_000, 2))
    y = (rng.random(p.shape) < p).astype(int)
    assert cal.expected_calibration_error(y, p).max() < 0.01
    # and clearly not zero for a miscalibrated version of the same labels
    assert cal.expected_calibration_error(y, p**3).min() > 0.1


def test_ece_validates_shapes():
    with pytest.raises(ValueError, match="same shape"):
        cal.expected_calibration_error(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="0/1"):
        cal.expected_calibration_error(np.full((3, 2), 2), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        cal.expected_calibration_error(np.zeros((3, 2)), np.full((3, 2), 1.5))
    with pytest.raises(ValueError, match="bins"):
        cal.expected_calibration_error(np.zeros((3, 2)), np.zeros((3, 2)), bins=0)


def test_logits_clipped():
    z = cal.logits(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    assert z.dtype == np.float64
    np.testing.assert_allclose(z, [[np.log(1e-7 / (1 - 1e-7)), 0.0, np.log((1 - 1e-7) / 1e-7)]])


# --- reliability ---------------------------------------------------------------------------------------------------


def test_reliability_points():
    rng = np.random.default_rng(2)
    p = rng.random((500, 3))
    y = (rng.random(p.shape) < p).astype(int)
    genres = ["action", "drama", "horror"]
    points = cal.reliability(y, p, genres, bins=10)
    assert points[0]["genre"] == "all"
    order = [q["genre"] for q in points]
    assert order == sorted(order, key=["all", *genres].index)  # "all" first, then genres in the order given
    for g in ["all", *genres]:
        series = [q for q in points if q["genre"] == g]
        assert sum(q["count"] for q in series) == (1500 if g == "all" else 500)
        assert [q["bin"] for q in series] == sorted(q["bin"] for q in series)
        assert all(q["count"] > 0 and set(q) == {"genre", "bin", "confidence", "frequency", "count"} for q in series)
    first = [q for q in points if q["genre"] == "drama"][0]
    in_bin = np.minimum(np.floor(p[:, 1] * 10), 9) == first["bin"]
    assert first["confidence"] == round(float(p[in_bin, 1].mean()), 6)
    assert first["frequency"] == round(float(y[in_bin, 1].mean()), 6)
    json.dumps(points)  # plain data


# --- fitting --------------------------------------------------------------------------------------------------------


def test_temperature_recovers_known_temperature():
    maps_true = [lambda z: z, lambda z: z]
    maps_shown = [lambda z: 3 * z, lambda z: z]  # genre 0 over-confident by T=3, genre 1 already calibrated
    y_val, s_val = _synthetic(3, 50_000, maps_true, maps_shown)
    calibration = cal.fit_calibration("temperature", y_val, s_val, ["a", "b"])
    params = calibration["genres"]
    assert params["a"]["scale"] == pytest.approx(1 / 3, abs=0.05)
    assert params["b"]["scale"] == pytest.approx(1.0, abs=0.05)
    assert params["a"]["bias"] == 0.0 and params["b"]["bias"] == 0.0
    y_test, s_test = _synthetic(4, 50_000, maps_true, maps_shown)
    before = cal.expected_calibration_error(y_test, s_test)
    after = cal.expected_calibration_error(y_test, cal.apply_calibration(calibration, s_test, ["a", "b"]))
    assert before[0] > 0.05
    assert after[0] < before[0] / 3
    # the fitted scale is the NLL minimum: nudging it either way costs validation loss
    z, yy = cal.logits(s_val[:, 0]), y_val[:, 0]

    def nll(scale):
        x = scale * z
        return float(np.sum(np.logaddexp(0, x) - yy * x))

    a = params["a"]["scale"]
    assert nll(a) < nll(a * 1.01) and nll(a) < nll(a * 0.99)


def test_platt_recovers_known_parameters():
    # shown logit u = (z - 1) / 2, true logit z = 2u + 1: a = 2, b = 1
    y_val, s_val = _synthetic(5, 100_000, [lambda z: z], [lambda z: (z - 1) / 2])
    params = cal.fit_calibration("platt", y_val, s_val, ["g"])["genres"]["g"]
    assert params["scale"] == pytest.approx(2.0, abs=0.1)
    assert params["bias"] == pytest.approx(1.0, abs=0.1)


def _smoothed(y: np.ndarray) -> np.ndarray:
    n_pos = y.sum()
    n_neg = len(y) - n_pos
    return np.where(y > 0, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))


def test_platt_matches_sklearn_on_the_smoothed_problem():
    linear_model = pytest.importorskip("sklearn.linear_model")
    y, s = _synthetic(6, 3_000, [lambda z: 0.7 * z - 0.5], [lambda z: z])
    params = cal.fit_calibration("platt", y, s, ["g"])["genres"]["g"]
    z, t = cal.logits(s[:, 0]), _smoothed(y[:, 0])
    # cross-entropy against soft targets t == weighted logistic regression on (z, 1) with weight t and (z, 0) with 1 - t
    x = np.concatenate([z, z])[:, None]
    labels = np.concatenate([np.ones_like(z), np.zeros_like(z)])
    model = linear_model.LogisticRegression(C=1e12, tol=1e-12, max_iter=10_000)
    model.fit(x, labels, sample_weight=np.concatenate([t, 1 - t]))
    assert params["scale"] == pytest.approx(model.coef_[0, 0], abs=1e-3)
    assert params["bias"] == pytest.approx(model.intercept_[0], abs=1e-3)
    try:
        from sklearn.calibration import _sigmoid_calibration
    except ImportError:
        return
    big_a, big_b = _sigmoid_calibration(z, y[:, 0])  # sklearn's convention: 1 / (1 + exp(A z + B))
    assert params["scale"] == pytest.approx(-big_a, abs=1e-3)
    assert params["bias"] == pytest.approx(-big_b, abs=1e-3)


@pytest.mark.parametrize("method", ["temperature", "platt"])
def test_fit_uses_only_validation_and_is_byte_identical(method):
    genres = ["a", "b", "c"]
    y_val, s_val = _synthetic(7, 4_000, [lambda z: z] * 3, [lambda z: 2 * z, lambda z: z + 1, lambda z: z])
    y_val[:, 2] = 0  # genre c: no positive validation poster
    first = cal.fit_calibration(method, y_val, s_val, genres)
    second = cal.fit_calibration(method, y_val.copy(), s_val.copy(), genres)
    assert json.dumps(first) == json.dumps(second)
    assert first["method"] == method and list(first["genres"]) == genres
    assert first["genres"]["c"] == {"scale": 1.0, "bias": 0.0}
    assert first["genres"]["a"] != {"scale": 1.0, "bias": 0.0}
    # calibration_figures is the one calibration function that reads test (to report ECE there): it leaves the
    # validation arrays as they were, so a fit after it is the same (that nothing fitted reads test at all is
    # held where the data is split: test_the_product_is_chosen_on_validation_and_never_reads_test)
    y_before, s_before = y_val.copy(), s_val.copy()
    for seed in (8, 9):
        y_test, s_test = _synthetic(seed, 1_000, [lambda z: -z] * 3, [lambda z: 5 * z] * 3)
        cal.calibration_figures(y_val, s_val, y_test, s_test, genres)
        np.testing.assert_array_equal(y_val, y_before)
        np.testing.assert_array_equal(s_val, s_before)
        assert json.dumps(cal.fit_calibration(method, y_val, s_val, genres)) == json.dumps(first)
    # stored floats have at most 10 significant digits
    for params in first["genres"].values():
        for v in params.values():
            assert float(f"{v:.10g}") == v
    # a genre with only positives keeps the identity too, and its scores pass through unchanged
    y_all = y_val.copy()
    y_all[:, 1] = 1
    assert cal.fit_calibration(method, y_all, s_val, genres)["genres"]["b"] == {"scale": 1.0, "bias": 0.0}
    out = cal.apply_calibration(first, s_val, genres)
    np.testing.assert_array_equal(out[:, 2], s_val[:, 2])


@pytest.mark.parametrize("method", ["temperature", "platt"])
def test_apply_is_monotone_per_genre(method):
    genres = ["a", "b"]
    y, s = _synthetic(10, 5_000, [lambda z: z] * 2, [lambda z: 3 * z, lambda z: 0.5 * z - 1])
    calibration = cal.fit_calibration(method, y, s, genres)
    assert all(p["scale"] > 0 for p in calibration["genres"].values())
    grid = np.linspace(0, 1, 2001, dtype=np.float32)
    out = cal.apply_calibration(calibration, np.stack([grid, grid], axis=1), genres)
    assert out.dtype == np.float32
    assert (np.diff(out, axis=0) >= 0).all()
    assert (out[-1] > out[0]).all()
    # ranking within a genre is unchanged on the data itself
    applied = cal.apply_calibration(calibration, s, genres)
    for j in range(2):
        order = np.argsort(s[:, j], kind="stable")
        assert (np.diff(applied[order, j]) >= 0).all()


def test_none_method_and_errors():
    y, s = _synthetic(11, 200, [lambda z: z] * 2, [lambda z: z] * 2)
    assert cal.fit_calibration("none", y, s, ["a", "b"]) is None
    copy = cal.apply_calibration(None, s, ["a", "b"])
    np.testing.assert_array_equal(copy, s)
    assert copy is not s and not np.shares_memory(copy, s)
    with pytest.raises(ValueError, match="'none', 'temperature', 'platt'"):
        cal.fit_calibration("isotonic", y, s, ["a", "b"])
    calibration = cal.fit_calibration("platt", y, s, ["a", "b"])
    with pytest.raises(ValueError, match="missing|no parameters"):
        cal.apply_calibration(calibration, s, ["a", "x"])
    with pytest.raises(ValueError, match="genres"):
        cal.fit_calibration("platt", y, s, ["a"])


def test_calibration_figures():
    genres = ["a", "b"]
    maps_true = [lambda z: z] * 2
    maps_shown = [lambda z: 3 * z, lambda z: 0.5 * z + 1]
    y_val, s_val = _synthetic(12, 20_000, maps_true, maps_shown)
    y_test, s_test = _synthetic(13, 20_000, maps_true, maps_shown)
    figures = cal.calibration_figures(y_val, s_val, y_test, s_test, genres)
    assert tuple(figures) == cal.METHODS
    for fig in figures.values():
        assert list(fig["ece"]) == genres
        assert fig["ece_macro"] == pytest.approx(np.mean(list(fig["ece"].values())), abs=1e-6)
    assert figures["platt"]["ece_macro"] < figures["none"]["ece_macro"] / 3
    assert figures["temperature"]["ece_macro"] < figures["none"]["ece_macro"]
    expected = cal.expected_calibration_error(y_test, s_test)
    assert figures["none"]["ece"] == {g: round(float(e), 6) for g, e in zip(genres, expected)}
    assert figures["temperature"]["ece"]["a"] < 0.02  # temperature fixes a pure scale error
    assert figures["platt"]["ece"]["b"] < 0.02  # Platt also fixes the shift temperature cannot
    assert json.dumps(figures) == json.dumps(cal.calibration_figures(y_val, s_val, y_test, s_test, genres))
