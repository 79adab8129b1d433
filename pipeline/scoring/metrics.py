"""Multi-label metrics: functions that take arrays and return numbers (scikit-learn style).

``y_true`` and ``y_pred`` are (n, M) 0/1 arrays, ``y_score`` (n, M) scores.
Where a ratio has an empty denominator it counts as 0 (scikit-learn's
``zero_division=0``), except where noted.

Balanced accuracy of a genre is (TPR + TNR) / 2. The paper reports it macro,
micro, weighted and samples-averaged, like F1 (Gibaja & Ventura's tutorial):

* macro: mean of the per-genre values; weighted: weighted by genre support;
* micro: from TP, FN, FP, TN summed over genres;
* samples: per poster, over its genres, then the mean.

Where one rate is undefined (a genre with no positive poster in the test set,
a poster with every genre), balanced accuracy is the defined rate alone, as
scikit-learn's ``balanced_accuracy_score`` does for a single class.
"""

from __future__ import annotations

import numpy as np


def _check(y_true, y_other) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true)
    y_other = np.asarray(y_other)
    if y_true.ndim != 2 or y_true.shape != y_other.shape:
        raise ValueError(f"expected two (n, M) arrays of one shape, got {y_true.shape} and {y_other.shape}")
    return y_true.astype(bool), y_other


def _div(num, den):
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def confusion_counts(y_true, y_pred, axis: int = 0) -> dict[str, np.ndarray]:
    """TP, FP, FN, TN per genre (axis=0) or per sample (axis=1)."""
    t, p = _check(y_true, y_pred)
    p = p.astype(bool)
    return {
        "tp": (t & p).sum(axis), "fp": (~t & p).sum(axis),
        "fn": (t & ~p).sum(axis), "tn": (~t & ~p).sum(axis),
    }


def _f1(c):
    return _div(2 * c["tp"], 2 * c["tp"] + c["fp"] + c["fn"])


def _ba(c):
    """(TPR + TNR) / 2; where one rate is undefined (no positives or no negatives), the other alone."""
    tpr = _div(c["tp"], c["tp"] + c["fn"])
    tnr = _div(c["tn"], c["tn"] + c["fp"])
    has_pos = (c["tp"] + c["fn"]) > 0
    has_neg = (c["tn"] + c["fp"]) > 0
    return np.where(has_pos & has_neg, (tpr + tnr) / 2, np.where(has_pos, tpr, tnr))


def _average(per_genre: np.ndarray, c: dict, average: str, micro_fn, samples_fn, y_true, y_pred) -> float:
    if average == "macro":
        return float(per_genre.mean())
    if average == "weighted":
        support = c["tp"] + c["fn"]
        return float((per_genre * support).sum() / support.sum()) if support.sum() else 0.0
    if average == "micro":
        return float(micro_fn({k: v.sum() for k, v in c.items()}))
    if average == "samples":
        return float(samples_fn(confusion_counts(y_true, y_pred, axis=1)).mean())
    raise ValueError(f"average must be macro, micro, weighted or samples, not {average!r}")


def f1(y_true, y_pred, average: str = "macro") -> float:
    c = confusion_counts(y_true, y_pred)
    return _average(_f1(c), c, average, _f1, _f1, y_true, y_pred)


def balanced_accuracy(y_true, y_pred, average: str = "macro") -> float:
    c = confusion_counts(y_true, y_pred)
    return _average(_ba(c), c, average, _ba, _ba, y_true, y_pred)


def hamming_loss(y_true, y_pred) -> float:
    t, p = _check(y_true, y_pred)
    return float((t != p.astype(bool)).mean())


def hit_ratio(y_true, y_score) -> float:
    """Share of posters whose top-scoring genre is one of their true genres (the paper's Hit)."""
    t, s = _check(y_true, y_score)
    top = np.argmax(s, axis=1)
    return float(t[np.arange(len(t)), top].mean()) if len(t) else 0.0


def average_precision(y_true, y_score) -> np.ndarray:
    """Per-genre average precision (area under the step PR curve, as scikit-learn); NaN without positives."""
    t, s = _check(y_true, y_score)
    out = np.full(t.shape[1], np.nan)
    for j in range(t.shape[1]):
        pos = t[:, j].sum()
        if pos == 0:
            continue
        precision, recall, _ = precision_recall_curve(t[:, j], s[:, j])
        out[j] = float(-np.sum(np.diff(recall) * precision[:-1]))
    return out


def precision_recall_curve(y_true, y_score):
    """(precision, recall, thresholds) of one genre, in scikit-learn's order (recall decreasing)."""
    y_true = np.asarray(y_true).astype(bool)
    y_score = np.asarray(y_score, dtype=np.float64)
    order = np.argsort(-y_score, kind="mergesort")
    s, t = y_score[order], y_true[order]
    distinct = np.flatnonzero(np.diff(s)) if len(s) > 1 else np.array([], dtype=int)
    ends = np.r_[distinct, len(s) - 1]
    tps = np.cumsum(t)[ends]
    fps = 1 + ends - tps
    thresholds = s[ends]
    precision = _div(tps, tps + fps)
    recall = _div(tps, tps[-1]) if tps[-1] else np.ones_like(tps, dtype=np.float64)
    sl = slice(None, None, -1)
    return np.r_[precision[sl], 1.0], np.r_[recall[sl], 0.0], thresholds[sl]


def interpolated_precision(y_true, y_score, recall_levels) -> list[float]:
    """Best precision at recall >= r for each r of ``recall_levels`` (the interpolated PR curve), rounded to 6."""
    precision, recall, _ = precision_recall_curve(y_true, y_score)
    return [round(float(precision[recall >= r - 1e-12].max()), 6) for r in recall_levels]


def per_genre(y_true, y_pred) -> dict[str, np.ndarray]:
    c = confusion_counts(y_true, y_pred)
    return {
        "precision": _div(c["tp"], c["tp"] + c["fp"]),
        "recall": _div(c["tp"], c["tp"] + c["fn"]),
        "f1": _f1(c),
        "balanced_accuracy": _ba(c),
        "specificity": _div(c["tn"], c["tn"] + c["fp"]),
        "support": (c["tp"] + c["fn"]).astype(np.int64),
    }


def all_metrics(y_true, y_score, threshold, genres: list[str], y_pred=None) -> dict:
    """Every metric the paper reports, plus macro AP; per-genre results under ``per_genre``.

    ``threshold`` is one number or one per genre (an array of M); ``y_pred``, when given,
    are the decisions already made (``DecisionRule.apply``) and ``threshold`` is ignored.
    Hit and AP use the scores alone."""
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score)
    if y_pred is None:
        y_pred = y_score > np.asarray(threshold)  # eq. 10: strictly above tau
    y_pred = np.asarray(y_pred).astype(np.int64)
    ap = average_precision(y_true, y_score)
    out: dict = {}
    for avg in ("macro", "micro", "weighted", "samples"):
        out[f"f1_{avg}"] = f1(y_true, y_pred, avg)
        out[f"balanced_accuracy_{avg}"] = balanced_accuracy(y_true, y_pred, avg)
    out["hamming_loss"] = hamming_loss(y_true, y_pred)
    out["hit"] = hit_ratio(y_true, y_score)
    out["average_precision_macro"] = float(np.nanmean(ap)) if np.isfinite(ap).any() else 0.0
    out["posters"] = int(len(y_true))
    pg = per_genre(y_true, y_pred)
    out["per_genre"] = {
        g: {**{k: (int(v[j]) if k == "support" else float(v[j])) for k, v in pg.items()},
            "average_precision": None if np.isnan(ap[j]) else float(ap[j])}
        for j, g in enumerate(genres)
    }
    return out
