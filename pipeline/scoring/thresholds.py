"""Decision rules: how scores become genres.

Two rules matter. The *paper's rule* (eq. 10) predicts a genre when its score is
strictly above ``eval.threshold`` (or per-genre thresholds with
``eval.threshold_mode: per_genre``); it makes the tables of ``metrics/eval.json``.
The *product rule*, used by ``poster-genres predict``, is chosen by
:func:`choose_rule` on the validation split when the head is trained and is
saved in the checkpoint. Both are a :class:`DecisionRule`, and
:meth:`DecisionRule.apply` is the one place where scores turn into genres.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.core.checkpoint import HeadCheckpoint
from pipeline.scoring import metrics as M
from pipeline.scoring.metrics import _f1, confusion_counts

GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)
#: Caps on genres per poster that :func:`choose_rule` tries (with per-genre thresholds).
CAPS = (1, 2, 3, 4, 5)
#: Metrics a rule may be chosen by (``eval.rule_metric``); ``f1_macro_samples`` is the mean of macro and samples
#: F1, which neither a rule that never tags rare genres (macro) nor one that over-tags every film (samples) wins.
RULE_METRICS = ("f1_macro_samples", "f1_samples", "f1_macro", "f1_micro")


def tune_thresholds(y_val: np.ndarray, s_val: np.ndarray, default: float = 0.5, grid: np.ndarray = GRID) -> np.ndarray:
    """Per genre, the threshold of ``grid`` with the best F1 on the *validation* posters given.

    Ties go to the threshold closest to ``default``; a genre without a positive
    validation poster keeps ``default`` (there is nothing to tune on).
    """
    y_val = np.asarray(y_val).astype(bool)
    s_val = np.asarray(s_val, dtype=np.float64)
    out = np.full(y_val.shape[1], default, dtype=np.float64)
    for j in range(y_val.shape[1]):
        if not y_val[:, j].any():
            continue
        preds = s_val[:, j][:, None] > grid[None, :]  # (n, len(grid))
        truth = np.repeat(y_val[:, j][:, None], len(grid), axis=1)
        f1 = _f1(confusion_counts(truth, preds))
        best = np.flatnonzero(np.isclose(f1, f1.max()))
        out[j] = float(grid[best[np.argmin(np.abs(grid[best] - default))]])
    return out


@dataclass(frozen=True)
class DecisionRule:
    """Per-genre thresholds and an optional cap on genres per poster.

    A genre is a candidate when its score is strictly above its threshold (eq. 10);
    with ``max_genres`` only the ``max_genres`` candidates with the largest margin
    (score - threshold) are kept (ties: the genre listed first). ``thresholds`` is
    ordered like the score columns (the checkpoint's genres).
    """

    thresholds: dict[str, float]
    max_genres: int | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if self.max_genres is not None and self.max_genres < 1:
            raise ValueError(f"max_genres must be at least 1 or None, not {self.max_genres}")

    @classmethod
    def global_threshold(cls, genres: list[str], threshold: float) -> DecisionRule:
        """One threshold for every genre, no cap: the paper's rule (eq. 10) at ``threshold``."""
        t = float(threshold)
        return cls({g: t for g in genres}, None, f"global@{t:g}")

    @classmethod
    def per_genre(cls, genres: list[str], thresholds, max_genres: int | None = None) -> DecisionRule:
        """Per-genre thresholds (tuned on validation), with an optional cap."""
        name = "per_genre" if max_genres is None else f"per_genre_max{max_genres}"
        return cls({g: round(float(t), 6) for g, t in zip(genres, thresholds, strict=True)}, max_genres, name)

    @property
    def genres(self) -> list[str]:
        return list(self.thresholds)

    def apply(self, scores: np.ndarray) -> np.ndarray:
        """(n, M) scores -> (n, M) bool predictions."""
        s = np.asarray(scores, dtype=np.float64)
        tau = np.array(list(self.thresholds.values()), dtype=np.float64)
        if s.ndim != 2 or s.shape[1] != len(tau):
            raise ValueError(f"scores of shape {s.shape} for a rule over {len(tau)} genres")
        above = s > tau
        if self.max_genres is None or self.max_genres >= s.shape[1]:
            return above
        margin = np.where(above, s - tau, -np.inf)
        order = np.argsort(-margin, axis=1, kind="stable")  # largest margin first, ties by genre order
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(s.shape[1])[None, :].repeat(len(s), 0), axis=1)
        return above & (rank < self.max_genres)

    def describe(self) -> str:
        """One line for people, e.g. ``per-genre thresholds tuned on validation, at most 3 genres``."""
        values = set(self.thresholds.values())
        what = (f"threshold {values.pop():g} for every genre" if len(values) == 1
                else "per-genre thresholds tuned on validation")
        cap = {None: "no cap", 1: "at most 1 genre"}.get(self.max_genres, f"at most {self.max_genres} genres")
        return f"{what}, {cap}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "max_genres": self.max_genres,
                "thresholds": {g: float(t) for g, t in self.thresholds.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DecisionRule:
        cap = d.get("max_genres")
        return cls({str(g): float(t) for g, t in d["thresholds"].items()},
                   None if cap is None else int(cap), str(d.get("name", "")))


def genres_per_poster(y_pred: np.ndarray) -> float:
    y = np.asarray(y_pred)
    return float(y.astype(bool).sum(1).mean()) if len(y) else 0.0


def measure_predictions(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """The figures decisions are judged by (pipeline/scoring/metrics.py's functions), rounded."""
    out = {f"f1_{avg}": M.f1(y_true, y_pred, avg) for avg in ("macro", "micro", "samples")}
    out["f1_macro_samples"] = (out["f1_macro"] + out["f1_samples"]) / 2
    out["hamming_loss"] = M.hamming_loss(y_true, y_pred)
    out["genres_per_poster"] = genres_per_poster(y_pred)
    return {k: round(v, 6) for k, v in out.items()}


def measure(rule: DecisionRule, y_true: np.ndarray, y_score: np.ndarray) -> dict[str, Any]:
    """The figures a rule is judged by on one split, rounded."""
    return {"name": rule.name, "max_genres": rule.max_genres, **measure_predictions(y_true, rule.apply(y_score))}


def choose_rule(
    y_val: np.ndarray, s_val: np.ndarray, genres: list[str], metric: str = "f1_samples",
    threshold: float = 0.5, caps=CAPS,
) -> tuple[DecisionRule, dict[str, Any]]:
    """The product's decision rule, chosen on the *validation* split; and the figures behind the choice.

    Candidates, from simplest to least simple: the paper's rule (``threshold`` for
    every genre, no cap); per-genre thresholds tuned on validation
    (:func:`tune_thresholds`), no cap; the same thresholds capped at 5, 4, ..., 1
    genres per poster. The one with the best ``metric`` on validation wins; on a
    tie the simpler one does (no cap before a cap, a loose cap before a tight one).

    ``f1_samples`` is the default because it scores each poster's set of genres as
    a catalogue sees it: tagging six genres on a film that has two costs that
    poster's F1 directly, however well each genre does across the whole set
    (``f1_macro``/``f1_micro`` are the other choices). The per-genre thresholds
    are tuned on the same validation posters they are then judged on, so the
    validation figures favour them slightly; the test split (evaluate) is the
    honest measure.
    """
    if metric not in RULE_METRICS:
        raise ValueError(f"metric must be one of {RULE_METRICS}, not {metric!r}")
    y_val = np.asarray(y_val)
    s_val = np.asarray(s_val)
    tuned = tune_thresholds(y_val, s_val, default=threshold)
    paper = DecisionRule.global_threshold(genres, threshold)
    candidates = [paper, DecisionRule.per_genre(genres, tuned)]
    candidates += [DecisionRule.per_genre(genres, tuned, k) for k in sorted(caps, reverse=True)]
    figures = [measure(r, y_val, s_val) for r in candidates]
    best = max(range(len(candidates)), key=lambda i: (figures[i][metric], -i))  # rounded figures: ties exact
    report = {
        "metric": metric,
        "posters": int(len(y_val)),
        "genres_per_poster_true": round(genres_per_poster(y_val), 6),
        "chosen": figures[best],
        "paper": figures[0],
        "candidates": figures,
    }
    return candidates[best], report


def checkpoint_rule(ckpt: HeadCheckpoint, fallback_threshold: float) -> tuple[DecisionRule, str | None]:
    """The product rule saved in a checkpoint, and a note when there is none.

    A checkpoint from before decision rules has none: ``fallback_threshold`` for
    every genre (the paper's rule) is used, and the note says so."""
    saved = ckpt.get("decision_rule")
    if saved is not None:
        return DecisionRule.from_dict(saved), None
    return (DecisionRule.global_threshold(ckpt["genres"], fallback_threshold),
            f"the checkpoint has no decision rule (trained before rules were saved): using threshold "
            f"{fallback_threshold:g} for every genre; re-run train to get the product rule")


def rule_line(rule: DecisionRule, ckpt: HeadCheckpoint | None = None) -> str:
    """``rule: ...`` for people: the rule and, when it is the checkpoint's, its validation figure."""
    extra = []
    if rule.max_genres is None and rule.name == "global@0.5":  # the paper's threshold is 0.5 (eq. 10)
        extra.append("the paper's rule")
    elif rule.max_genres is None and rule.name.startswith("global"):
        extra.append("one threshold for every genre, as the paper's rule, at another value")
    validation = (ckpt or {}).get("decision_rule_validation")
    if (validation and validation["chosen"]["name"] == rule.name
            and (ckpt or {}).get("decision_rule") == rule.to_dict()):
        metric = validation["metric"]
        extra.append(f"{metric} {validation['chosen'][metric]:.2f} on validation")
    return f"rule: {rule.describe()}" + (f" ({'; '.join(extra)})" if extra else "")
