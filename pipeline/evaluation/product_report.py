"""The product against the paper's head on test, over seeds: ``poster-genres product-report``.

Reads the product stage's ``eval/product_predictions.parquet`` (and ``dvclive/product/metrics.json`` as
``product_metrics.json``) of several runs laid out as ``<runs>/<variant>/seed<k>/product_predictions.parquet``
(a variant: ``films``, the pipeline with ``data.films``; ``poster``, the poster only), all on the same test
films; or, run over the folds of a cross-validation (``split.folds``), as ``<variant>/fold<f>/seed<k>/``: each
seed's folds are pooled into one run whose test films are every fold's (each judged by its own fold's models),
so a few test films of one kind (those without a plot) become many. Reports, on all test films and on those with
and without a plot (the films variant says which have one):

* per variant, the product and the main model (the paper's head) alone: macro F1 and samples F1 (mean and
  standard deviation over seeds; macro first, since a rule can win samples F1 by never tagging rare genres)
  and genres per poster;
* for the films variant, the product again with every film's synopsis withheld (``withheld``): the no-plot
  plan judged on the many test films that have a plot, beside the few that arrive without one;
* the tests (paired over test films and seeds, seed-level corrected, of the seed-averaged macro F1,
  :func:`pipeline.evaluation.statistics.paired_bootstrap`; Holm over the report's tests): the product against the
  paper's head, and, for films that arrive without a plot, the films product against the poster-only product
  and the poster-only paper's head;
* for the films without a plot, how many each genre is tagged (mean over seeds) against how many have it;
* the plans the product stage chose, per seed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from pipeline.core.errors import PipelineError
from pipeline.core.io import read_parquet
from pipeline.evaluation.markdown import (
    interval,
    interval_words,
    md_table,
    min_delta_markdown,
    p_cell,
    replay_markdown,
    seed_level,
)
from pipeline.evaluation.statistics import paired_bootstrap, seed_std, settle_borderline
from pipeline.models.product import MAIN, WITHHELD
from pipeline.scoring.thresholds import genres_per_poster, measure_predictions

FILE = "product_predictions.parquet"
SUBSETS = ("all", "with_plot", "without_plot")
#: The report's tests: (variant a, model a, variant b, model b, subset, what it asks).
TESTS = [
    ("films", "product", "films", "main", "all", "the product against the paper's head with films"),
    ("films", "product", "films", "main", "with_plot", "the same, films with a plot"),
    ("films", "product", "films", "main", "without_plot", "the same, films without a plot"),
    ("films", "product", "poster", "product", "without_plot",
     "a film without a plot: the films product against the poster-only product"),
    ("films", "product", "poster", "main", "without_plot",
     "a film without a plot: the films product against the poster-only paper's head"),
    ("films", "withheld", "poster", "product", "with_plot",
     "a film's synopsis withheld: the films product without it against the poster-only product"),
    ("films", "withheld", "poster", "main", "with_plot",
     "a film's synopsis withheld: the films product without it against the poster-only paper's head"),
    ("poster", "product", "poster", "main", "all", "poster only: the product against the paper's head"),
]


def _plans(run: Path) -> dict:
    metrics = run / "product_metrics.json"
    return json.loads(metrics.read_text())["plans"] if metrics.exists() else {}


def _seeds(folder: Path) -> dict[int, Path]:
    return {int(p.parent.name[4:]): p.parent for p in folder.glob(f"seed*/{FILE}")}


def load_product_runs(folder: str | Path) -> tuple[dict[str, list[pl.DataFrame]], dict[str, list[dict]], int]:
    """variant -> its seeds' prediction tables, in seed order, each a fold-pooled table where the runs are laid
    out by fold; variant -> each seed's plans (``product_metrics.json`` beside each run, when there: the members
    each pattern averages; ``fold<f> <pattern>`` where pooled); and the number of folds (1: one split)."""
    folder = Path(folder)
    runs: dict[str, list[pl.DataFrame]] = {}
    plans: dict[str, list[dict]] = {}
    fold_counts = set()
    for variant in sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []:
        folds = {int(f.name[4:]): _seeds(f) for f in variant.glob("fold*") if f.name[4:].isdigit() and _seeds(f)}
        if not folds:
            folds = {0: _seeds(variant)} if _seeds(variant) else {}
        if not folds:
            continue
        fold_counts.add(len(folds))
        seeds = sorted(set.intersection(*(set(s) for s in folds.values())))
        if any(set(s) != set(seeds) for s in folds.values()):
            raise PipelineError(f"{variant}: every fold needs the same seeds ({sorted(seeds)} in all of them)")
        runs[variant.name] = []
        for k in seeds:
            frames = [read_parquet(folds[f][k] / FILE) for f in sorted(folds)]
            pooled = pl.concat(frames, how="vertical_relaxed").sort("key")
            if pooled["key"].n_unique() != len(pooled):
                raise PipelineError(f"{variant}: a poster is a test poster of two folds (folds of another split)")
            runs[variant.name].append(pooled)
        plans[variant.name] = [_plans(folds[0][k]) if len(folds) == 1 else
                               {f"fold{f} {pattern}": plan for f in sorted(folds)
                                for pattern, plan in _plans(folds[f][k]).items()} for k in seeds]
    if not runs:
        raise PipelineError(f"{folder}: no <variant>/seed<k>/{FILE} or <variant>/fold<f>/seed<k>/{FILE} (the "
                            f"product stage's eval/{FILE})")
    keys = {tuple(f["key"].to_list()) for frames in runs.values() for f in frames}
    if len(keys) != 1 or len(fold_counts) != 1:
        raise PipelineError(f"{folder}: the runs do not share their test posters (another split or posters table)")
    return runs, plans, fold_counts.pop()


def _arrays(frame: pl.DataFrame, prefix: str, genres: list[str]) -> np.ndarray:
    return frame.select([f"{prefix}_{g}" for g in genres]).to_numpy().astype(np.int64)


def load_training_curves(folder: str | Path) -> list[tuple[str, list[float]]]:
    """Every run's validation loss per epoch, named ``variant/model``: the main model's from
    ``seed<k>/val_loss.tsv`` (a copy of its ``dvclive/train/plots/metrics/val/loss.tsv``), each candidate's from
    ``product_metrics.json`` (``training``). What the early-stopping replay reads."""
    curves = []
    for seed in sorted([*Path(folder).glob(f"*/seed*/{FILE}"), *Path(folder).glob(f"*/fold*/seed*/{FILE}")]):
        run = seed.parent
        variant = run.parent.parent.name if run.parent.name.startswith("fold") else run.parent.name
        if (run / "val_loss.tsv").exists():
            rows = (run / "val_loss.tsv").read_text().split("\n")[1:]
            curves.append((f"{variant}/{MAIN}", [float(r.split("\t")[1]) for r in rows if r.strip()]))
        if (run / "product_metrics.json").exists():
            training = json.loads((run / "product_metrics.json").read_text()).get("training", {})
            curves += [(f"{variant}/{name}", t["val_loss"]) for name, t in training.items() if "val_loss" in t]
    return curves


def product_summary(runs: dict[str, list[pl.DataFrame]], genres: list[str], n_boot: int = 10000,
                    seed: int = 0, plans: dict[str, list[dict]] | None = None, folds: int = 1) -> dict[str, Any]:
    first = next(iter(runs.values()))[0]
    y = _arrays(first, "y", genres)
    groups = first["imdb_id"].to_numpy()
    has_plot = next((f[0]["has_plot"] for f in runs.values() if f[0]["has_plot"].null_count() == 0), None)
    subsets = {"all": np.ones(len(y), dtype=bool)}
    if has_plot is not None:
        subsets |= {"with_plot": has_plot.to_numpy(), "without_plot": ~has_plot.to_numpy()}
    # "withheld": the films product on every film with its synopsis withheld (runs that read films)
    preds = {(v, m): [_arrays(f, m, genres) for f in frames]
             for v, frames in runs.items() for m in ("product", "main", WITHHELD)
             if m != WITHHELD or all(f"{WITHHELD}_{genres[0]}" in f.columns for f in frames)}
    rows = []
    for (variant, model), ps in preds.items():
        for subset, keep in subsets.items():
            if model == WITHHELD and subset == "without_plot":
                continue  # the same decisions as the product's: those films had no synopsis to withhold
            figs = [measure_predictions(y[keep], p[keep]) for p in ps]
            rows.append({"variant": variant, "model": model, "subset": subset, "posters": int(keep.sum()),
                         "seeds": len(ps),
                         **{f"{k}_mean": float(np.mean([f[k] for f in figs])) for k in ("f1_macro", "f1_samples")},
                         **{f"{k}_std": seed_std([f[k] for f in figs]) for k in ("f1_macro", "f1_samples")},
                         "genres_per_poster": float(np.mean([f["genres_per_poster"] for f in figs])),
                         "genres_per_poster_true": genres_per_poster(y[keep])})
    def pair_test(t: dict[str, Any], draws: int, draw_seed: int) -> dict[str, Any]:
        """The test of ``t``'s pair ("variant/model" each) on its subset, from ``draws`` draws."""
        (va, ma), (vb, mb), keep = t["a"].split("/"), t["b"].split("/"), subsets[t["subset"]]
        return paired_bootstrap(y[keep], [p[keep] for p in preds[(va, ma)]], [p[keep] for p in preds[(vb, mb)]],
                                groups[keep], draws, draw_seed)

    tests = []
    for va, ma, vb, mb, subset, question in TESTS:
        if (va, ma) not in preds or (vb, mb) not in preds or subset not in subsets:
            continue
        t = {"a": f"{va}/{ma}", "b": f"{vb}/{mb}", "subset": subset, "question": question}
        tests.append({**t, **pair_test(t, n_boot, seed)})
    for t in settle_borderline(tests, pair_test, n_boot, seed):
        t["significant"] = t["p_holm"] < 0.05
    tags = {}
    if "without_plot" in subsets:
        keep = subsets["without_plot"]
        tags = {g: {"true": int(y[keep, j].sum()),
                    **{f"{v}/{m}": float(np.mean([p[keep, j].sum() for p in ps])) for (v, m), ps in preds.items()
                       if m != WITHHELD}}
                for j, g in enumerate(genres)}
    decisions = {v: [sorted(set(f["product_rule"].to_list())) for f in frames] for v, frames in runs.items()}
    return {"n_boot": n_boot, "bootstrap_seed": seed, "test_posters": int(len(y)), "folds": folds, "rows": rows,
            "tests": tests, "tags_without_plot": tags, "plans": plans or {}, "decisions": decisions}


def product_markdown(summary: dict[str, Any]) -> str:
    """The report's Markdown, its summary rendered (``summary["references"]``: label -> the best single method of a
    committed comparison, its product-rule macro F1 and seed std, set beside)."""
    out = ["# The product against the paper's head", "",
           f"{summary['test_posters']} test posters"
           + (f", the test folds of a {summary['folds']}-fold cross-validation pooled (each film judged by the "
              "models of its own fold, a seed's folds making one run)" if summary.get("folds", 1) > 1 else "")
           + "; each model's figures are the mean and standard deviation over its seeds. Macro F1 first (a rule can "
           "win samples F1 by never tagging rare genres).", "",
           *[f"- {line}" for line in product_headline(summary)], ""]
    out += md_table(["variant", "model", "films", "posters", "seeds", "macro F1", "samples F1",
                     "genres per poster (true)"], [
        [r["variant"], r["model"], r["subset"], r["posters"], r["seeds"],
         f"{100 * r['f1_macro_mean']:.2f} ± {100 * r['f1_macro_std']:.2f}",
         f"{100 * r['f1_samples_mean']:.2f} ± {100 * r['f1_samples_std']:.2f}",
         f"{r['genres_per_poster']:.2f} ({r['genres_per_poster_true']:.2f})"] for r in summary["rows"]])
    out += ["", "## Tests", "", f"Macro F1, a - b in points: {interval_words(summary['tests'])}; "
            f"{summary['n_boot']} draws (bootstrap seed {summary['bootstrap_seed']}), Holm over the "
            f"{len(summary['tests'])} tests below.", ""]
    out += md_table(["a", "b", "films", "question", "a - b", "95% interval", "p", "p (Holm)", ""], [
        [t["a"], t["b"], t["subset"], t["question"], f"{100 * t['diff']:+.2f}", interval(t), p_cell(t),
         f"{t['p_holm']:.4f}", "significant" if t["significant"] else "not significant"] for t in summary["tests"]])
    if summary.get("references"):
        out += ["", "## For reference: the best single methods of the committed comparisons", ""]
        out += md_table(["", "method", "product-rule macro F1", "seed std"], [
            [label, ref["method"], f"{100 * ref['f1_macro']:.2f}",
             "-" if ref.get("f1_macro_std") is None else f"{100 * ref['f1_macro_std']:.2f}"]
            for label, ref in summary["references"].items()])
    if summary["tags_without_plot"]:
        # in the order of the table's rows, not of the dict: summary.json has sorted keys, and renders the same
        tagged = next(iter(summary["tags_without_plot"].values()))
        models = [k for k in dict.fromkeys(f"{r['variant']}/{r['model']}" for r in summary["rows"]) if k in tagged]
        out += ["", "## Genres tagged on the films without a plot", "",
                "Films that have the genre, and how many each model tags with it (mean over seeds).", ""]
        out += md_table(["genre", "true", *models], [[g, row["true"], *(f"{row[m]:.1f}" for m in models)]
                                                     for g, row in summary["tags_without_plot"].items()])
    if summary.get("early_stopping"):
        out += ["", *replay_markdown(summary["early_stopping"])[:-1]]
    if summary.get("min_delta"):
        out += ["", *min_delta_markdown(summary["min_delta"])[:-1]]
    out += ["", "## Decisions chosen on validation, per seed", "",
            "Each test film's input pattern and the rule it got (the calibration and the members each pattern "
            "averages are in the runs' `dvclive/product/metrics.json`, `plans`).", ""]
    for variant, seeds in summary["decisions"].items():
        out.append(f"- {variant}: " + "; ".join(f"seed {k}: {', '.join(d)}" for k, d in enumerate(seeds)))
    for variant, seeds in summary.get("plans", {}).items():
        out.append(f"- {variant}, plans: " + "; ".join(
            f"seed {k}: " + ", ".join(f"{p} {v['members']} ({v['calibration']}, {v['rule']})" for p, v in d.items())
            for k, d in enumerate(seeds)))
    return "\n".join(out) + "\n"


def best_product_rule(summary: dict[str, Any], methods: list[str] | None = None
                      ) -> tuple[str, float, float | None]:
    """The method of a committed comparison summary with the best product-rule macro F1 on test (mean over seeds),
    that mean and its seed std (None in reports made before the std was kept)."""
    rules = {m: s["decision_rules"]["product"] for m, s in summary["methods"].items()
             if methods is None or m in methods}
    best = max(rules, key=lambda m: rules[m]["f1_macro"])
    return best, rules[best]["f1_macro"], rules[best].get("f1_macro_std")


def _row(summary: dict[str, Any], variant: str, model: str, subset: str) -> dict[str, Any] | None:
    return next((r for r in summary["rows"] if (r["variant"], r["model"], r["subset"]) == (variant, model, subset)),
                None)


def _test(summary: dict[str, Any], a: str, b: str, subset: str) -> dict[str, Any] | None:
    return next((t for t in summary["tests"] if (t["a"], t["b"], t["subset"]) == (a, b, subset)), None)


def _figure(row: dict[str, Any]) -> str:
    return (f"macro F1 {100 * row['f1_macro_mean']:.2f} ± {100 * row['f1_macro_std']:.2f} (samples F1 "
            f"{100 * row['f1_samples_mean']:.2f}, {row['genres_per_poster']:.2f} genres per poster)")


def _tested(t: dict[str, Any]) -> str:
    verdict = "significant" if t["significant"] else "not significant"
    return f"{100 * t['diff']:+.2f} [{100 * t['ci_low'] + 0:+.2f}, {100 * t['ci_high'] + 0:+.2f}], {verdict}"


def product_headline(summary: dict[str, Any]) -> list[str]:
    """The README's sentences on the product, made from the report's summary (a test holds the README to them):
    every figure is a row of the report, every interval the test of the pair it is written beside."""
    out = []
    seeds = {r["seeds"] for r in summary["rows"]}
    films, poster = _row(summary, "films", "product", "all"), _row(summary, "poster", "product", "all")
    if films is not None:
        head = _row(summary, "films", "main", "all")
        t = _test(summary, "films/product", "films/main", "all")
        out.append(f"With synopses (`data.films`), the product scores {_figure(films)} on all "
                   f"{films['posters']} test films, against the paper's head with films and its own decisions "
                   f"{_figure(head)}: {_tested(t)}.")
        bare, bare_poster = _row(summary, "films", "product", "without_plot"), _row(summary, "poster", "product",
                                                                                      "without_plot")
        bare_head = _row(summary, "films", "main", "without_plot")
        if bare is not None:
            line = (f"On the {bare['posters']} test films that arrive without a synopsis it scores "
                    f"{_figure(bare)}")
            if bare_poster is not None:
                t = _test(summary, "films/product", "poster/product", "without_plot")
                line += f"; the poster-only product there: {_figure(bare_poster)} ({_tested(t)})"
            t = _test(summary, "films/product", "films/main", "without_plot")
            line += f"; the paper's head with films there: {_figure(bare_head)} ({_tested(t)})."
            out.append(line)
        withheld, plotted_poster = (_row(summary, "films", WITHHELD, "with_plot"),
                                    _row(summary, "poster", "product", "with_plot"))
        if withheld is not None and plotted_poster is not None:
            t = _test(summary, f"films/{WITHHELD}", "poster/product", "with_plot")
            out.append(f"With the synopsis withheld from the {withheld['posters']} test films that have one (what "
                       f"each would get had it arrived without it), the films product scores {_figure(withheld)}; "
                       f"the poster-only product on the same films: {_figure(plotted_poster)} ({_tested(t)}).")
    if poster is not None:
        head = _row(summary, "poster", "main", "all")
        t = _test(summary, "poster/product", "poster/main", "all")
        out.append(f"Poster only, the product scores {_figure(poster)}, against the paper's head {_figure(head)}: "
                   f"{_tested(t)}.")
    for label, ref in summary.get("references", {}).items():
        spread = f" ± {100 * ref['f1_macro_std']:.2f}" if ref.get("f1_macro_std") is not None else ""
        out.append(f"For reference, the best single method of the committed {label} with its own product rule "
                   f"(chosen by that report's settings): {ref['method']}, macro F1 {100 * ref['f1_macro']:.2f}"
                   f"{spread}.")
    test = ("seed-level paired t test" if seed_level(summary["tests"]) else "two-level paired bootstrap")
    folds = summary.get("folds", 1)
    pooled = f" (each seed's {folds} cross-validation folds pooled: every film a test film once)" if folds > 1 else ""
    out.append(f"Mean ± standard deviation over {', '.join(map(str, sorted(seeds)))} seeds{pooled}; intervals: {test} "
               f"of macro F1 (test films and seeds), Holm over the report's {len(summary['tests'])} tests.")
    return out
