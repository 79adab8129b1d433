"""The comparison: every method x several seeds on the cached features, summarised per method (mean and std
over seeds, in the shape of the paper's Tables I-IV and Table V) with the paired tests the reports read.

:func:`load_runs` reads the saved runs, :func:`summarise` (poster-only methods), :func:`films_summary`
(Table V) and :func:`compare_two` (two comparisons' runs, method by method) make the summaries; the
statistics are :mod:`pipeline.evaluation.statistics`', the Markdown :mod:`pipeline.evaluation.markdown`'s.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import polars as pl

from pipeline.core.errors import PipelineError
from pipeline.core.io import read_parquet
from pipeline.evaluation.evaluate import decision_thresholds
from pipeline.evaluation.methods import (
    BASELINES,
    FILM_PAIRS,
    FILMS_TABLE,
    METHODS,
    PAPER_HEAD,
    TABLES,
    method_label,
    reads_films,
)
from pipeline.evaluation.statistics import (
    Estimate,
    Resampler,
    difference,
    genre_f1_weighted,
    paired_bootstrap,
    seed_std,
    settle_borderline,
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


def rows_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """A table from rows of dicts (the columns of the first row, in order; every row is read for types)."""
    return pl.DataFrame(rows, infer_schema_length=None)


#: The two Holm families of the poster-only comparison: the paper's questions (its head against each method,
#: each method against the best baseline) and every pair of poster-only methods.
QUESTIONS, ALL_PAIRS = "the paper's questions", "all pairs"
#: Table V's family (film methods only) and compare-two's (one per call).
FILM_QUESTIONS, TWO_COMPARISONS = "Table V's questions", "compare-two"


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


def with_blends(runs: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """``runs`` and every registered blend (:class:`pipeline.evaluation.methods.Method`'s ``blend``) whose members
    all ran: per seed, the mean of the members' sigmoid probabilities (validation and test), each member trained
    and early-stopped on its own; its training time and epochs are the members' together."""
    out = dict(runs)
    for name in METHODS:
        members = METHODS.get(name).blend
        if not members or name in runs or not all(m in runs for m in members):
            continue
        seeds = [r["seed"] for r in runs[members[0]]]
        if any([r["seed"] for r in runs[m]] != seeds for m in members):
            raise PipelineError(f"{name}: its members {', '.join(members)} ran with different seeds")
        out[name] = []
        for parts in zip(*(runs[m] for m in members)):
            blended = {"method": name, "seed": parts[0]["seed"], "epochs_run": sum(p["epochs_run"] for p in parts),
                       "seconds": (sum(p["seconds"] for p in parts)
                                   if all(p["seconds"] is not None for p in parts) else None)}
            for split in ("val", "test"):
                frames = [p[split] for p in parts]
                if any(not f["key"].equals(frames[0]["key"]) for f in frames):
                    raise PipelineError(f"{name}: its members' {split} posters differ (seed {blended['seed']})")
                score_columns = [c for c in frames[0].columns if c.startswith("s_")]
                blended[split] = frames[0].with_columns(
                    (sum(f[c].cast(pl.Float64) for f in frames) / len(frames)).cast(pl.Float32).alias(c)
                    for c in score_columns)
            out[name].append(blended)
    return out


def summarise(runs: dict[str, list[dict]], genres: list[str], n_boot: int = 2000,
              threshold_mode: str = "global", threshold: float = 0.5,
              rule_metric: str = "f1_samples", calibration: str = "none", seed: int = 0) -> dict[str, Any]:
    """Metrics per method (mean, sample std over seeds), per-genre results, bootstrap tests.

    Decision thresholds are set here, per run, from that run's validation scores
    (``threshold_mode: per_genre``) or as ``threshold`` everywhere: they are post-hoc, so
    changing them re-runs the report only, never the training.

    Tests (paired over test films and seeds, seed-level corrected, of seed-averaged test macro F1, all on the same
    film draws; :func:`pipeline.evaluation.statistics.difference`), in two
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
            "std": {k: seed_std([m[k] for m in metrics]) for k in keys},
            "val_f1_macro": float(np.mean(val_f1)),
            "per_genre": {g: {k: float(np.mean([m["per_genre"][g][k] for m in metrics]))
                              for k in ("balanced_accuracy", "f1", "precision", "recall", "specificity")}
                          for g in genres},
            "train_seconds": (float(np.mean([r["seconds"] for r in rs]))
                              if all(r["seconds"] is not None for r in rs) else None),
            "epochs": float(np.mean([r["epochs_run"] for r in rs])),
            **({"epochs_runs": [int(r["epochs_run"]) for r in rs], "best_epochs": [int(r["best_epoch"]) for r in rs]}
               if all("best_epoch" in r for r in rs) else {}),
            **({"val_loss": [r["val_loss"] for r in rs]} if all("val_loss" in r for r in rs) else {}),
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
        draws = Resampler(groups, n_boot, seed)
        needed = sorted({m for pair in pairs + all_pairs for m in pair})
        stats = {m: draws.macro_f1(m, y_ref, preds[m]) for m in needed}
        n_films = len(np.unique(groups))

        def retest(t: dict[str, Any], draws: int, draw_seed: int) -> dict[str, Any]:
            return paired_bootstrap(y_ref, preds[t["a"]], preds[t["b"]], groups, draws, draw_seed)

        def family(name: str, members: list[tuple[str, str]]) -> list[dict[str, Any]]:
            out = [{"a": a, "b": b, "family": name, **difference([(1, stats[a]), (-1, stats[b])], n_films)}
                   for a, b in members]
            return settle_borderline(out, retest, n_boot, seed)

        tests, every_pair = family(QUESTIONS, pairs), family(ALL_PAIRS, all_pairs)
    return {"methods": per_method, "ranking": ranked, "best": ranked[0] if ranked else None,
            "threshold_mode": threshold_mode, "threshold": threshold, "paper_head": PAPER_HEAD,
            "best_baseline": best_baseline, "tests": tests, "all_pairs": every_pair, "genres": genres,
            "test_posters": int(len(y_ref)) if y_ref is not None else 0,
            "test_films": int(len(np.unique(groups))) if groups is not None else 0, "n_boot": n_boot,
            "bootstrap_seed": seed}


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


class Decided(NamedTuple):
    """One run's test labels and scores, validation labels and scores, and the paper's-rule thresholds set from
    validation only (``eval.threshold_mode``)."""

    y: np.ndarray
    scores: np.ndarray
    y_val: np.ndarray
    scores_val: np.ndarray
    thresholds: np.ndarray


def _decided(run: dict, genres: list[str], threshold_mode: str, threshold: float) -> Decided:
    y, s = _arrays(run["test"], genres)
    y_val, s_val = _arrays(run["val"], genres)
    return Decided(y, s, y_val, s_val, decision_thresholds(threshold_mode, threshold, y_val, s_val))


def _split_predictions(rs: list[dict], genres: list[str], threshold_mode: str, threshold: float,
                       split: str = "test"):
    """One split's labels, film ids, poster keys and each seed's 0/1 predictions of one method."""
    preds = []
    for r in rs:
        d = _decided(r, genres, threshold_mode, threshold)
        y, s = (d.y, d.scores) if split == "test" else (d.y_val, d.scores_val)
        preds.append((s > d.thresholds).astype(np.int64))
    return y, rs[0][split]["imdb_id"].to_numpy(), rs[0][split]["key"].to_numpy(), preds


def compare_two(runs_a: dict[str, list[dict]], runs_b: dict[str, list[dict]], genres: list[str],
                labels: tuple[str, str] = ("A", "B"), reference: str = "image", n_boot: int = 2000,
                threshold_mode: str = "global", threshold: float = 0.5,
                methods: list[str] | None = None, seed: int = 0, split: str = "test") -> dict[str, Any]:
    """Two comparisons that differ in one upstream choice (e.g. the OCR engine), method by method.

    ``split`` is the split judged: ``test``, or ``val`` to choose between the two settings without reading
    test (then at the global threshold only: per-genre thresholds are tuned on validation, and judging them
    there would flatter every run).

    For every method in both (and with the same seeds): the difference in seed-averaged test macro
    F1, A - B; and for every method but ``reference`` (image only: the text's contribution), its gain
    over ``reference`` within A, within B, and the difference of those gains. All are paired tests over
    films and seeds on the *same* film draws (both comparisons must have the same posters), and every
    p-value is Holm-adjusted over all the tests made here together, so ``methods`` (default: every
    method in both) should name only the ones the question needs.
    """
    if split not in ("test", "val"):
        raise PipelineError(f"split {split!r}: test or val")
    if split == "val" and threshold_mode != "global":
        raise PipelineError("split val needs threshold_mode global: per-genre thresholds are tuned on validation")
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
    pred = {side: {m: _split_predictions(runs[m], genres, threshold_mode, threshold, split) for m in common}
            for side, runs in (("a", runs_a), ("b", runs_b))}
    y, groups, keys, _ = pred["a"][common[0]]
    for side in ("a", "b"):
        for m in common:
            if not (np.array_equal(pred[side][m][2], keys) and np.array_equal(pred[side][m][0], y)):
                raise PipelineError(f"method {m}: the {split} posters differ between {labels[0]} and {labels[1]}; "
                                    "the two comparisons must share posters and split")
    n_films = len(np.unique(groups))
    # each side's runs of a method are their own seeds; a test is a +1/-1 combination of (side, method) terms
    signs = (1, -1, -1, 1)

    def terms_of(kind: str, m: str) -> list[tuple[str, str]]:
        return {"method": [("a", m), ("b", m)], "gain_a": [("a", m), ("a", reference)],
                "gain_b": [("b", m), ("b", reference)],
                "gain_diff": [("a", m), ("a", reference), ("b", m), ("b", reference)]}[kind]

    def estimates(draws: Resampler, keys) -> dict[tuple[str, str], Estimate]:
        return {(side, m): draws.macro_f1(f"{side}:{m}", y, pred[side][m][3]) for side, m in keys}

    def test(kind: str, m: str, stats: dict[tuple[str, str], Estimate]) -> dict[str, Any]:
        return difference([(c, stats[k]) for c, k in zip(signs, terms_of(kind, m))], n_films)

    stats = estimates(Resampler(groups, n_boot, seed), [(side, m) for side in ("a", "b") for m in common])
    kinds = [("method", m) for m in common]
    if reference in common:
        kinds += [(kind, m) for m in common if m != reference for kind in ("gain_a", "gain_b", "gain_diff")]
    tests = [{"kind": kind, "method": m, **test(kind, m, stats)} for kind, m in kinds]

    def retest(t: dict[str, Any], draws: int, draw_seed: int) -> dict[str, Any]:
        again = estimates(Resampler(groups, draws, draw_seed), terms_of(t["kind"], t["method"]))
        return test(t["kind"], t["method"], again)

    for t in settle_borderline(tests, retest, n_boot, seed):
        t["family"] = TWO_COMPARISONS
    return {"labels": list(labels), "reference": reference, "methods": common, "threshold_mode": threshold_mode,
            "threshold": threshold, "split": split, "posters": int(len(y)), "films": int(len(np.unique(groups))),
            "f1_macro": {side: {m: float(stats[(side, m)].seeds.mean()) for m in common} for side in ("a", "b")},
            "tests": tests}


#: Table V's figures per subset of test films.
FILMS_METRICS = [("f1_macro", "F_m"), ("hit", "Hit"), ("average_precision_macro", "AP_m")]


def films_summary(runs: dict[str, list[dict]], genres: list[str], n_boot: int = 2000,
                  threshold_mode: str = "global", threshold: float = 0.5, seed: int = 0) -> dict[str, Any] | None:
    """Table V: the film methods on all test films, on those that have a plot and on those that have none.

    For each subset: F_m, Hit and AP_m (mean, std over seeds); the pairs of :data:`FILM_PAIRS` (each a
    question: what the poster adds over the plot, ...) as paired tests (films and seeds) of seed-averaged
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
    pair_inputs: dict[str, tuple] = {}  # subset -> (labels, films, predictions per method): what a re-draw reads
    subsets = (("all", np.ones(len(has_plot), dtype=bool)), ("with_plot", has_plot), ("without_plot", ~has_plot))
    for subset, rows in subsets:
        if not rows.any():
            continue
        y = decided[methods[0]][0].y[rows]
        groups = groups_all[rows]
        figures = {}
        preds = {}
        for m in methods:
            ms = [all_metrics(d.y[rows], d.scores[rows], d.thresholds, genres) for d in decided[m]]
            figures[m] = {k: {"mean": float(np.mean([x[k] for x in ms])), "std": seed_std([x[k] for x in ms])}
                          for k, _ in FILMS_METRICS}
            figures[m]["per_genre_f1"] = {g: float(np.mean([x["per_genre"][g]["f1"] for x in ms])) for g in genres}
            preds[m] = [(d.scores[rows] > d.thresholds).astype(np.int64) for d in decided[m]]
        out["subsets"][subset] = {"posters": int(rows.sum()), "films": int(len(np.unique(groups))),
                                  "figures": figures}
        ones = np.ones((1, len(y)))
        draws = Resampler(groups, n_boot, seed)
        n_films = len(np.unique(groups))
        pair_inputs[subset] = (y, groups, preds)
        for a, b, question, asked_on in FILM_PAIRS:
            if a in preds and b in preds and subset in asked_on:
                out["tests"].append({"subset": subset, "a": a, "b": b, "question": question,
                                     **difference([(1, draws.macro_f1(a, y, preds[a])),
                                                   (-1, draws.macro_f1(b, y, preds[b]))], n_films)})
        if subset == "with_plot" and "image" in preds and "plot" in preds:
            # each genre's F1: per draw (n_boot, M) and on the whole subset (M) per run
            stats = {m: draws.stats(m, np.stack([genre_f1_weighted(draws.w, y, p) for p in preds[m]]),
                                    np.stack([genre_f1_weighted(ones, y, p)[0] for p in preds[m]]))
                     for m in ("image", "plot")}
            for j, g in enumerate(genres):
                genre = {m: Estimate(*(part[..., j] for part in stats[m])) for m in ("image", "plot")}
                out["genre_tests"].append({"genre": g, "a": "image", "b": "plot",
                                           **difference([(1, genre["image"]), (-1, genre["plot"])], n_films)})
    def retest(t: dict[str, Any], draws: int, draw_seed: int) -> dict[str, Any] | None:
        if "genre" in t:  # a per-genre test: kept as drawn
            return None
        y, groups, preds = pair_inputs[t["subset"]]
        return paired_bootstrap(y, preds[t["a"]], preds[t["b"]], groups, draws, draw_seed)

    every = settle_borderline(out["tests"] + out["genre_tests"], retest, n_boot, seed)
    out["tests"], out["genre_tests"] = every[:len(out["tests"])], every[len(out["tests"]):]
    for t in every:
        t["family"] = FILM_QUESTIONS
    return out


def _rules_summary(rules: list[dict]) -> dict[str, Any]:
    """Paper's rule vs product rule on test, mean over seeds; the product rules chosen, per seed."""
    keys = ("f1_macro", "f1_samples", "hamming_loss", "genres_per_poster")
    return {
        "chosen": [r["product"]["name"] for r in rules],
        "genres_per_poster_true": float(np.mean([r["genres_per_poster_true"] for r in rules])),
        **{rule: {**{k: float(np.mean([r[rule][k] for r in rules])) for k in keys},
                  # the seed spread of each rule's macro F1: a bar set "within a method's seed spread" reads it
                  "f1_macro_std": seed_std([r[rule]["f1_macro"] for r in rules])} for rule in ("paper", "product")},
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


def per_genre_f1_long(summary: dict) -> pl.DataFrame:
    return rows_frame([
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


