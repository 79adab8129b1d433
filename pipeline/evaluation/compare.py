"""The comparison: every method x several seeds on the cached features, tables in the
shape of the paper's Tables I-IV (mean +/- std over seeds), and paired bootstrap tests.

The paper reports single runs without a significance test; here every number is a mean over
seeds, and each difference in macro F1 comes with a 95% bootstrap interval and a p-value that
cover *both* noises a reader must discount: the test sample (which films were drawn
for test) and training (which seeds were drawn). The bootstrap is two-level
(:class:`Resampler`): every draw resamples the test films with replacement (one draw shared by
every method, so comparisons are paired) and, independently for each method, its seeds with
replacement (runs of two methods with the same seed number share nothing); a method's statistic
on a draw is the mean over its drawn seeds of their macro F1 on the drawn films. A difference that
batch order alone can produce then has an interval that covers zero. The film-only interval (seeds
fixed) is kept beside it, labelled, to show how much of the width
is training noise. With k seeds, seed resampling sees only k runs per method, so intervals are as
honest as k allows: five seeds by default.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from pipeline.core.errors import PipelineError
from pipeline.core.io import read_parquet
from pipeline.evaluation.evaluate import decision_thresholds
from pipeline.evaluation.methods import (
    BASELINES,
    FILM_PAIRS,
    FILMS_TABLE,
    PAPER_HEAD,
    TABLE_NOTES,
    TABLES,
    method_label,
    reads_films,
)
from pipeline.scoring.decisions import POSTER_ONLY, fit_decision
from pipeline.scoring.metrics import all_metrics, f1, interpolated_precision
from pipeline.scoring.thresholds import DecisionRule, genres_per_poster, measure

TABLE_METRICS = [
    ("f1_macro", "F_m"), ("balanced_accuracy_macro", "BA_m"), ("f1_micro", "F_mu"),
    ("balanced_accuracy_micro", "BA_mu"), ("f1_weighted", "F_w"), ("balanced_accuracy_weighted", "BA_w"),
    ("f1_samples", "F_s"), ("balanced_accuracy_samples", "BA_s"), ("hamming_loss", "HL"), ("hit", "Hit"),
    ("average_precision_macro", "AP_m"),
]


def _arrays(frame: pl.DataFrame, genres: list[str]) -> tuple[np.ndarray, np.ndarray]:
    return (frame.select(f"y_{g}" for g in genres).to_numpy(),
            frame.select(f"s_{g}" for g in genres).to_numpy().astype(np.float64))


def _frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """A table from rows of dicts (the columns of the first row, in order; every row is read for types)."""
    return pl.DataFrame(rows, infer_schema_length=None)


def _genre_f1_weighted(w: np.ndarray, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """F1 of each genre (n_draws, M) per row of ``w`` (n_draws, n_posters): poster i counted ``w[:, i]`` times.

    The same counts as :func:`pipeline.scoring.metrics.f1` on the resampled rows (integer
    weights, float64: exact), for every draw at once."""
    y = y.astype(bool)
    p = pred.astype(bool)
    tp = w @ (y & p).astype(np.float64)
    fp = w @ (~y & p).astype(np.float64)
    fn = w @ (y & ~p).astype(np.float64)
    den = 2 * tp + fp + fn
    return np.divide(2 * tp, den, out=np.zeros_like(tp), where=den > 0)


def _macro_f1_weighted(w: np.ndarray, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Macro F1 per row of ``w`` (see :func:`_genre_f1_weighted`)."""
    return _genre_f1_weighted(w, y, pred).mean(axis=1)


def film_draws(groups: np.ndarray, n_boot: int = 2000, seed: int = 0) -> np.ndarray:
    """(n_boot, n_posters) weights of a bootstrap over films: how often each poster's film was drawn.

    Films are drawn with replacement (all posters of a drawn film come along); every
    method is scored on the same draws, which makes the comparison paired."""
    films, inverse = np.unique(groups, return_inverse=True)
    rng = np.random.default_rng(seed)
    w = np.empty((n_boot, len(groups)))
    for b in range(n_boot):
        counts = np.bincount(rng.integers(0, len(films), len(films)), minlength=len(films))
        w[b] = counts[inverse]
    return w


def seed_averaged_f1(y: np.ndarray, preds: list[np.ndarray], w: np.ndarray) -> np.ndarray:
    """Seed-averaged macro F1 of one method on each draw of ``w``."""
    return np.mean([_macro_f1_weighted(w, y, p) for p in preds], axis=0)


class Resampler:
    """The draws of a two-level bootstrap shared by every test of one report: ``w`` (n_boot, n_posters)
    resamples test films (the same for every method: paired); each method (``key``) gets its own seed
    draws, (n_boot, k) indices into its k runs, the same whenever the same key is asked for."""

    def __init__(self, groups: np.ndarray, n_boot: int = 2000, seed: int = 0):
        self.w = film_draws(groups, n_boot, seed)
        self.n_boot, self.seed = n_boot, seed

    def seeds(self, key: str, k: int) -> np.ndarray:
        import zlib

        rng = np.random.default_rng([self.seed, zlib.crc32(key.encode("utf-8")), k])
        return rng.integers(0, k, size=(self.n_boot, k))

    def stats(self, key: str, per_seed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """From ``per_seed`` (k, n_boot, ...): a statistic of each run on each film draw, the method's
        statistic per draw two-level (its seeds resampled too) and film-only (all its seeds, every draw)."""
        idx = self.seeds(key, per_seed.shape[0])  # (n_boot, k)
        two_level = per_seed[idx, np.arange(self.n_boot)[:, None]].mean(axis=1)
        return two_level, per_seed.mean(axis=0)

    def macro_f1(self, key: str, y: np.ndarray, preds: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Seed-averaged macro F1 of one method per draw: (two-level, film-only)."""
        return self.stats(key, np.stack([_macro_f1_weighted(self.w, y, p) for p in preds]))


def interval(t: dict[str, Any]) -> str:
    """``[low, high]`` in points."""
    return f"[{100 * t['ci_low']:+.2f}, {100 * t['ci_high']:+.2f}]"


def film_only_interval(t: dict[str, Any]) -> str:
    """The film-only interval of a test (seeds fixed), or '-' for a test made before it was kept."""
    return interval(t["film_only"]) if "film_only" in t else "-"


#: The two Holm families of the poster-only comparison: the paper's questions (its head against each method,
#: each method against the best baseline) and every pair of poster-only methods.
QUESTIONS, ALL_PAIRS = "the paper's questions", "all pairs"
#: Table V's family (film methods only) and compare-two's (one per call).
FILM_QUESTIONS, TWO_COMPARISONS = "Table V's questions", "compare-two"

#: How the report says what its intervals cover.
TWO_LEVEL = ("95% percentile interval of a two-level bootstrap: each draw resamples the test films (the same draw "
             "for every method, so tests are paired) and each method's seeds, so the interval covers test sampling "
             "and training noise; the film-only interval (seeds fixed) beside it shows how much of the width "
             "training noise adds")


def both_tests(observed: float, two_level: np.ndarray, film_only: np.ndarray) -> dict[str, Any]:
    """The test of a difference: its two-level interval and p (the ones a claim rests on), and the film-only
    interval and p beside them (``film_only``), labelled as such."""
    film = paired_test(observed, film_only)
    return {**paired_test(observed, two_level),
            "film_only": {"ci_low": film["ci_low"], "ci_high": film["ci_high"], "p_value": film["p_value"]}}


def paired_test(observed: float, stats: np.ndarray) -> dict[str, float]:
    """Difference a - b, its 95% percentile interval and the two-sided bootstrap p-value
    p = 2 min(P(d* <= 0), P(d* >= 0)) with the +1 correction, capped at 1."""
    n = len(stats)
    below = (np.sum(stats <= 0) + 1) / (n + 1)
    above = (np.sum(stats >= 0) + 1) / (n + 1)
    return {
        "diff": float(observed),
        "ci_low": float(np.percentile(stats, 2.5)),
        "ci_high": float(np.percentile(stats, 97.5)),
        "p_value": float(min(1.0, 2 * min(below, above))),
    }


def paired_bootstrap(
    y: np.ndarray, preds_a: list[np.ndarray], preds_b: list[np.ndarray], groups: np.ndarray,
    n_boot: int = 2000, seed: int = 0,
) -> dict[str, Any]:
    """Two-level paired bootstrap (films, and each method's seeds) of the difference in seed-averaged macro
    F1, a - b; the film-only interval beside it (``film_only``)."""
    ones = np.ones((1, len(y)))
    draws = Resampler(groups, n_boot, seed)
    observed = seed_averaged_f1(y, preds_a, ones)[0] - seed_averaged_f1(y, preds_b, ones)[0]
    (two_a, film_a), (two_b, film_b) = draws.macro_f1("a", y, preds_a), draws.macro_f1("b", y, preds_b)
    return both_tests(observed, two_a - two_b, film_a - film_b)


def holm(p_values: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, kept monotone, capped at 1), in input order.

    A difference is called significant when its adjusted p is below 0.05: the
    chance of any false call among all the comparisons made stays under 5%."""
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(np.argsort(p, kind="stable")):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


def _std(values: list[float]) -> float:
    """Sample standard deviation over seeds (ddof=1); 0 for a single seed."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def load_runs(folder: str | Path) -> dict[str, list[dict[str, Any]]]:
    """method -> list of runs (one per seed): validation and test frames, timing."""
    out: dict[str, list[dict[str, Any]]] = {}
    for run in sorted(Path(folder).glob("*/seed*/run.json")):
        meta = json.loads(run.read_text())
        frame = read_parquet(run.parent / "scores.parquet")
        timing = run.parent / "timing.json"
        meta["seconds"] = json.loads(timing.read_text())["seconds"] if timing.exists() else None
        for split in ("val", "test"):
            meta[split] = frame.filter(pl.col("split") == split).sort("key", maintain_order=True)
        out.setdefault(meta["method"], []).append(meta)
    for runs in out.values():
        runs.sort(key=lambda r: r["seed"])
    return out


def summarise(runs: dict[str, list[dict]], genres: list[str], n_boot: int = 2000,
              threshold_mode: str = "global", threshold: float = 0.5,
              rule_metric: str = "f1_samples", calibration: str = "none") -> dict[str, Any]:
    """Metrics per method (mean, sample std over seeds), per-genre results, bootstrap tests.

    Decision thresholds are set here, per run, from that run's validation scores
    (``threshold_mode: per_genre``) or as ``threshold`` everywhere: they are post-hoc, so
    changing them re-runs the report only, never the training.

    Tests (two-level paired bootstrap of seed-averaged test macro F1, all on the same draws), in two
    families, each Holm-adjusted over itself and named in every test (``family``):

    - ``tests``, the paper's questions: the paper's model (``ours``) against each other method, and every
      method against the best baseline, which is chosen by *validation* macro F1 (choosing it on test
      would favour it: the winner's curse);
    - ``all_pairs``: every pair of poster-only methods, a - b with a ahead on test, so a claim about any
      two methods (the largest gap among ablations, two late-fusion rows) cites a test of that pair.
      With m pairs the smallest Holm p the bootstrap can give is m * 2 / (n_boot + 1): ``n_boot`` must be
      large enough for the family (``compare.bootstrap``, 10,000 by default: 0.024 for 120 pairs).

    Beside the paper's rule, each run's *product* decision rule (the one ``predict`` would
    use: :func:`pipeline.scoring.decisions.fit_decision`, the calibration (``auto``: chosen by cross-fitting)
    and the rule by ``rule_metric`` on its validation scores, as train does for a poster-only head)
    is measured on test: genres per poster against the true mean, F1s and hamming loss.
    """
    per_method: dict[str, Any] = {}
    preds: dict[str, list[np.ndarray]] = {}
    y_ref = groups = None
    _same_test_posters(runs, genres)
    for method, rs in runs.items():
        metrics, val_f1, taus, rules = [], [], [], []
        preds[method] = []
        for r in rs:
            y, s, y_val, s_val, tau = _decided(r, genres, threshold_mode, threshold)
            taus.append(tau)
            metrics.append(all_metrics(y, s, tau, genres))
            val_f1.append(f1(y_val, (s_val > tau).astype(np.int64), "macro"))
            decision = fit_decision(POSTER_ONLY, y_val, s_val, genres, r["val"]["imdb_id"].to_list(), rule_metric,
                                    threshold, calibration)
            rules.append({"paper": measure(DecisionRule.global_threshold(genres, threshold), y, s),
                          "product": measure(decision.rule, y, decision.probabilities(s)),
                          "genres_per_poster_true": genres_per_poster(y)})
            preds[method].append((s > tau).astype(np.int64))
            if y_ref is None:
                y_ref, groups = y, r["test"]["imdb_id"].to_numpy()
        keys = [k for k, _ in TABLE_METRICS]
        per_method[method] = {
            "label": method_label(method),
            "seeds": len(rs),
            "mean": {k: float(np.mean([m[k] for m in metrics])) for k in keys},
            "std": {k: _std([m[k] for m in metrics]) for k in keys},
            "val_f1_macro": float(np.mean(val_f1)),
            "per_genre": {g: {k: float(np.mean([m["per_genre"][g][k] for m in metrics]))
                              for k in ("balanced_accuracy", "f1", "precision", "recall", "specificity")}
                          for g in genres},
            "train_seconds": (float(np.mean([r["seconds"] for r in rs]))
                              if all(r["seconds"] is not None for r in rs) else None),
            "epochs": float(np.mean([r["epochs_run"] for r in rs])),
            "thresholds": {g: round(float(np.mean([t[j] for t in taus])), 4) for j, g in enumerate(genres)},
            "branches": _branches(rs),
            "decision_rules": _rules_summary(rules),
        }
    # the poster-only comparison (Tables I-IV, its tests, "best"): methods reading a film's plot or metadata
    # have their own table and tests (films_summary)
    ranked = sorted(per_method, key=lambda m: (reads_films(m), -per_method[m]["mean"]["f1_macro"]))
    poster_only = [m for m in per_method if not reads_films(m)]
    baselines = sorted((m for m in per_method if m in BASELINES),
                       key=lambda m: -per_method[m]["val_f1_macro"])
    best_baseline = baselines[0] if baselines else None
    pairs: list[tuple[str, str]] = []
    if PAPER_HEAD in per_method:
        pairs += [(PAPER_HEAD, m) for m in poster_only if m != PAPER_HEAD]
    if best_baseline is not None:
        pairs += [(m, best_baseline) for m in poster_only
                  if m != best_baseline and (m, best_baseline) not in pairs and (best_baseline, m) not in pairs]
    # every pair of poster-only methods, a - b with a the one ahead on test: claims about any two methods
    # (not only those the paper's questions name) rest on this family, Holm-adjusted over itself
    by_test = sorted(poster_only, key=lambda m: -per_method[m]["mean"]["f1_macro"])
    all_pairs = [(a, b) for i, a in enumerate(by_test) for b in by_test[i + 1:]]
    tests: list[dict[str, Any]] = []
    every_pair: list[dict[str, Any]] = []
    if pairs or all_pairs:
        ones = np.ones((1, len(y_ref)))
        draws = Resampler(groups, n_boot)
        needed = sorted({m for pair in pairs + all_pairs for m in pair})
        observed = {m: seed_averaged_f1(y_ref, preds[m], ones)[0] for m in needed}
        stats = {m: draws.macro_f1(m, y_ref, preds[m]) for m in needed}

        def family(name: str, members: list[tuple[str, str]]) -> list[dict[str, Any]]:
            out = [{"a": a, "b": b, "family": name,
                    **both_tests(observed[a] - observed[b], stats[a][0] - stats[b][0], stats[a][1] - stats[b][1])}
                   for a, b in members]
            for t, adjusted in zip(out, holm([t["p_value"] for t in out])):
                t["p_holm"] = adjusted
            return out

        tests, every_pair = family(QUESTIONS, pairs), family(ALL_PAIRS, all_pairs)
    return {"methods": per_method, "ranking": ranked, "best": ranked[0] if ranked else None,
            "threshold_mode": threshold_mode, "threshold": threshold, "paper_head": PAPER_HEAD,
            "best_baseline": best_baseline, "tests": tests, "all_pairs": every_pair, "genres": genres,
            "test_posters": int(len(y_ref)) if y_ref is not None else 0,
            "test_films": int(len(np.unique(groups))) if groups is not None else 0, "n_boot": n_boot}


def _same_test_posters(runs: dict[str, list[dict]], genres: list[str]) -> None:
    """Every run pairs with every other row by row: the same test posters, in the same order, with the same
    labels (one line naming the run that differs, as compare-two does)."""
    ref = None
    for method, rs in runs.items():
        for r in rs:
            keys, (y, _) = r["test"]["key"].to_numpy(), _arrays(r["test"], genres)
            if ref is None:
                ref = (method, r["seed"], keys, y)
            elif not (np.array_equal(keys, ref[2]) and np.array_equal(y, ref[3])):
                raise PipelineError(f"{method} seed {r['seed']}: its test posters or labels differ from {ref[0]} seed "
                                    f"{ref[1]}'s; every run must share the split (re-run the comparison)")


def _decided(run: dict, genres: list[str], threshold_mode: str, threshold: float):
    """One run's test labels and scores, validation labels and scores, and the thresholds set from
    validation only (the paper's rule, ``eval.threshold_mode``)."""
    y, s = _arrays(run["test"], genres)
    y_val, s_val = _arrays(run["val"], genres)
    return y, s, y_val, s_val, decision_thresholds(threshold_mode, threshold, y_val, s_val)


def _test_predictions(rs: list[dict], genres: list[str], threshold_mode: str, threshold: float):
    """Test labels, film ids, poster keys and each seed's 0/1 predictions of one method."""
    preds = []
    for r in rs:
        y, s, _, _, tau = _decided(r, genres, threshold_mode, threshold)
        preds.append((s > tau).astype(np.int64))
    return y, rs[0]["test"]["imdb_id"].to_numpy(), rs[0]["test"]["key"].to_numpy(), preds


def compare_two(runs_a: dict[str, list[dict]], runs_b: dict[str, list[dict]], genres: list[str],
                labels: tuple[str, str] = ("A", "B"), reference: str = "image", n_boot: int = 2000,
                threshold_mode: str = "global", threshold: float = 0.5,
                methods: list[str] | None = None) -> dict[str, Any]:
    """Two comparisons that differ in one upstream choice (e.g. the OCR engine), method by method.

    For every method in both (and with the same seeds): the difference in seed-averaged test macro
    F1, A - B; and for every method but ``reference`` (image only: the text's contribution), its gain
    over ``reference`` within A, within B, and the difference of those gains. All are paired film
    bootstraps on the *same* draws (both comparisons must have the same test posters), and every
    p-value is Holm-adjusted over all the tests made here together, so ``methods`` (default: every
    method in both) should name only the ones the question needs.
    """
    if methods:
        unknown = [m for m in methods if m not in runs_a or m not in runs_b]
        if unknown:
            raise PipelineError(f"methods not in both comparisons: {', '.join(unknown)}")
        if reference not in methods and reference in runs_a and reference in runs_b:
            methods = [*methods, reference]
    common = [m for m in (methods or runs_a) if m in runs_a and m in runs_b]
    if not common:
        raise PipelineError(f"no method in both comparisons "
                            f"({labels[0]}: {sorted(runs_a)}; {labels[1]}: {sorted(runs_b)})")
    for m in common:
        if [r["seed"] for r in runs_a[m]] != [r["seed"] for r in runs_b[m]]:
            raise PipelineError(f"method {m}: seeds differ between {labels[0]} and {labels[1]}")
    pred = {side: {m: _test_predictions(runs[m], genres, threshold_mode, threshold) for m in common}
            for side, runs in (("a", runs_a), ("b", runs_b))}
    y, groups, keys, _ = pred["a"][common[0]]
    for side in ("a", "b"):
        for m in common:
            if not (np.array_equal(pred[side][m][2], keys) and np.array_equal(pred[side][m][0], y)):
                raise PipelineError(f"method {m}: the test posters differ between {labels[0]} and {labels[1]}; "
                                    "the two comparisons must share posters and split")
    ones = np.ones((1, len(y)))
    draws = Resampler(groups, n_boot)
    observed = {(side, m): seed_averaged_f1(y, pred[side][m][3], ones)[0] for side in ("a", "b") for m in common}
    # (two-level, film-only) per draw; each side's runs of a method are their own seeds
    stats = {(side, m): draws.macro_f1(f"{side}:{m}", y, pred[side][m][3]) for side in ("a", "b") for m in common}

    def test(obs, a, b, c=None, d=None):
        """``obs`` with the stats a - b (and - (c - d), the change of a gain)."""
        parts = [stats[a][i] - stats[b][i] - ((stats[c][i] - stats[d][i]) if c else 0) for i in (0, 1)]
        return both_tests(obs, *parts)

    tests: list[dict[str, Any]] = []
    for m in common:
        d = ("a", m), ("b", m)
        tests.append({"kind": "method", "method": m, **test(observed[d[0]] - observed[d[1]], *d)})
    if reference in common:
        for m in common:
            if m == reference:
                continue
            gain = {side: observed[(side, m)] - observed[(side, reference)] for side in ("a", "b")}
            for side in ("a", "b"):
                tests.append({"kind": f"gain_{side}", "method": m, **test(gain[side], (side, m), (side, reference))})
            tests.append({"kind": "gain_diff", "method": m, **test(gain["a"] - gain["b"], ("a", m), ("a", reference),
                                                                   ("b", m), ("b", reference))})
    for t, adjusted in zip(tests, holm([t["p_value"] for t in tests])):
        t["p_holm"], t["family"] = adjusted, TWO_COMPARISONS
    return {"labels": list(labels), "reference": reference, "methods": common, "threshold_mode": threshold_mode,
            "threshold": threshold, "test_posters": int(len(y)), "test_films": int(len(np.unique(groups))),
            # the smallest p any test can reach after Holm: 2 / (n_boot + 1) times the number of tests
            "min_p_holm": float(min(1.0, 2 / (n_boot + 1) * len(tests))),
            "f1_macro": {side: {m: float(observed[(side, m)]) for m in common} for side in ("a", "b")},
            "tests": tests}


def compare_two_markdown(result: dict) -> str:
    """The two-comparison report: per method A vs B, and the reference gain within each and its change."""
    a, b = result["labels"]
    label = lambda m: md_cell(method_label(m))  # noqa: E731
    ci = lambda t: f"{100 * t['diff']:+.2f} [{100 * t['ci_low']:+.2f}, {100 * t['ci_high']:+.2f}]"  # noqa: E731
    sig = lambda t: f"{t['p_holm']:.4f}" + (" *" if t["p_holm"] < 0.05 else "")  # noqa: E731
    by = {(t["kind"], t["method"]): t for t in result["tests"]}
    rule = (f"threshold {result['threshold']} for every genre" if result["threshold_mode"] == "global"
            else "per-genre thresholds tuned on each run's validation scores")
    lines = [f"# {a} against {b}", "",
             f"Test split: {result['test_posters']} posters of {result['test_films']} films; seed-averaged macro F1 "
             f"in points, {rule}. Δ with its {TWO_LEVEL}; "
             f"p (Holm) is adjusted over all {len(result['tests'])} tests here, * = below 0.05.", ""]
    if result["min_p_holm"] >= 0.05:
        lines += [f"**No test here can reach p (Holm) < 0.05**: with these bootstrap draws the smallest adjusted p is "
                  f"{result['min_p_holm']:.3f}. Raise compare.bootstrap or compare fewer methods.", ""]
    lines += [f"## Each method: {a} - {b}", "",
              f"| method | F_m {a} | F_m {b} | Δ [95% CI] | films only | p | p (Holm) |",
              "|---|---|---|---|---|---|---|"]
    for m in result["methods"]:
        t = by[("method", m)]
        lines.append(f"| {label(m)} | {100 * result['f1_macro']['a'][m]:.2f} | {100 * result['f1_macro']['b'][m]:.2f} "
                     f"| {ci(t)} | {film_only_interval(t)} | {t['p_value']:.4f} | {sig(t)} |")
    ref = result["reference"]
    gains = [m for m in result["methods"] if ("gain_diff", m) in by]
    if gains:
        lines += ["", f"## Gain over {label(ref)}, within each", "",
                  f"| method | gain with {a} [95% CI], p (Holm) | gain with {b} [95% CI], p (Holm) "
                  f"| change of gain [95% CI] | films only | p | p (Holm) |", "|---|---|---|---|---|---|---|"]
        for m in gains:
            ga, gb, gd = by[("gain_a", m)], by[("gain_b", m)], by[("gain_diff", m)]
            lines.append(f"| {label(m)} | {ci(ga)}, {sig(ga)} | {ci(gb)}, {sig(gb)} | {ci(gd)} "
                         f"| {film_only_interval(gd)} | {gd['p_value']:.4f} | {sig(gd)} |")
    return "\n".join(lines) + "\n"


#: Table V's figures per subset of test films.
FILMS_METRICS = [("f1_macro", "F_m"), ("hit", "Hit"), ("average_precision_macro", "AP_m")]


def films_summary(runs: dict[str, list[dict]], genres: list[str], n_boot: int = 2000,
                  threshold_mode: str = "global", threshold: float = 0.5) -> dict[str, Any] | None:
    """Table V: the film methods on all test films, on those that have a plot and on those that have none.

    For each subset: F_m, Hit and AP_m (mean, std over seeds); the pairs of :data:`FILM_PAIRS` (each a
    question: what the poster adds over the plot, ...) as paired film-bootstrap tests of seed-averaged
    macro F1, each on the subsets it names (without a plot: what a model that reads plots does for a film
    without one, against falling back to a poster-only model); and, on the plot subset,
    the per-genre F1 of the poster image against the plot
    (``image`` - ``plot``), one test per genre. Thresholds are each run's own (validation only). All
    p-values of this table are Holm-adjusted together (their own family, apart from the report's other
    tests). None when no run has films (``has_plot``)."""
    methods = [m for m in TABLES[FILMS_TABLE] if m in runs]
    if not any(m != PAPER_HEAD and m != "image" for m in methods):
        return None
    for m in methods:
        if any("has_plot" not in r["test"].columns for r in runs[m]):
            raise ValueError(f"method {m}: its runs have no has_plot column; re-run them with data.films set")
    decided = {m: [_decided(r, genres, threshold_mode, threshold) for r in runs[m]] for m in methods}
    _same_test_posters({m: runs[m] for m in methods}, genres)
    first = runs[methods[0]][0]["test"]
    has_plot = first["has_plot"].to_numpy()
    groups_all = first["imdb_id"].to_numpy()
    out: dict[str, Any] = {"methods": methods, "subsets": {}, "tests": [], "genre_tests": []}
    subsets = (("all", np.ones(len(has_plot), dtype=bool)), ("with_plot", has_plot), ("without_plot", ~has_plot))
    for subset, rows in subsets:
        if not rows.any():
            continue
        y = decided[methods[0]][0][0][rows]
        groups = groups_all[rows]
        figures = {}
        preds = {}
        for m in methods:
            ms = [all_metrics(yy[rows], s[rows], tau, genres) for yy, s, _, _, tau in decided[m]]
            figures[m] = {k: {"mean": float(np.mean([x[k] for x in ms])), "std": _std([x[k] for x in ms])}
                          for k, _ in FILMS_METRICS}
            figures[m]["per_genre_f1"] = {g: float(np.mean([x["per_genre"][g]["f1"] for x in ms])) for g in genres}
            preds[m] = [(s[rows] > tau).astype(np.int64) for _, s, _, _, tau in decided[m]]
        out["subsets"][subset] = {"posters": int(rows.sum()), "films": int(len(np.unique(groups))),
                                  "figures": figures}
        ones = np.ones((1, len(y)))
        draws = Resampler(groups, n_boot)
        for a, b, question, asked_on in FILM_PAIRS:
            if a in preds and b in preds and subset in asked_on:
                observed = seed_averaged_f1(y, preds[a], ones)[0] - seed_averaged_f1(y, preds[b], ones)[0]
                (two_a, film_a), (two_b, film_b) = draws.macro_f1(a, y, preds[a]), draws.macro_f1(b, y, preds[b])
                out["tests"].append({"subset": subset, "a": a, "b": b, "question": question,
                                     **both_tests(observed, two_a - two_b, film_a - film_b)})
        if subset == "with_plot" and "image" in preds and "plot" in preds:
            observed = {m: np.mean([_genre_f1_weighted(ones, y, p)[0] for p in preds[m]], axis=0)
                        for m in ("image", "plot")}
            stats = {m: draws.stats(m, np.stack([_genre_f1_weighted(draws.w, y, p) for p in preds[m]]))
                     for m in ("image", "plot")}  # (two-level, film-only), each (n_boot, M)
            for j, g in enumerate(genres):
                out["genre_tests"].append({"genre": g, "a": "image", "b": "plot", **both_tests(
                    observed["image"][j] - observed["plot"][j], stats["image"][0][:, j] - stats["plot"][0][:, j],
                    stats["image"][1][:, j] - stats["plot"][1][:, j])})
    every = out["tests"] + out["genre_tests"]
    for t, adjusted in zip(every, holm([t["p_value"] for t in every])):
        t["p_holm"], t["family"] = adjusted, FILM_QUESTIONS
    return out


def films_markdown(films: dict[str, Any], labels: dict[str, str]) -> list[str]:
    """Table V, its tests and the per-genre poster-against-plot table, as report lines."""
    subsets = films["subsets"]
    head = "| method | " + " | ".join(f"{short} {s}" for s in subsets for _, short in FILMS_METRICS) + " |"
    named = {"all": "all test films", "with_plot": "films with a plot", "without_plot": "films without a plot"}
    lines = ["## Table V: a film's plot and metadata beside its poster", "",
             "; ".join(f"{named[s]}: {v['posters']} posters of {v['films']} films" for s, v in subsets.items())
             + ". "
             "Mean ± std over seeds, in %, each run's thresholds (validation only). A method that reads the plot "
             "sees a film without one as missing (a learned empty-plot vector or a masked token).", "",
             head, "|---|" + "---|" * (len(subsets) * len(FILMS_METRICS))]
    for m in films["methods"]:
        cells = [_cell(subsets[s]["figures"][m][k]["mean"], subsets[s]["figures"][m][k]["std"], k)
                 for s in subsets for k, _ in FILMS_METRICS]
        lines.append(f"| {md_cell(labels.get(m, m))} | " + " | ".join(cells) + " |")
    n = len(films["tests"]) + len(films["genre_tests"])
    if films["tests"]:
        lines += ["", "### The questions of Table V: paired bootstrap over test films and seeds", "",
                  f"Δ = a - b in seed-averaged macro F1 (points) with its {TWO_LEVEL}; p (two-level) and p (Holm) "
                  f"adjusted over the {n} tests of Table V (this family only), * = below 0.05.", "",
                  "| question | films | a | b | Δ F_m [95% CI] | films only | p | p (Holm) |",
                  "|---|---|---|---|---|---|---|---|"]
        for t in films["tests"]:
            a, b = md_cell(labels.get(t["a"], t["a"])), md_cell(labels.get(t["b"], t["b"]))
            lines.append(f"| {t['question']} | {t['subset']} | {a} | {b} | {100 * t['diff']:+.2f} {interval(t)} "
                         f"| {film_only_interval(t)} | {t['p_value']:.4f} "
                         f"| {t['p_holm']:.4f}{' *' if t['p_holm'] < 0.05 else ''} |")
    if films["genre_tests"]:
        lines += ["", "### Per genre: the poster image against the plot (films with a plot)", "",
                  "F1 per genre, seed-averaged; Δ = image - plot with its two-level interval (films and seeds); "
                  "p (Holm) in the same family as above. A positive Δ is a genre the poster knows better than the "
                  "synopsis.", "",
                  "| genre | F1 image | F1 plot | Δ [95% CI] | films only | p (Holm) |", "|---|---|---|---|---|---|"]
        fig = films["subsets"]["with_plot"]["figures"]
        for t in sorted(films["genre_tests"], key=lambda t: -t["diff"]):
            g = t["genre"]
            f1_image, f1_plot = fig["image"]["per_genre_f1"][g], fig["plot"]["per_genre_f1"][g]
            lines.append(f"| {g} | {100 * f1_image:.2f} | {100 * f1_plot:.2f} | {100 * t['diff']:+.2f} {interval(t)} "
                         f"| {film_only_interval(t)} | {t['p_holm']:.4f}{' *' if t['p_holm'] < 0.05 else ''} |")
    return lines + [""]


def _rules_summary(rules: list[dict]) -> dict[str, Any]:
    """Paper's rule vs product rule on test, mean over seeds; the product rules chosen, per seed."""
    keys = ("f1_macro", "f1_samples", "hamming_loss", "genres_per_poster")
    return {
        "chosen": [r["product"]["name"] for r in rules],
        "genres_per_poster_true": float(np.mean([r["genres_per_poster_true"] for r in rules])),
        **{rule: {k: float(np.mean([r[rule][k] for r in rules])) for k in keys} for rule in ("paper", "product")},
    }


def _branches(rs: list[dict]) -> dict[str, dict[str, float]] | None:
    """Validation figures of a multi-branch head's branches and blend (late fusion), mean over seeds."""
    if not all(r.get("branches") for r in rs):
        return None
    names = rs[0]["branches"].keys()
    return {n: {k: float(np.mean([r["branches"][n][k] for r in rs])) for k in rs[0]["branches"][n]} for n in names}


def comparisons_in(summary: dict, family: str) -> list[dict]:
    """``head``: the paper's head against every other method; ``baseline``: every method against the
    best baseline (chosen on validation). The head-vs-best-baseline test belongs to both."""
    if family == "head":
        return [t for t in summary["tests"] if t["a"] == summary["paper_head"]]
    return [t for t in summary["tests"] if t["b"] == summary["best_baseline"]]


def _cell(mean: float, std: float, key: str) -> str:
    if key == "hamming_loss":
        return f"{mean:.4f} ± {std:.4f}"
    return f"{100 * mean:.2f} ± {100 * std:.2f}"


def table(summary: dict, methods: list[str]) -> pl.DataFrame:
    rows = []
    for m in methods:
        if m not in summary["methods"]:
            continue
        s = summary["methods"][m]
        cells = {short: _cell(s["mean"][k], s["std"][k], k) for k, short in TABLE_METRICS}
        rows.append({"method": s["label"], **cells})
    return _frame(rows)


def genre_table(summary: dict) -> pl.DataFrame:
    """Per-genre results of the best method, best balanced accuracy first (ties in genre order, NaN last)."""
    best = summary["methods"][summary["best"]]
    rows = [{"genre": g, **{k: round(100 * v, 2) for k, v in best["per_genre"][g].items()}} for g in summary["genres"]]
    rows.sort(key=lambda r: (math.isnan(r["balanced_accuracy"]), -r["balanced_accuracy"]))  # stable
    return _frame(rows)


def per_genre_f1_long(summary: dict) -> pl.DataFrame:
    return _frame([
        {"genre": g, "method": m, "f1": round(s["per_genre"][g]["f1"], 6)}
        for m, s in summary["methods"].items() for g in summary["genres"]
    ])


def micro_pr_curves(runs: dict[str, list[dict]], genres: list[str], points: int = 51) -> pl.DataFrame:
    """Micro-averaged precision (interpolated) at ``points`` recall levels per method (seed 0's run)."""
    grid = np.linspace(0, 1, points)
    columns = [pl.Series("recall", np.round(grid, 4))]
    for method, rs in runs.items():
        y, s = _arrays(rs[0]["test"], genres)
        columns.append(pl.Series(method, interpolated_precision(y.ravel(), s.ravel(), grid), pl.Float64))
    return pl.DataFrame(columns)


def md_cell(value: Any) -> str:
    """A markdown table cell: a '|' in it (the label "concat (image || text)") would split the cell."""
    return str(value).replace("|", "\\|")


def markdown(summary: dict) -> str:
    def md(df: pl.DataFrame) -> str:
        cols = list(df.columns)
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(md_cell(v) for v in row) + " |" for row in df.iter_rows()]
        return "\n".join(lines)

    n_seeds = max((s["seeds"] for s in summary["methods"].values()), default=0)
    parts = [
        "# Comparison report",
        "",
        f"Test split: {summary['test_posters']} posters of {summary['test_films']} films. Every cell is the mean ± "
        f"std over {n_seeds} seed(s), in % (hamming loss as a fraction). Decision thresholds: "
        + (f"{summary['threshold']} for every genre." if summary["threshold_mode"] == "global"
           else "per genre, tuned on each run's validation scores (never on test)."),
        "",
        "## Table I: bi-modal methods", "", md(table(summary, TABLES["I"])), "",
        "## Table II: modalities", "", md(table(summary, TABLES["II"])), "",
        "## Table III: module ablations of the paper's head", "", md(table(summary, TABLES["III"])), "",
        TABLE_NOTES["III"], "",
        f"## Table IV: per-genre results of the best method ({summary['methods'][summary['best']]['label']})", "",
        md(genre_table(summary)), "",
        "## Hit ratio and training cost per method", "",
    ]
    rows = []
    for m in summary["ranking"]:
        s = summary["methods"][m]
        t = "-" if s["train_seconds"] is None else f"{s['train_seconds']:.1f}"
        rows.append({"method": s["label"], "Hit": _cell(s["mean"]["hit"], s["std"]["hit"], "hit"),
                     "train s (mean per seed)": t, "epochs": f"{s['epochs']:.1f}"})
    parts += [md(_frame(rows)), ""]
    parts += _tests_markdown(summary, md)
    parts += _all_pairs_markdown(summary, md)
    if summary.get("films"):
        parts += films_markdown(summary["films"], {m: s["label"] for m, s in summary["methods"].items()})
    parts += _rules_markdown(summary, md)
    parts += _branches_markdown(summary, md)
    return "\n".join(parts)


def _tests_markdown(summary: dict, md) -> list[str]:
    label = lambda m: summary["methods"][m]["label"]  # noqa: E731
    n = len(summary["tests"])
    if not n:
        return []

    def rows(tests, other):
        return [{"method": label(other(t)), "Δ F_m": f"{100 * t['diff']:+.2f}",
                 "95% CI": interval(t), "films only": film_only_interval(t), "p": f"{t['p_value']:.4f}",
                 "p (Holm)": f"{t['p_holm']:.4f}", "significant": "yes" if t["p_holm"] < 0.05 else "no"}
                for t in sorted(tests, key=lambda t: -t["diff"])]

    parts = [
        "## Paired bootstrap over test films and seeds",
        "",
        f"Difference in seed-averaged test macro F1 (in points) with its {TWO_LEVEL}; two-sided p from the same "
        f"draws. Family **{QUESTIONS}**: **p (Holm)** is adjusted over its {n} tests together (listed under the "
        f"question each answers: the paper's head against each method, every method against the best baseline; "
        f"the head-against-best-baseline test is in both); a difference is called significant only when p (Holm) "
        f"< 0.05.",
        "",
    ]
    head = comparisons_in(summary, "head")
    if head:
        parts += [f"### The paper's head ({label(summary['paper_head'])}) against each ablation and baseline", "",
                  "Δ = paper's head - method.", "", md(_frame(rows(head, lambda t: t["b"]))), ""]
    bb = summary["best_baseline"]
    if bb:
        parts += [f"### Every method against the best baseline, {label(bb)}", "",
                  f"The best baseline is the one with the best *validation* macro F1 "
                  f"({100 * summary['methods'][bb]['val_f1_macro']:.2f}), never chosen on test. "
                  f"Δ = method - {label(bb)}.", "",
                  md(_frame(rows(comparisons_in(summary, "baseline"), lambda t: t["a"]))), ""]
    return parts


def _all_pairs_markdown(summary: dict, md) -> list[str]:
    tests = summary.get("all_pairs") or []
    if not tests:
        return []
    label = lambda m: summary["methods"][m]["label"]  # noqa: E731
    rows = [{"a": label(t["a"]), "b": label(t["b"]), "Δ F_m": f"{100 * t['diff']:+.2f}", "95% CI": interval(t),
             "films only": film_only_interval(t), "p": f"{t['p_value']:.4f}", "p (Holm)": f"{t['p_holm']:.4f}",
             "significant": "yes" if t["p_holm"] < 0.05 else "no"}
            for t in sorted(tests, key=lambda t: (t["p_holm"], -t["diff"]))]
    n = len(tests)
    return ["## Every pair of poster-only methods", "",
            f"Family **{ALL_PAIRS}**: all {n} pairs of the poster-only methods, Δ = a - b (a ahead on test), the "
            f"same draws and intervals as above; p (Holm) is adjusted over these {n} tests alone, so a claim about "
            f"any two methods cites its row here. With {n} tests the smallest p (Holm) a bootstrap of "
            f"{summary.get('n_boot', 0):,} draws can give is {min(1.0, n * 2 / (summary.get('n_boot', 0) + 1)):.4f}. "
            f"Sorted by p (Holm).", "", md(_frame(rows)), ""]


def _branches_markdown(summary: dict, md) -> list[str]:
    rows = []
    for s in summary["methods"].values():
        if s.get("branches"):
            for name, fig in s["branches"].items():
                rows.append({"method": s["label"], "output": name,
                             **{k: f"{100 * v:.2f}" for k, v in fig.items()}})
    if not rows:
        return []
    return ["## Multi-branch heads: each branch and the blend on the validation split", "",
            "Mean over seeds; F_m at threshold 0.5, AP_m threshold-free. A blend should be at least as good as "
            "its better branch.", "", md(_frame(rows)), ""]


def _rules_markdown(summary: dict, md) -> list[str]:
    rows = []
    for m in summary["ranking"]:
        s = summary["methods"][m]
        r = s.get("decision_rules")
        if not r:
            continue
        chosen = sorted(set(r["chosen"]), key=r["chosen"].index)
        pair = lambda k, r=r: f"{100 * r['paper'][k]:.2f} / {100 * r['product'][k]:.2f}"  # noqa: E731
        rows.append({"method": s["label"], "product rule (per seed)": ", ".join(chosen),
                     "genres/poster: paper / product / true": f"{r['paper']['genres_per_poster']:.2f} / "
                     f"{r['product']['genres_per_poster']:.2f} / {r['genres_per_poster_true']:.2f}",
                     "F_m paper / product": pair("f1_macro"), "F_s paper / product": pair("f1_samples"),
                     "HL paper / product": f"{r['paper']['hamming_loss']:.4f} / {r['product']['hamming_loss']:.4f}"})
    if not rows:
        return []
    return ["## Decision rules on test: the paper's and the product's", "",
            "The paper's rule is `eval.threshold` for every genre. The product rule is what `poster-genres predict` "
            "uses: chosen per run on its validation scores among the paper's rule, per-genre thresholds and those "
            "thresholds with a cap of 1-5 genres per poster (by `eval.rule_metric`) on its scores calibrated as "
            "`eval.calibration` says (fitted on validation), then applied to test. "
            "Mean over seeds.", "", md(_frame(rows)), ""]
