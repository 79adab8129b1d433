"""Evaluation of a trained head on the test split: metrics, per-genre table, PR curves."""

from __future__ import annotations

import numpy as np
import polars as pl

from pipeline.scoring.calibration import reliability
from pipeline.scoring.decisions import Decided
from pipeline.scoring.metrics import all_metrics, average_precision, hit_ratio, interpolated_precision
from pipeline.scoring.thresholds import DecisionRule, genres_per_poster, measure_predictions, tune_thresholds


def per_genre_table(metrics: dict) -> pl.DataFrame:
    rows = [{"genre": g, **{k: v for k, v in m.items()}} for g, m in metrics["per_genre"].items()]
    return pl.DataFrame(rows, infer_schema_length=None)


def rounded(table: pl.DataFrame, decimals: int) -> pl.DataFrame:
    """``table`` with its float columns rounded as numpy rounds (``np.round``: half to even after scaling)."""
    return table.with_columns(pl.Series(c, np.round(table[c].to_numpy(), decimals))
                              for c, dtype in table.schema.items() if dtype.is_float())


def pr_curves(y_true: np.ndarray, y_score: np.ndarray, genres: list[str], points: int = 101) -> pl.DataFrame:
    """Interpolated precision (best precision at recall >= r) at ``points`` recall levels.

    One column per genre (wide), so ``dvc plots`` draws one line per genre;
    a genre without a positive test poster gets an empty column.
    """
    grid = np.linspace(0, 1, points)
    columns = [pl.Series("recall", np.round(grid, 4))]
    for j, g in enumerate(genres):
        if y_true[:, j].sum() == 0:
            columns.append(pl.Series(g, np.full(points, np.nan)))
            continue
        columns.append(pl.Series(g, np.asarray(interpolated_precision(y_true[:, j], y_score[:, j], grid), np.float64)))
    return pl.DataFrame(columns)


def predictions_table(keys, imdb_ids, y_true, y_score, genres, rule: DecisionRule, decided: Decided) -> pl.DataFrame:
    """Scores, true genres and the genres ``rule`` predicts; ``prob_<genre>``, the probabilities the product's
    decisions read (each film's input pattern's calibration of the scores), ``predicted_product``, its genres, and
    ``product_rule``, the pattern and rule that chose them."""
    columns = [pl.Series("key", list(keys), pl.String), pl.Series("imdb_id", list(imdb_ids), pl.String)]
    columns += [pl.Series(f"score_{g}", y_score[:, j].astype(np.float32)) for j, g in enumerate(genres)]
    columns.append(pl.Series("true", _joined(genres, y_true), pl.String))
    columns.append(pl.Series("predicted", _joined(genres, rule.apply(y_score)), pl.String))
    columns += [pl.Series(f"prob_{g}", decided.probabilities[:, j].astype(np.float32)) for j, g in enumerate(genres)]
    columns.append(pl.Series("predicted_product", _joined(genres, decided.chosen), pl.String))
    columns.append(pl.Series("product_rule", decided.rules, pl.String))
    return pl.DataFrame(columns)


def _joined(genres, y) -> list[str]:
    return ["|".join(g for g, t in zip(genres, row) if t) for row in np.asarray(y).astype(bool)]


def evaluate_scores(y_true, y_score, genres, rule: DecisionRule) -> tuple[dict, pl.DataFrame, pl.DataFrame]:
    """Every metric of the paper with ``rule``'s decisions; per-genre table; PR curves."""
    metrics = all_metrics(y_true, y_score, None, genres, y_pred=rule.apply(y_score))
    return metrics, per_genre_table(metrics), pr_curves(np.asarray(y_true), np.asarray(y_score), genres)


def rule_figures(y_true, y_score, paper: DecisionRule, decided: Decided) -> dict:
    """Genres per poster, true and predicted by the paper's rule (on ``y_score``), and the product's figures
    (``decided``: each film's pattern decision on its calibrated probabilities)."""
    return {
        "genres_per_poster_true": round(genres_per_poster(y_true), 6),
        "genres_per_poster": round(genres_per_poster(paper.apply(y_score)), 6),
        "product_rule": {"rules": sorted(set(decided.rules)), **measure_predictions(y_true, decided.chosen)},
    }


def calibration_table(figures: dict, genres: list[str]) -> pl.DataFrame:
    """ECE per genre on test, one column per calibration (:func:`calibration_figures`' methods)."""
    return pl.DataFrame({"genre": genres, **{m: [figures[m]["ece"][g] for g in genres] for m in figures}})


def reliability_points(y_true, y_score, y_prob, genres: list[str]) -> dict[str, pl.DataFrame]:
    """The reliability diagram on test, every (poster, genre) pooled: observed frequency against mean predicted
    probability per bin (15 equal-width bins), for the head's scores (``reliability``) and for the probabilities
    the product's decisions read (``reliability_calibrated``: the scores where validation chose no calibration)."""
    series = {"reliability": y_score, "reliability_calibrated": y_prob}
    return {name: pl.DataFrame([{"confidence": r["confidence"], "frequency": r["frequency"], "count": r["count"]}
                                for r in reliability(y_true, s, genres) if r["genre"] == "all"])
            for name, s in series.items()}


def decision_thresholds(mode: str, threshold: float, y_val: np.ndarray, s_val: np.ndarray) -> np.ndarray:
    """Per-genre thresholds: ``threshold`` everywhere, or tuned on the validation posters only."""
    m = y_val.shape[1]
    if mode == "global":
        return np.full(m, threshold)
    return tune_thresholds(y_val, s_val, default=threshold)


def paper_rule(mode: str, threshold: float, y_val: np.ndarray, s_val: np.ndarray, genres: list[str]) -> DecisionRule:
    """The rule of the paper's tables (eval.threshold / eval.threshold_mode), no cap."""
    if mode == "global":
        return DecisionRule.global_threshold(genres, threshold)
    return DecisionRule.per_genre(genres, decision_thresholds(mode, threshold, y_val, s_val))


def plot_subsets(y_true, y_score, has_plot: np.ndarray, paper: DecisionRule, decided: Decided,
                 reads: list[str], genres: list[str]) -> dict:
    """Macro F1, hit and macro AP (paper's rule) and the product's macro and samples F1 on the test posters whose
    film has a plot and on those whose film has none: a catalogue without a synopsis is the second."""
    y_true, y_score = np.asarray(y_true), np.asarray(y_score)
    out: dict = {"modalities": "+".join(reads)}
    for name, rows in (("with_plot", has_plot), ("without_plot", ~has_plot)):
        if not rows.any():
            continue
        m = all_metrics(y_true[rows], y_score[rows], None, genres, y_pred=paper.apply(y_score[rows]))
        product = measure_predictions(y_true[rows], decided.chosen[rows])
        out[name] = {"posters": int(rows.sum()), "f1_macro": round(m["f1_macro"], 6), "hit": round(m["hit"], 6),
                     "average_precision_macro": round(m["average_precision_macro"], 6),
                     "product_f1_macro": product["f1_macro"], "product_f1_samples": product["f1_samples"]}
    return out


def decided_figures(y_true, decided, has_plot: np.ndarray | None, genres: list[str]) -> dict:
    """The product's figures on test (``decided``: each film's pattern decision applied), on every film and on
    the films with and without a plot: macro and samples F1 of its decisions (macro first: a rule can win samples
    F1 by never tagging rare genres), hit, macro AP of its probabilities, genres per poster; and, for the films
    without a plot, how often each genre is tagged against how often it is true."""
    y = np.asarray(y_true)
    subsets = {"all": np.ones(len(y), dtype=bool)}
    if has_plot is not None:
        subsets |= {"with_plot": np.asarray(has_plot, dtype=bool), "without_plot": ~np.asarray(has_plot, dtype=bool)}
    out: dict = {}
    for name, rows in subsets.items():
        if not rows.any():
            continue
        figures = measure_predictions(y[rows], decided.chosen[rows])
        out[name] = {"posters": int(rows.sum()), "f1_macro": figures["f1_macro"], "f1_samples": figures["f1_samples"],
                     "hit": round(hit_ratio(y[rows], decided.probabilities[rows]), 6),
                     "average_precision_macro": round(float(np.nanmean(average_precision(
                         y[rows], decided.probabilities[rows]))), 6),
                     "genres_per_poster": figures["genres_per_poster"],
                     "genres_per_poster_true": round(genres_per_poster(y[rows]), 6)}
    if "without_plot" in out:
        rows = subsets["without_plot"]
        out["tags_without_plot"] = {g: {"tagged": int(decided.chosen[rows, j].sum()), "true": int(y[rows, j].sum())}
                                    for j, g in enumerate(genres)}
    return out


def product_predictions(keys, imdb_ids, has_plot, y_true, genres, product: Decided, main: Decided,
                        withheld: Decided | None = None) -> pl.DataFrame:
    """One row per test poster: ``key``, ``imdb_id``, ``has_plot`` (null without films), then per genre the label
    ``y_<genre>``, the product's genres ``product_<genre>`` and the main model's ``main_<genre>`` (0/1) and the
    product's probability ``prob_<genre>``; ``product_rule`` and ``main_rule`` name each film's decision.
    ``withheld`` (a product that reads films): its genres for every film with the plot and metadata withheld
    (``withheld_<genre>``, the poster-only plan), what a film would get had it arrived without its synopsis."""
    plots = [None] * len(keys) if has_plot is None else np.asarray(has_plot, dtype=bool).tolist()
    columns = [pl.Series("key", list(keys), pl.String), pl.Series("imdb_id", list(imdb_ids), pl.String),
               pl.Series("has_plot", plots, pl.Boolean)]
    for j, g in enumerate(genres):
        columns += [pl.Series(f"y_{g}", np.asarray(y_true)[:, j].astype(np.int8)),
                    pl.Series(f"product_{g}", product.chosen[:, j].astype(np.int8)),
                    pl.Series(f"main_{g}", main.chosen[:, j].astype(np.int8)),
                    pl.Series(f"prob_{g}", product.probabilities[:, j].astype(np.float32))]
        if withheld is not None:
            columns.append(pl.Series(f"withheld_{g}", withheld.chosen[:, j].astype(np.int8)))
    columns += [pl.Series("product_rule", product.rules, pl.String), pl.Series("main_rule", main.rules, pl.String)]
    return pl.DataFrame(columns)
