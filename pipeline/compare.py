"""The comparison: every method x several seeds on the cached features, tables in the
shape of the paper's Tables I-IV (mean +/- std over seeds), and a paired bootstrap
over test *films* for each method against the best baseline.

The paper reports single runs without a significance test; here every number is
a mean over seeds, and each difference in macro F1 comes with a 95% bootstrap
confidence interval and a p-value, so a reader can tell a real gain from noise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .evaluate import decision_thresholds
from .metrics import all_metrics, f1, precision_recall_curve
from .methods import BASELINES, METHODS, TABLES

TABLE_METRICS = [
    ("f1_macro", "F_m"), ("balanced_accuracy_macro", "BA_m"), ("f1_micro", "F_mu"),
    ("balanced_accuracy_micro", "BA_mu"), ("f1_weighted", "F_w"), ("balanced_accuracy_weighted", "BA_w"),
    ("f1_samples", "F_s"), ("balanced_accuracy_samples", "BA_s"), ("hamming_loss", "HL"), ("hit", "Hit"),
    ("average_precision_macro", "AP_m"),
]


def run_frame(keys, imdb_ids, split: str, y: np.ndarray, scores: np.ndarray, genres: list[str]) -> pd.DataFrame:
    """Scores and labels of one split of one run, one row per poster."""
    table = pd.DataFrame({"key": keys, "imdb_id": imdb_ids, "split": split})
    for j, g in enumerate(genres):
        table[f"y_{g}"] = y[:, j].astype(np.int8)
        table[f"s_{g}"] = scores[:, j].astype(np.float32)
    return table


def _arrays(frame: pd.DataFrame, genres: list[str]) -> tuple[np.ndarray, np.ndarray]:
    return (frame[[f"y_{g}" for g in genres]].to_numpy(), frame[[f"s_{g}" for g in genres]].to_numpy(np.float64))


def paired_bootstrap(
    y: np.ndarray, preds_a: list[np.ndarray], preds_b: list[np.ndarray], groups: np.ndarray,
    n_boot: int = 2000, seed: int = 0,
) -> dict[str, float]:
    """Paired bootstrap over groups (films) of the difference in seed-averaged macro F1, a - b.

    Films are resampled with replacement (all posters of a drawn film come along);
    both methods are scored on the same resample. Returns the observed difference,
    its 95% percentile interval and a two-sided p-value
    p = 2 min(P(d* <= 0), P(d* >= 0)) with the +1 correction, capped at 1.
    """
    def diff(rows):
        a = np.mean([f1(y[rows], p[rows], "macro") for p in preds_a])
        b = np.mean([f1(y[rows], p[rows], "macro") for p in preds_b])
        return a - b

    films, inverse = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(inverse == i) for i in range(len(films))]
    rng = np.random.default_rng(seed)
    observed = diff(np.arange(len(y)))
    stats = np.empty(n_boot)
    for b in range(n_boot):
        draw = rng.integers(0, len(films), len(films))
        stats[b] = diff(np.concatenate([members[i] for i in draw]))
    below = (np.sum(stats <= 0) + 1) / (n_boot + 1)
    above = (np.sum(stats >= 0) + 1) / (n_boot + 1)
    return {
        "diff": float(observed),
        "ci_low": float(np.percentile(stats, 2.5)),
        "ci_high": float(np.percentile(stats, 97.5)),
        "p_value": float(min(1.0, 2 * min(below, above))),
    }


def load_runs(folder: str | Path) -> dict[str, list[dict[str, Any]]]:
    """method -> list of runs (one per seed): validation and test frames, timing."""
    out: dict[str, list[dict[str, Any]]] = {}
    for run in sorted(Path(folder).glob("*/seed*/run.json")):
        meta = json.loads(run.read_text())
        frame = pd.read_parquet(run.parent / "scores.parquet")
        timing = run.parent / "timing.json"
        meta["seconds"] = json.loads(timing.read_text())["seconds"] if timing.exists() else None
        for split in ("val", "test"):
            meta[split] = frame[frame["split"] == split].sort_values("key", kind="mergesort").reset_index(drop=True)
        out.setdefault(meta["method"], []).append(meta)
    for runs in out.values():
        runs.sort(key=lambda r: r["seed"])
    return out


def summarise(runs: dict[str, list[dict]], genres: list[str], n_boot: int = 2000,
              threshold_mode: str = "global", threshold: float = 0.5) -> dict[str, Any]:
    """Metrics per method (mean, std over seeds), per-genre results, bootstrap tests.

    Decision thresholds are set here, per run, from that run's validation scores
    (``threshold_mode: per_genre``) or as ``threshold`` everywhere: they are post-hoc, so
    changing them re-runs the report only, never the training.
    """
    per_method: dict[str, Any] = {}
    preds: dict[str, list[np.ndarray]] = {}
    y_ref = groups = None
    for method, rs in runs.items():
        metrics, taus = [], []
        preds[method] = []
        for r in rs:
            y, s = _arrays(r["test"], genres)
            tau = decision_thresholds(threshold_mode, threshold, *_arrays(r["val"], genres))
            taus.append(tau)
            metrics.append(all_metrics(y, s, tau, genres))
            preds[method].append((s > tau).astype(np.int64))
            if y_ref is None:
                y_ref, groups = y, r["test"]["imdb_id"].to_numpy()
        keys = [k for k, _ in TABLE_METRICS]
        per_method[method] = {
            "label": METHODS.get(method, {}).get("label", method),
            "seeds": len(rs),
            "mean": {k: float(np.mean([m[k] for m in metrics])) for k in keys},
            "std": {k: float(np.std([m[k] for m in metrics])) for k in keys},
            "per_genre": {g: {k: float(np.mean([m["per_genre"][g][k] for m in metrics]))
                              for k in ("balanced_accuracy", "f1", "precision", "recall", "specificity")}
                          for g in genres},
            "train_seconds": (float(np.mean([r["seconds"] for r in rs]))
                              if all(r["seconds"] is not None for r in rs) else None),
            "epochs": float(np.mean([r["epochs_run"] for r in rs])),
            "thresholds": {g: round(float(np.mean([t[j] for t in taus])), 4) for j, g in enumerate(genres)},
        }
    ranked = sorted(per_method, key=lambda m: -per_method[m]["mean"]["f1_macro"])
    baselines = [m for m in ranked if m in BASELINES]
    best_baseline = baselines[0] if baselines else None
    tests = {}
    if best_baseline is not None:
        for method in per_method:
            if method != best_baseline:
                tests[method] = paired_bootstrap(y_ref, preds[method], preds[best_baseline], groups, n_boot)
    return {"methods": per_method, "ranking": ranked, "best": ranked[0] if ranked else None,
            "threshold_mode": threshold_mode, "threshold": threshold,
            "best_baseline": best_baseline, "bootstrap_vs_best_baseline": tests, "genres": genres,
            "test_posters": int(len(y_ref)) if y_ref is not None else 0,
            "test_films": int(len(np.unique(groups))) if groups is not None else 0}


def _cell(mean: float, std: float, key: str) -> str:
    if key == "hamming_loss":
        return f"{mean:.4f} ± {std:.4f}"
    return f"{100 * mean:.2f} ± {100 * std:.2f}"


def table(summary: dict, methods: list[str]) -> pd.DataFrame:
    rows = []
    for m in methods:
        if m not in summary["methods"]:
            continue
        s = summary["methods"][m]
        rows.append({"method": s["label"], **{short: _cell(s["mean"][k], s["std"][k], k) for k, short in TABLE_METRICS}})
    return pd.DataFrame(rows)


def genre_table(summary: dict) -> pd.DataFrame:
    best = summary["methods"][summary["best"]]
    rows = [{"genre": g, **{k: round(100 * v, 2) for k, v in best["per_genre"][g].items()}} for g in summary["genres"]]
    return pd.DataFrame(rows).sort_values("balanced_accuracy", ascending=False, kind="mergesort")


def per_genre_f1_long(summary: dict) -> pd.DataFrame:
    return pd.DataFrame([
        {"genre": g, "method": m, "f1": round(s["per_genre"][g]["f1"], 6)}
        for m, s in summary["methods"].items() for g in summary["genres"]
    ])


def micro_pr_curves(runs: dict[str, list[dict]], genres: list[str], points: int = 51) -> pd.DataFrame:
    """Micro-averaged precision (interpolated) at ``points`` recall levels per method (seed 0's run)."""
    grid = np.linspace(0, 1, points)
    table = pd.DataFrame({"recall": np.round(grid, 4)})
    for method, rs in runs.items():
        y, s = _arrays(rs[0]["test"], genres)
        precision, recall, _ = precision_recall_curve(y.ravel(), s.ravel())
        table[method] = [round(float(precision[recall >= r - 1e-12].max()), 6) for r in grid]
    return table


def markdown(summary: dict) -> str:
    def md(df: pd.DataFrame) -> str:
        cols = list(df.columns)
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
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
    parts += [md(pd.DataFrame(rows)), ""]
    bb = summary["best_baseline"]
    if bb:
        parts += [f"## Against the best baseline ({summary['methods'][bb]['label']}): paired bootstrap over test films",
                  "", "Difference in seed-averaged macro F1 (method - baseline), 95% interval, two-sided p.", ""]
        rows = [{"method": summary["methods"][m]["label"], "Δ F_m": f"{100 * t['diff']:+.2f}",
                 "95% CI": f"[{100 * t['ci_low']:+.2f}, {100 * t['ci_high']:+.2f}]", "p": f"{t['p_value']:.4f}"}
                for m, t in sorted(summary["bootstrap_vs_best_baseline"].items(),
                                   key=lambda kv: -kv[1]["diff"])]
        parts += [md(pd.DataFrame(rows)), ""]
    return "\n".join(parts)
