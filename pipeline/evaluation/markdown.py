"""The reports' Markdown: one table renderer (:func:`md_table`, cells escaped by :func:`md_cell`) and the
comparison's report, Table V's section and compare-two's, rendered from their summaries
(:mod:`pipeline.evaluation.compare`) alone, so a report can be re-made from its committed ``summary.json``."""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from pipeline.evaluation.compare import (
    ALL_PAIRS,
    FILMS_METRICS,
    QUESTIONS,
    TABLE_METRICS,
    comparisons_in,
    rows_frame,
)
from pipeline.evaluation.methods import (
    TABLE_NOTES,
    TABLES,
    method_label,
)
from pipeline.models.early_stopping import replay_table


def interval(t: dict[str, Any]) -> str:
    """``[low, high]`` in points."""
    return f"[{100 * t['ci_low']:+.2f}, {100 * t['ci_high']:+.2f}]"


def film_only_interval(t: dict[str, Any]) -> str:
    """The film-only interval of a test (seeds fixed), or '-' for a test made before it was kept."""
    return interval(t["film_only"]) if "film_only" in t else "-"


#: How the report says what its intervals cover.
TWO_LEVEL = ("95% percentile interval of a two-level bootstrap: each draw resamples the test films (the same draw "
             "for every method, so tests are paired) and each method's seeds, so the interval covers test sampling "
             "and training noise; the film-only interval (seeds fixed) beside it shows how much of the width "
             "training noise adds")
SEED_LEVEL = ("95% interval of a paired test over films and seeds: the variance of a difference is its film part "
              "(a bootstrap of the split's films, the same draws for every method, so tests are paired) plus each "
              "method's seed part (the unbiased variance of its runs' figures, over the number of seeds), referred to "
              "Student's t with Welch-Satterthwaite degrees of freedom, so the interval covers the sampling of films "
              "and training noise even with few seeds; the film-only interval (seeds fixed) beside it shows how much "
              "of the width training noise adds")


def seed_level(tests: list[dict[str, Any]]) -> bool:
    """Whether a report's tests are seed-level t tests (reports made before them have no ``df``)."""
    return any("df" in t for t in tests)


def interval_words(tests: list[dict[str, Any]]) -> str:
    """How a report says what its intervals cover: the seed-level t interval, or, for a report made before it,
    the two-level bootstrap's percentile interval."""
    return SEED_LEVEL if seed_level(tests) else TWO_LEVEL


def compare_two_markdown(result: dict) -> str:
    """The two-comparison report: per method A vs B, and the reference gain within each and its change."""
    a, b = result["labels"]
    label = method_label
    ci = lambda t: f"{100 * t['diff']:+.2f} [{100 * t['ci_low']:+.2f}, {100 * t['ci_high']:+.2f}]"  # noqa: E731
    sig = lambda t: f"{t['p_holm']:.4f}" + (" *" if t["p_holm"] < 0.05 else "")  # noqa: E731
    by = {(t["kind"], t["method"]): t for t in result["tests"]}
    # reports written before ``split`` judged test and named their counts test_posters / test_films
    split = result.get("split", "test")
    posters, films = (result.get(k, result.get(f"test_{k}")) for k in ("posters", "films"))
    rule = (f"threshold {result['threshold']} for every genre" if result["threshold_mode"] == "global"
            else "per-genre thresholds tuned on each run's validation scores")
    lines = [f"# {a} against {b}", "",
             f"{'Validation' if split == 'val' else 'Test'} split: {posters} posters of {films} films; "
             f"seed-averaged macro F1 in points, {rule}. Δ with its {interval_words(result['tests'])}; "
             f"p (Holm) is adjusted over all {len(result['tests'])} tests here, * = below 0.05.", ""]
    if result.get("min_p_holm", 0.0) >= 0.05:  # reports of a bootstrap p: its resolution limit
        lines += [f"**No test here can reach p (Holm) < 0.05**: with these bootstrap draws the smallest adjusted p is "
                  f"{result['min_p_holm']:.3f}. Raise compare.bootstrap or compare fewer methods.", ""]
    lines += [f"## Each method: {a} - {b}", ""]
    lines += md_table(["method", f"F_m {a}", f"F_m {b}", "Δ [95% CI]", "films only", "p", "p (Holm)"], [
        [label(m), f"{100 * result['f1_macro']['a'][m]:.2f}", f"{100 * result['f1_macro']['b'][m]:.2f}",
         ci(by[("method", m)]), film_only_interval(by[("method", m)]), p_cell(by[("method", m)]),
         sig(by[("method", m)])] for m in result["methods"]])
    ref = result["reference"]
    gains = [m for m in result["methods"] if ("gain_diff", m) in by]
    if gains:
        lines += ["", f"## Gain over {md_cell(label(ref))}, within each", ""]
        rows = []
        for m in gains:
            ga, gb, gd = by[("gain_a", m)], by[("gain_b", m)], by[("gain_diff", m)]
            rows.append([label(m), f"{ci(ga)}, {sig(ga)}", f"{ci(gb)}, {sig(gb)}", ci(gd), film_only_interval(gd),
                         p_cell(gd), sig(gd)])
        lines += md_table(["method", f"gain with {a} [95% CI], p (Holm)", f"gain with {b} [95% CI], p (Holm)",
                           "change of gain [95% CI]", "films only", "p", "p (Holm)"], rows)
    return "\n".join(lines) + "\n"


def films_markdown(films: dict[str, Any], labels: dict[str, str]) -> list[str]:
    """Table V, its tests and the per-genre poster-against-plot table, as report lines."""
    subsets = films["subsets"]
    named = {"all": "all test films", "with_plot": "films with a plot", "without_plot": "films without a plot"}
    lines = ["## Table V: a film's plot and metadata beside its poster", "",
             "; ".join(f"{named[s]}: {v['posters']} posters of {v['films']} films" for s, v in subsets.items())
             + ". "
             "Mean ± std over seeds, in %, each run's thresholds (validation only). A method that reads the plot "
             "sees a film without one as missing (a learned empty-plot vector or a masked token).", ""]
    lines += md_table(["method", *(f"{short} {s}" for s in subsets for _, short in FILMS_METRICS)], [
        [labels.get(m, m), *(_cell(subsets[s]["figures"][m][k]["mean"], subsets[s]["figures"][m][k]["std"], k)
                             for s in subsets for k, _ in FILMS_METRICS)] for m in films["methods"]])
    n = len(films["tests"]) + len(films["genre_tests"])
    if films["tests"]:
        lines += ["", "### The questions of Table V: paired bootstrap over test films and seeds", "",
                  f"Δ = a - b in seed-averaged macro F1 (points) with its {interval_words(films['tests'])}; "
                  f"p{'' if seed_level(films['tests']) else ' (two-level)'} and p (Holm) "
                  f"adjusted over the {n} tests of Table V (this family only), * = below 0.05.", ""]
        lines += md_table(["question", "films", "a", "b", "Δ F_m [95% CI]", "films only", "p", "p (Holm)"], [
            [t["question"], t["subset"], labels.get(t["a"], t["a"]), labels.get(t["b"], t["b"]),
             f"{100 * t['diff']:+.2f} {interval(t)}", film_only_interval(t), p_cell(t), _holm(t)]
            for t in films["tests"]])
    if films["genre_tests"]:
        lines += ["", "### Per genre: the poster image against the plot (films with a plot)", "",
                  f"F1 per genre, seed-averaged; Δ = image - plot with its "
                  f"{'seed-level' if seed_level(films['genre_tests']) else 'two-level'} interval (films and seeds); "
                  "p (Holm) in the same family as above. A positive Δ is a genre the poster knows better than the "
                  "synopsis.", ""]
        fig = films["subsets"]["with_plot"]["figures"]
        lines += md_table(["genre", "F1 image", "F1 plot", "Δ [95% CI]", "films only", "p (Holm)"], [
            [t["genre"], f"{100 * fig['image']['per_genre_f1'][t['genre']]:.2f}",
             f"{100 * fig['plot']['per_genre_f1'][t['genre']]:.2f}", f"{100 * t['diff']:+.2f} {interval(t)}",
             film_only_interval(t), _holm(t)] for t in sorted(films["genre_tests"], key=lambda t: -t["diff"])])
    return lines + [""]


def p_cell(t: dict[str, Any]) -> str:
    """A test's p, with its Monte Carlo error where the report kept it (older reports did not), and the draws
    that settled it where it was re-drawn near a threshold."""
    redrawn = f" (re-drawn: {t['n_boot']} draws, seed {t['bootstrap_seed']})" if t.get("rechecked") else ""
    return f"{t['p_value']:.4f}" + (f" ± {t['p_mc_error']:.4f}" if "p_mc_error" in t else "") + redrawn


def _holm(t: dict[str, Any]) -> str:
    """A test's Holm-adjusted p, starred below 0.05."""
    return f"{t['p_holm']:.4f}{' *' if t['p_holm'] < 0.05 else ''}"


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
    return rows_frame(rows)


def genre_table(summary: dict) -> pl.DataFrame:
    """Per-genre results of the best method, best balanced accuracy first (ties in genre order, NaN last)."""
    best = summary["methods"][summary["best"]]
    rows = [{"genre": g, **{k: round(100 * v, 2) for k, v in best["per_genre"][g].items()}} for g in summary["genres"]]
    rows.sort(key=lambda r: (math.isnan(r["balanced_accuracy"]), -r["balanced_accuracy"]))  # stable
    return rows_frame(rows)


def md_cell(value: Any) -> str:
    """A markdown table cell: a '|' in it (the label "concat (image || text)") would split the cell."""
    return str(value).replace("|", "\\|")


def md_table(header: list[Any], rows: list[list[Any]]) -> list[str]:
    """A Markdown table's lines: the header, the rule and one line per row, every cell through :func:`md_cell`
    (an empty cell is a single space)."""
    def line(cells: list[Any]) -> str:
        return "|" + "".join(f" {md_cell(c)} |" if str(c) else " |" for c in cells)

    return [line(header), "|" + "---|" * len(header), *(line(row) for row in rows)]


def markdown(summary: dict) -> str:
    def md(df: pl.DataFrame) -> str:
        return "\n".join(md_table(list(df.columns), [list(row) for row in df.iter_rows()]))

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
        row = {"method": s["label"], "Hit": _cell(s["mean"]["hit"], s["std"]["hit"], "hit"),
               "train s (mean per seed)": t, "epochs": f"{s['epochs']:.1f}"}
        if "best_epochs" in s:  # reports made before runs kept them show the mean only
            row["epochs run (best), per seed"] = ", ".join(f"{e} ({b})" for e, b in zip(s["epochs_runs"],
                                                                                     s["best_epochs"]))
        rows.append(row)
    parts += [md(rows_frame(rows)), ""]
    parts += early_stopping_markdown(summary)
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
                 "95% CI": interval(t), "films only": film_only_interval(t), "p": p_cell(t),
                 "p (Holm)": f"{t['p_holm']:.4f}", "significant": "yes" if t["p_holm"] < 0.05 else "no"}
                for t in sorted(tests, key=lambda t: -t["diff"])]

    parts = [
        "## Paired bootstrap over test films and seeds",
        "",
        f"Difference in seed-averaged test macro F1 (in points) with its {interval_words(summary['tests'])}; "
        f"two-sided p from the same {'t' if seed_level(summary['tests']) else 'draws'}. Family **{QUESTIONS}**: "
        f"**p (Holm)** is adjusted over its {n} tests together (listed under the "
        f"question each answers: the paper's head against each method, every method against the best baseline; "
        f"the head-against-best-baseline test is in both); a difference is called significant only when p (Holm) "
        f"< 0.05.",
        "",
    ]
    head = comparisons_in(summary, "head")
    if head:
        parts += [f"### The paper's head ({label(summary['paper_head'])}) against each ablation and baseline", "",
                  "Δ = paper's head - method.", "", md(rows_frame(rows(head, lambda t: t["b"]))), ""]
    bb = summary["best_baseline"]
    if bb:
        parts += [f"### Every method against the best baseline, {label(bb)}", "",
                  f"The best baseline is the one with the best *validation* macro F1 "
                  f"({100 * summary['methods'][bb]['val_f1_macro']:.2f}), never chosen on test. "
                  f"Δ = method - {label(bb)}.", "",
                  md(rows_frame(rows(comparisons_in(summary, "baseline"), lambda t: t["a"]))), ""]
    return parts


def _all_pairs_markdown(summary: dict, md) -> list[str]:
    tests = summary.get("all_pairs") or []
    if not tests:
        return []
    label = lambda m: summary["methods"][m]["label"]  # noqa: E731
    rows = [{"a": label(t["a"]), "b": label(t["b"]), "Δ F_m": f"{100 * t['diff']:+.2f}", "95% CI": interval(t),
             "films only": film_only_interval(t), "p": p_cell(t), "p (Holm)": f"{t['p_holm']:.4f}",
             "significant": "yes" if t["p_holm"] < 0.05 else "no"}
            for t in sorted(tests, key=lambda t: (t["p_holm"], -t["diff"]))]
    n = len(tests)
    # a percentile bootstrap's p is counted from its draws, so it has a floor; the seed-level test's p is t's
    floor = "" if seed_level(tests) else (
        f"With {n} tests the smallest p (Holm) a bootstrap of {summary.get('n_boot', 0):,} draws can give is "
        f"{min(1.0, n * 2 / (summary.get('n_boot', 0) + 1)):.4f}. ")
    return ["## Every pair of poster-only methods", "",
            f"Family **{ALL_PAIRS}**: all {n} pairs of the poster-only methods, Δ = a - b (a ahead on test), the "
            f"same draws and intervals as above; p (Holm) is adjusted over these {n} tests alone, so a claim about "
            f"any two methods cites its row here. {floor}Sorted by p (Holm).", "", md(rows_frame(rows)), ""]


def _branches_markdown(summary: dict, md) -> list[str]:
    rows = []
    # in method-name order: summary.json is written with sorted keys, so the report renders the same from it
    for s in (summary["methods"][m] for m in sorted(summary["methods"])):
        if s.get("branches"):
            for name, fig in s["branches"].items():
                rows.append({"method": s["label"], "output": name,
                             **{k: f"{100 * v:.2f}" for k, v in fig.items()}})
    if not rows:
        return []
    return ["## Multi-branch heads: each branch and the blend on the validation split", "",
            "Mean over seeds; F_m at threshold 0.5, AP_m threshold-free. A blend should be at least as good as "
            "its better branch.", "", md(rows_frame(rows)), ""]


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
            "Mean over seeds.", "", md(rows_frame(rows)), ""]


def early_stopping_markdown(summary: dict) -> list[str]:
    """:func:`replay_table` of the runs' recorded validation-loss curves; empty for reports whose runs kept
    none."""
    curves = [(s["label"], curve) for s in summary["methods"].values() for curve in s.get("val_loss") or []]
    return replay_markdown(replay_table(curves)) if curves else []


def min_delta_markdown(rows: list[dict]) -> list[str]:
    """:func:`pipeline.models.early_stopping.min_delta_table` as report lines."""
    return [f"## A minimum improvement, replayed at patience {rows[0]['patience']}", "",
            "An epoch counts as a new best only when its validation loss is lower than the best by more than this "
            "share of it; a run whose best epoch moves gets another checkpoint.", "",
            *_replayed(rows, "minimum improvement", lambda r: f"{r['min_delta']:.1%}"), ""]


def replay_markdown(rows: list[dict]) -> list[str]:
    return ["## Early stopping replayed on the recorded curves", "",
            "Every run's validation loss per epoch, replayed under a smaller patience: a run that keeps its best "
            "epoch trains the same epochs up to it, so its checkpoint and every figure made from it are unchanged; "
            "the others would stop before their best epoch.", "",
            *_replayed(rows, "patience", lambda r: r["patience"]), ""]


def _replayed(rows: list[dict], setting: str, cell) -> list[str]:
    """The table of a replay (:func:`pipeline.models.early_stopping.replay_table` rows), one row per ``setting``."""
    return md_table([setting, "runs keeping their best epoch", "epochs run", "epochs saved",
                     "methods with a run that would change"],
                    [[cell(r), f"{r['kept']} of {r['runs']}", r["epochs"],
                      f"{1 - r['epochs'] / r['epochs_recorded']:.0%}", ", ".join(r["moved"]) or "-"] for r in rows])
