"""The product's decisions per input pattern: which calibration and which decision rule a film gets.

A film reaches the product with its poster only, or with its poster and a plot (and whatever metadata
the catalogue has). A model that reads plots scores the two differently, so one rule for both fails
the films without a plot: thresholds chosen where 87% of validation films have a plot never fire for
the genres a synopsis usually carries. Each *input pattern* therefore gets its own
:class:`Decision` (calibration + rule), fitted on validation scores computed the way that pattern's
films are scored:

* ``poster_only``: every validation film, scored with its plot and metadata hidden;
* ``with_plot``: the validation films that have a plot, scored with it.

A film's pattern is :func:`pattern_of` its plot (a film with metadata but no plot is ``poster_only``:
the shared films have no such rows, so nothing was fitted on them). A model that reads no film input
has one decision, ``poster_only``, used for every film.

**Calibration chosen on validation** (``eval.calibration: auto``). Per-genre calibration is strictly
increasing, so it changes which genres an uncapped rule picks only through the threshold grid (a
Platt-squashed rare genre has few grid points left) and, with a cap, how genres compare across a
poster. Which matters is measured, not assumed: the validation films are cut into two halves by film
(:func:`folds`); for each method, calibration and rule are fitted on one half and judged on the other,
both ways round (cross-fitting). Among the methods whose out-of-fold ``eval.rule_metric`` is within
:data:`DECISION_TOLERANCE` of the best, the one with the lowest out-of-fold macro ECE wins
(:func:`choose_calibration`): the probabilities people read are calibrated unless calibrating costs the
decisions on validation. The out-of-fold figures (the
rule metric, macro and samples F1, macro ECE) are kept in the decision's ``validation``. The chosen
method and the rule are then refitted on the whole validation split. No test figure is read.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.core.checkpoint import HeadCheckpoint
from pipeline.scoring.calibration import METHODS as CALIBRATIONS
from pipeline.scoring.calibration import apply_calibration, expected_calibration_error, fit_calibration
from pipeline.scoring.thresholds import DecisionRule, choose_rule, measure_predictions, rule_line

POSTER_ONLY, WITH_PLOT = "poster_only", "with_plot"
#: Input patterns, in the order they are reported.
PATTERNS = (POSTER_ONLY, WITH_PLOT)
#: ``eval.calibration``: a method of :data:`CALIBRATIONS`, or ``auto`` (chosen by cross-fitting on validation).
CALIBRATION_CHOICES = (*CALIBRATIONS, "auto")


def pattern_of(has_plot: np.ndarray | None, n: int) -> np.ndarray:
    """The input pattern of each of ``n`` films: ``with_plot`` where ``has_plot``, else ``poster_only``."""
    if has_plot is None:
        return np.full(n, POSTER_ONLY, dtype=object)
    return np.where(np.asarray(has_plot, dtype=bool), WITH_PLOT, POSTER_ONLY).astype(object)


def folds(groups: list[str]) -> np.ndarray:
    """Fold 0 or 1 of each row, by a hash of its group (the film): the same film always in the same fold,
    independent of row order and of any random state."""
    return np.array([hashlib.sha256(str(g).encode()).digest()[0] & 1 for g in groups], dtype=np.int64)


@dataclass(frozen=True)
class Decision:
    """One input pattern's calibration (None: probabilities as the head gives them) and decision rule,
    with the validation figures behind both (plain data: saved in checkpoints)."""

    pattern: str
    calibration: dict | None
    rule: DecisionRule
    validation: dict | None = None

    def probabilities(self, scores: np.ndarray) -> np.ndarray:
        return apply_calibration(self.calibration, scores, self.rule.genres)

    @property
    def calibration_method(self) -> str:
        return (self.calibration or {}).get("method", "none")

    def to_dict(self) -> dict[str, Any]:
        return {"pattern": self.pattern, "calibration": self.calibration, "rule": self.rule.to_dict(),
                "validation": self.validation}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Decision:
        return cls(str(d["pattern"]), d.get("calibration"), DecisionRule.from_dict(d["rule"]), d.get("validation"))


def _out_of_fold(y: np.ndarray, s: np.ndarray, genres: list[str], fold: np.ndarray, method: str, metric: str,
                 threshold: float) -> dict[str, Any]:
    """Cross-fitted figures of calibration ``method`` + the rule chosen after it: each half scored by what was
    fitted on the other half."""
    pred = np.zeros_like(y, dtype=bool)
    prob = np.zeros(s.shape, dtype=np.float32)
    for k in (0, 1):
        fit, held = fold != k, fold == k
        if not held.any():
            continue
        calibration = fit_calibration(method, y[fit], s[fit], genres)
        rule, _ = choose_rule(y[fit], apply_calibration(calibration, s[fit], genres), genres, metric, threshold)
        prob[held] = apply_calibration(calibration, s[held], genres)
        pred[held] = rule.apply(prob[held])
    figures = measure_predictions(y, pred)
    ece = expected_calibration_error(y, prob)
    return {metric: figures[metric], "f1_macro": figures["f1_macro"], "f1_samples": figures["f1_samples"],
            "genres_per_poster": figures["genres_per_poster"], "ece_macro": round(float(np.mean(ece)), 6)}


def cross_fitted(y: np.ndarray, s: np.ndarray, genres: list[str], groups: list[str], metric: str, threshold: float,
                 methods=CALIBRATIONS) -> dict[str, dict[str, Any]]:
    """For each calibration method, the out-of-fold figures of the product rule on validation (see the module)."""
    y, s = np.asarray(y), np.asarray(s, dtype=np.float32)
    fold = folds(groups)
    if len(set(fold.tolist())) < 2:  # one film: nothing to cross-fit; every method scores on its own fit
        fold = np.arange(len(y)) % 2
    return {m: _out_of_fold(y, s, genres, fold, m, metric, threshold) for m in methods}


#: ``auto`` treats calibrations whose cross-fitted rule metric is within this of the best as equal for decisions
#: (half a point: far below what two halves of about 270 films can tell apart) and takes the best calibrated.
DECISION_TOLERANCE = 0.005


def choose_calibration(figures: dict[str, dict[str, Any]], metric: str,
                       tolerance: float = DECISION_TOLERANCE) -> str:
    """``auto``'s choice from :func:`cross_fitted` figures: among the methods whose out-of-fold ``metric`` is within
    ``tolerance`` of the best, the one with the lowest out-of-fold macro ECE (ties: the simpler, listed first).
    Probabilities people read should be calibrated, unless calibrating costs the decisions on validation."""
    best = max(f[metric] for f in figures.values())
    near = [m for m in figures if figures[m][metric] >= best - tolerance]
    return min(near, key=lambda m: (figures[m]["ece_macro"], list(figures).index(m)))


def fit_decision(pattern: str, y_val: np.ndarray, s_val: np.ndarray, genres: list[str], groups: list[str],
                 metric: str = "f1_samples", threshold: float = 0.5, calibration: str = "auto",
                 figures: dict[str, dict[str, Any]] | None = None) -> Decision:
    """The decision of ``pattern``: calibration (``auto``: chosen by cross-fitting) and rule, fitted on the
    validation labels ``y_val`` and scores ``s_val`` of that pattern (``groups``: each row's film).
    ``figures``: :func:`cross_fitted`'s result for these very scores, when the caller has it already."""
    if calibration not in CALIBRATION_CHOICES:
        raise ValueError(f"eval.calibration must be one of {', '.join(CALIBRATION_CHOICES)}, not {calibration!r}")
    y_val, s_val = np.asarray(y_val), np.asarray(s_val, dtype=np.float32)
    methods = CALIBRATIONS if calibration == "auto" else (calibration,)
    if figures is None:
        figures = cross_fitted(y_val, s_val, genres, groups, metric, threshold, methods) if len(y_val) > 1 else {}
    method = choose_calibration(figures, metric) if figures else methods[0]
    fitted = fit_calibration(method, y_val, s_val, genres)
    rule, report = choose_rule(y_val, apply_calibration(fitted, s_val, genres), genres, metric, threshold)
    validation = {**report, "calibration": {"setting": calibration, "chosen": method, "cross_fitted": figures}}
    return Decision(pattern, fitted, rule, validation)


def checkpoint_decisions(ckpt: HeadCheckpoint, fallback_threshold: float) -> tuple[dict[str, Decision], str | None]:
    """The decisions saved in a checkpoint (pattern -> :class:`Decision`), and a note when there are none.

    A checkpoint of a single rule (``decision_rule`` and ``calibration``: before patterns) has that rule for
    every pattern; one from before decision rules gets ``fallback_threshold`` for every genre (the paper's
    rule), and the note says so."""
    saved = ckpt.get("decisions")
    if saved:
        return {p: Decision.from_dict(d) for p, d in saved.items()}, None
    if ckpt.get("decision_rule") is not None:
        one = Decision(POSTER_ONLY, ckpt.get("calibration"), DecisionRule.from_dict(ckpt["decision_rule"]),
                       ckpt.get("decision_rule_validation"))
        return {POSTER_ONLY: one}, None
    rule = DecisionRule.global_threshold(ckpt["genres"], fallback_threshold)
    return ({POSTER_ONLY: Decision(POSTER_ONLY, None, rule)},
            f"the checkpoint has no decision rule (trained before rules were saved): using threshold "
            f"{fallback_threshold:g} for every genre; re-run train to get the product rule")


def decision_for(decisions: dict[str, Decision], pattern: str) -> Decision:
    """``pattern``'s decision; a model with one decision (poster only) uses it for every pattern."""
    return decisions.get(pattern) or decisions[POSTER_ONLY]


@dataclass
class Decided:
    """Per film: its pattern, the probabilities its pattern's decision reads, the genres chosen and the rule."""

    patterns: np.ndarray
    probabilities: np.ndarray
    chosen: np.ndarray
    rules: list[str]


def decide(decisions: dict[str, Decision], scores: dict[str, np.ndarray] | np.ndarray,
           patterns: np.ndarray) -> Decided:
    """Apply each film's pattern decision to its scores. ``scores``: one (n, M) array for every pattern, or a
    dict pattern -> (n, M) (a film of pattern p reads row i of ``scores[p]``)."""
    patterns = np.asarray(patterns, dtype=object)
    n = len(patterns)
    first = next(iter(scores.values())) if isinstance(scores, dict) else scores
    probs = np.zeros((n, np.asarray(first).shape[1]), dtype=np.float32)
    chosen = np.zeros(probs.shape, dtype=bool)
    rules = [""] * n
    for pattern in dict.fromkeys(patterns.tolist()):
        rows = patterns == pattern
        decision = decision_for(decisions, pattern)
        s = np.asarray(scores[pattern] if isinstance(scores, dict) else scores)[rows]
        probs[rows] = decision.probabilities(s)
        chosen[rows] = decision.rule.apply(probs[rows])
        for i in np.flatnonzero(rows):
            rules[i] = f"{pattern}:{decision.rule.name}"
    return Decided(patterns, probs, chosen, rules)


def decisions_line(decisions: dict[str, Decision]) -> str:
    """One line for people naming each pattern's calibration and rule, e.g. ``poster_only: rule: ... [name],
    calibration platt; with_plot: ...``."""
    parts = []
    for pattern, d in decisions.items():
        line = rule_line(d.rule)
        if d.validation and d.validation.get("chosen", {}).get("name") == d.rule.name:
            metric = d.validation["metric"]
            line += f" ({metric} {d.validation['chosen'][metric]:.2f} on validation)"
        parts.append(f"{pattern}: {line} [{d.rule.name}], calibration {d.calibration_method}")
    return "; ".join(parts)
