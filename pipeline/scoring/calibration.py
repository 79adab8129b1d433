"""Probability calibration of a head's per-genre sigmoid scores: measure it (ECE, reliability
diagrams), fit a correction on the validation split, apply it to the test split.

Choices, all of them:

* Scores are probabilities (the float32 sigmoid outputs of a head), one column per genre; every
  computation is in float64 and calibrated probabilities come back as float32.
* :func:`logits` clips probabilities to ``[1e-7, 1 - 1e-7]`` before ``log(p / (1 - p))``, so a
  saturated score has a finite logit (``|z| <= 16.12``).
* ECE is per genre and binary (the positive class only): the class-wise ECE of Kull et al. 2019
  ("Beyond temperature scaling") for one genre. ``bins`` equal-width bins on [0, 1]; bin ``k`` is
  ``[k/bins, (k+1)/bins)``, the index is ``floor(p * bins)`` computed in float64, and a
  probability of exactly 1 goes into the last bin (the last bin is closed), 0 into the first.
  ``ECE = sum over bins of (n_bin / n) * |mean(y in bin) - mean(p in bin)|``; empty bins add
  nothing. :func:`macro_ece` is the unweighted mean over genres. Labels must be 0/1 and
  probabilities in [0, 1]; shapes are checked, and a mismatch is a ``ValueError``.
* :func:`reliability` gives the points of a reliability diagram, one per (genre, non-empty bin),
  with the pooled series ``"all"`` (every (poster, genre) pair pooled) first, then the genres in
  the order given, bins ascending; floats rounded to 6 decimals.
* Calibration is fitted on the VALIDATION split only (the fitter sees nothing else), per genre,
  and is stored as plain data, one form for every method:
  ``{"method": m, "genres": {g: {"scale": a, "bias": b}}}``, applied as
  ``sigmoid(a * logit(s) + b)``. Stored floats are rounded to 10 significant digits, so the same
  inputs give a byte-identical checkpoint (``json.dumps``). Method ``"none"`` stores nothing
  (:func:`fit_calibration` returns ``None``; :func:`apply_calibration` returns a copy).
* ``"temperature"``: per genre one temperature ``T > 0`` minimising the validation binary
  cross-entropy (plain 0/1 targets) of ``sigmoid(z / T)``; stored ``scale = 1 / T``, ``bias = 0``.
  The loss is convex in the scale; it is minimised by Newton's method on the scale from
  ``scale = 1``, projected onto ``[1e-3, 1e3]`` (the upper bound only matters for a separable
  genre, whose optimum is at infinity) with a backtracking (Armijo) line search.
* ``"platt"``: per genre ``(a, b)`` minimising the cross-entropy of ``sigmoid(a * z + b)`` against
  Platt's smoothed targets, as scikit-learn's ``_sigmoid_calibration`` does: positives' target
  ``(N+ + 1) / (N+ + 2)``, negatives' ``1 / (N- + 2)``. Newton's method with a backtracking
  (Armijo) line search on the 2-parameter problem, the Hessian's diagonal raised by ``1e-12``
  (Lin, Lin & Weng 2007, "A note on Platt's probabilistic outputs"), started from Platt's point
  ``a = 0``, ``b = log((N+ + 1) / (N- + 1))``. The slope is not constrained: a genre whose
  scores rank backwards gets ``a < 0``.
* Both Newton loops stop when the Newton step is below ``1e-10`` (max norm) or after 100
  iterations; the line search halves the step (at most 60 times) and accepts a point whose loss
  is within float rounding (``64 * eps * |loss|``) of the Armijo bound. No randomness: the same
  inputs give the same parameters.
* A genre with no positive or no negative validation poster has nothing to fit and keeps the
  identity (``scale = 1``, ``bias = 0``); applying an identity genre returns its scores unchanged
  (no clipping through the logit).
* With ``scale > 0`` the calibration is strictly increasing per genre: per-genre ranking, AP and
  the ORDER of per-genre thresholds are unchanged, while a fixed threshold such as 0.5 selects
  different posters. Across genres the ranking of one poster's genres can change.
* :func:`calibration_figures` fits every method of :data:`METHODS` on validation, applies it to
  test, and reports test ECE (macro and per genre), rounded to 6 decimals, so one trained model
  measures both methods.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

METHODS = ("none", "temperature", "platt")
CLIP = 1e-7
SCALE_BOUNDS = (1e-3, 1e3)
MAX_ITER = 100
STEP_TOL = 1e-10
DIGITS = 10


def logits(scores: np.ndarray) -> np.ndarray:
    """``log(p / (1 - p))`` in float64 of probabilities clipped to ``[1e-7, 1 - 1e-7]``."""
    p = np.clip(np.asarray(scores, dtype=np.float64), CLIP, 1.0 - CLIP)
    return np.log(p) - np.log1p(-p)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -x))


def _check(y_true: np.ndarray, y_prob: np.ndarray, bins: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true)
    p = np.asarray(y_prob, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    if p.ndim == 1:
        p = p[:, None]
    if y.ndim != 2 or p.ndim != 2:
        raise ValueError(f"y_true and y_prob must be (n, M) arrays, got shapes {y.shape} and {p.shape}")
    if y.shape != p.shape:
        raise ValueError(f"y_true and y_prob must have the same shape, got {y.shape} and {p.shape}")
    if y.shape[0] == 0:
        raise ValueError("no posters: y_true and y_prob have 0 rows")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must hold 0/1 labels")
    if not (np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()):
        raise ValueError("y_prob must hold probabilities in [0, 1]")
    if bins is not None and (isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1):
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    return y.astype(np.float64), p


def _check_genres(genres: Sequence[str], m: int) -> list[str]:
    genres = list(genres)
    if len(genres) != m:
        raise ValueError(f"{len(genres)} genres given for {m} score columns")
    return genres


def _bin_sums(y: np.ndarray, p: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per bin of one genre's probabilities ``p`` (1-D): count, sum of labels, sum of probabilities."""
    idx = np.minimum(np.floor(p * bins).astype(np.int64), bins - 1)
    count = np.bincount(idx, minlength=bins)
    return count, np.bincount(idx, weights=y, minlength=bins), np.bincount(idx, weights=p, minlength=bins)


def expected_calibration_error(y_true: np.ndarray, y_prob: np.ndarray, bins: int = 15) -> np.ndarray:
    """Class-wise ECE per genre (positive class, ``bins`` equal-width bins on [0, 1]): shape (M,)."""
    y, p = _check(y_true, y_prob, bins)
    n = y.shape[0]
    out = np.empty(y.shape[1], dtype=np.float64)
    for j in range(y.shape[1]):
        _, sum_y, sum_p = _bin_sums(y[:, j], p[:, j], bins)
        out[j] = np.abs(sum_y - sum_p).sum() / n  # (n_bin / n) * |mean_y - mean_p| = |sum_y - sum_p| / n
    return out


def macro_ece(y_true: np.ndarray, y_prob: np.ndarray, bins: int = 15) -> float:
    """Unweighted mean over genres of :func:`expected_calibration_error`."""
    return float(expected_calibration_error(y_true, y_prob, bins).mean())


def reliability(y_true: np.ndarray, y_prob: np.ndarray, genres: Sequence[str], bins: int = 15) -> list[dict]:
    """Reliability-diagram points: the pooled series ``"all"`` first, then each genre, non-empty bins only."""
    y, p = _check(y_true, y_prob, bins)
    genres = _check_genres(genres, y.shape[1])
    series = [("all", y.ravel(), p.ravel())] + [(g, y[:, j], p[:, j]) for j, g in enumerate(genres)]
    points = []
    for name, yy, pp in series:
        count, sum_y, sum_p = _bin_sums(yy, pp, bins)
        for k in np.flatnonzero(count):
            c = int(count[k])
            points.append({"genre": name, "bin": int(k), "confidence": round(float(sum_p[k] / c), 6),
                           "frequency": round(float(sum_y[k] / c), 6), "count": c})
    return points


def _loss_grad_hess(z: np.ndarray, t: np.ndarray, a: float, b: float) -> tuple[float, np.ndarray, np.ndarray]:
    """Cross-entropy of ``sigmoid(a * z + b)`` against targets ``t``, its gradient and Hessian in (a, b)."""
    x = a * z + b
    p = _sigmoid(x)
    loss = float(np.sum(np.logaddexp(0.0, x) - t * x))
    r = p - t
    w = p * (1.0 - p)
    grad = np.array([np.dot(r, z), r.sum()])
    hess = np.array([[np.dot(w, z * z), np.dot(w, z)], [np.dot(w, z), w.sum()]])
    return loss, grad, hess


def _loss(z: np.ndarray, t: np.ndarray, a: float, b: float) -> float:
    x = a * z + b
    return float(np.sum(np.logaddexp(0.0, x) - t * x))


def _newton(z: np.ndarray, t: np.ndarray, start: np.ndarray, fit_bias: bool) -> np.ndarray:
    """Minimise the cross-entropy of ``sigmoid(a * z + b)`` against ``t`` by Newton's method with backtracking.

    ``fit_bias=False``: only the scale ``a`` (``b`` stays 0), projected onto :data:`SCALE_BOUNDS`.
    """
    theta = start.astype(np.float64).copy()
    lo, hi = SCALE_BOUNDS
    for _ in range(MAX_ITER):
        loss, grad, hess = _loss_grad_hess(z, t, theta[0], theta[1])
        if fit_bias:
            direction = -np.linalg.solve(hess + 1e-12 * np.eye(2), grad)
        else:
            if hess[0, 0] <= 0.0:  # every logit is 0: the loss does not depend on the scale
                break
            direction = np.array([-grad[0] / hess[0, 0], 0.0])
        step_size = 1.0
        accepted = False
        for _ in range(60):
            candidate = theta + step_size * direction
            if not fit_bias:
                candidate[0] = min(max(candidate[0], lo), hi)
            step = candidate - theta
            if np.max(np.abs(step)) < STEP_TOL:
                return candidate
            bound = loss + 1e-4 * float(np.dot(grad, step))
            if _loss(z, t, candidate[0], candidate[1]) <= bound + 64 * np.finfo(np.float64).eps * abs(loss):
                accepted = True
                break
            step_size /= 2.0
        if not accepted:
            break
        theta = candidate
    return theta


def _round(x: float) -> float:
    return float(f"{float(x):.{DIGITS}g}")


def fit_calibration(method: str, y_val: np.ndarray, s_val: np.ndarray, genres: Sequence[str]) -> dict | None:
    """Per-genre calibration fitted on validation labels ``y_val`` and scores ``s_val`` (n, M), as plain data.

    ``"none"`` -> ``None``; ``"temperature"`` / ``"platt"`` ->
    ``{"method": method, "genres": {g: {"scale": a, "bias": b}}}`` (see the module docstring).
    """
    if method not in METHODS:
        raise ValueError(f"unknown calibration method {method!r}; allowed: {', '.join(map(repr, METHODS))}")
    y, s = _check(y_val, s_val)
    genres = _check_genres(genres, y.shape[1])
    if method == "none":
        return None
    z_all = logits(s)
    fitted: dict[str, dict[str, float]] = {}
    for j, g in enumerate(genres):
        yj, z = y[:, j], z_all[:, j]
        n_pos = float(yj.sum())
        n_neg = float(yj.shape[0] - n_pos)
        a, b = 1.0, 0.0
        if n_pos > 0 and n_neg > 0:
            if method == "temperature":
                a = float(_newton(z, yj, np.array([1.0, 0.0]), fit_bias=False)[0])
            else:
                t = np.where(yj > 0, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))
                start = np.array([0.0, math.log((n_pos + 1.0) / (n_neg + 1.0))])
                a, b = (float(v) for v in _newton(z, t, start, fit_bias=True))
        fitted[g] = {"scale": _round(a), "bias": _round(b) + 0.0}  # + 0.0: no -0.0 in the checkpoint
    return {"method": method, "genres": fitted}


def apply_calibration(calibration: dict | None, scores: np.ndarray, genres: Sequence[str]) -> np.ndarray:
    """Calibrated probabilities (float32) of ``scores`` (n, M, columns in ``genres`` order); a copy for ``None``."""
    s = np.asarray(scores)
    if s.ndim != 2:
        raise ValueError(f"scores must be an (n, M) array, got shape {s.shape}")
    genres = _check_genres(genres, s.shape[1])
    if calibration is None:
        return s.astype(np.float32, copy=True)
    params = calibration.get("genres", {})
    missing = [g for g in genres if g not in params]
    if missing:
        raise ValueError(f"calibration ({calibration.get('method')!r}) has no parameters for genres {missing}")
    out = np.empty(s.shape, dtype=np.float32)
    for j, g in enumerate(genres):
        a, b = float(params[g]["scale"]), float(params[g]["bias"])
        if a == 1.0 and b == 0.0:
            out[:, j] = s[:, j]
        else:
            out[:, j] = _sigmoid(a * logits(s[:, j]) + b)
    return out


def calibrated(checkpoint: dict, scores: np.ndarray) -> np.ndarray:
    """``scores`` of a checkpoint's head as its probabilities: through the calibration train saved in it, if any
    (``eval.calibration``), else unchanged."""
    return apply_calibration(checkpoint.get("calibration"), scores, checkpoint["genres"])


def calibration_figures(y_val: np.ndarray, s_val: np.ndarray, y_test: np.ndarray, s_test: np.ndarray,
                        genres: Sequence[str], bins: int = 15) -> dict[str, Any]:
    """For each method of :data:`METHODS`: fit on validation, apply to test, test ECE (macro and per genre)."""
    y_test_, _ = _check(y_test, s_test, bins)
    genres = _check_genres(genres, y_test_.shape[1])
    figures: dict[str, Any] = {}
    for method in METHODS:
        calibration = fit_calibration(method, y_val, s_val, genres)
        ece = expected_calibration_error(y_test, apply_calibration(calibration, s_test, genres), bins)
        figures[method] = {"ece_macro": round(float(ece.mean()), 6),
                           "ece": {g: round(float(e), 6) for g, e in zip(genres, ece)}}
    return figures
