"""Results kept in git: a run's reports copied into ``results/<name>/`` with the command and revision that
made them, and the markdown the README shows of them (``tests/test_results.py`` holds the README to it).

``poster-genres results save NAME --command "..."`` copies, from a workspace that has run them,

* for a comparison (``--kind comparison``): ``compare/report.md``, ``summary.json`` and ``metrics.json``;
* for a main-pipeline run (``--kind main``): ``dvclive/evaluate/metrics.json``, ``dvclive/train/metrics.json``
  and the per-genre calibration errors (``dvclive/evaluate/plots/custom/calibration.json``);
* for two comparisons side by side (``--kind compare-two``): ``compare/compare_two.md`` and ``.json``, what
  ``poster-genres compare-two ... --out compare/compare_two.md`` writes (run it in the workspace that saves);
* for the product over seeds (``--kind product``): ``compare/product.md`` and ``.json``, what
  ``poster-genres product-report RUNS --out compare/product.md`` writes;
* with the first three, the reports of the stages that made the workspace's inputs when present: ingest (posters
  kept and skipped), OCR (title recall over the whole set), films and plot (for compare-two: those of the
  workspace that saves, the one whose runs changed the upstream choice, e.g. the other OCR engine's pass; not
  ingest, which both sides share),

and writes ``provenance.json``: the command, the git revision of the code that ran (``git rev-parse
HEAD`` of the workspace, and whether it had uncommitted changes) and the params that differ from
``params.yaml`` at that revision. A number in the README then has a file in git to be checked against.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from pipeline.core.errors import PipelineError
from pipeline.core.io import write_json
from pipeline.evaluation.compare import ALL_PAIRS, QUESTIONS
from pipeline.evaluation.markdown import md_table

#: What ``save`` copies, by what the experiment is: the file in the workspace -> its name in ``results/<name>/``.
INPUTS = {"data/ingest_report.json": "ingest_report.json", "features/ocr_report.json": "ocr_report.json",
          "data/films_report.json": "films_report.json", "features/plot_report.json": "plot_report.json"}
FILES = {
    "comparison": {"compare/report.md": "report.md", "compare/summary.json": "summary.json",
                   "compare/metrics.json": "compare_metrics.json", **INPUTS},
    "main": {"dvclive/evaluate/metrics.json": "evaluate_metrics.json",
             "dvclive/train/metrics.json": "train_metrics.json",
             "dvclive/evaluate/plots/custom/calibration.json": "calibration.json", **INPUTS},
    # compare-two pairs runs on the same posters and split, so the ingest report is both sides' and stays out
    "compare-two": {"compare/compare_two.md": "compare_two.md", "compare/compare_two.json": "compare_two.json",
                    **{src: dst for src, dst in INPUTS.items() if dst != "ingest_report.json"}},
    "product": {"compare/product.md": "report.md", "compare/product.json": "summary.json"},
}


def _git(workspace: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=workspace, capture_output=True, text=True, check=True).stdout


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _flat(item, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): value}


def save_results(workspace: str | Path, out: str | Path, command: str, report_revision: str | None = None,
                 note: str | None = None, kind: str = "comparison") -> dict[str, Any]:
    """Copy the workspace's reports into ``out`` and write its provenance; returns the provenance.

    ``report_revision``: when the report was re-made from the workspace's saved runs by later code (the
    statistics only; no run was re-trained), the revision of that code."""
    workspace, out = Path(workspace), Path(out)
    present = {src: dst for src, dst in FILES[kind].items() if (workspace / src).exists()}
    if not present:
        raise PipelineError(f"{workspace}: no report to save (run dvc repro or the comparison first)")
    out.mkdir(parents=True, exist_ok=True)
    for src, dst in present.items():
        shutil.copyfile(workspace / src, out / dst)
    revision = _git(workspace, "rev-parse", "HEAD").strip()
    # the code that ran differs from the revision's (params.yaml's changes are listed below, key by key; DVC's
    # lock files and .gitignore files are outputs, not code)
    dirty = bool(_git(workspace, "diff", "HEAD", "--name-only", "--", "pipeline", "stages", "dvc.yaml",
                      "comparison/dvc.yaml").strip())
    committed = yaml.safe_load(_git(workspace, "show", f"{revision}:params.yaml")) or {}
    used = yaml.safe_load((workspace / "params.yaml").read_text()) or {}
    before, after = _flat(committed), _flat(used)
    changed = {k: after.get(k) for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)}
    provenance = {"kind": kind, "command": command, "revision": revision, "uncommitted_changes": dirty,
                  "params_changed": changed, "files": sorted(present.values()),
                  **({"report_revision": report_revision} if report_revision else {}),
                  **({"note": note} if note else {})}
    write_json(out / "provenance.json", provenance)
    return provenance


def run_markdown(evaluate: dict[str, Any], train: dict[str, Any], label: str) -> str:
    """The README's table of one main-pipeline run: the paper's rule and the product rule on test, over all
    test films and, with films, those with and without a plot."""
    rule = evaluate["product_rule"]
    rows = [[label, f"all ({evaluate['posters']} posters)", f"{100 * evaluate['f1_macro']:.2f}",
             f"{100 * evaluate['hit']:.2f}", f"{100 * evaluate['average_precision_macro']:.2f}",
             f"{100 * rule['f1_macro']:.2f} / {100 * rule['f1_samples']:.2f}",
             f"{train['epochs_run']} ({train['best_epoch']})"]]
    rows += [[label, f"{name} ({evaluate[subset]['posters']} posters)", f"{100 * evaluate[subset]['f1_macro']:.2f}",
              f"{100 * evaluate[subset]['hit']:.2f}", f"{100 * evaluate[subset]['average_precision_macro']:.2f}",
              f"{100 * evaluate[subset]['product_f1_macro']:.2f} / -", ""]
             for subset, name in (("with_plot", "with a plot"), ("without_plot", "without a plot"))
             if subset in evaluate]
    return "\n".join(md_table(["run", "test films", "F_m", "Hit", "AP_m", "product rule F_m / F_s", "epochs (best)"],
                              rows))


def calibration_markdown(evaluate: dict[str, Any], per_genre: list[dict[str, Any]]) -> str:
    """The README's table of a run's calibration on test: expected calibration error (15 bins, in points) per
    genre and macro-averaged, as trained and with each calibration fitted on validation."""
    methods = [("none", "as trained"), ("temperature", "temperature"), ("platt", "Platt")]
    macro = evaluate["calibration"]["ece_macro"]
    rows = [[row["genre"], *(f"{100 * row[m]:.2f}" for m, _ in methods)] for row in per_genre]
    rows.append(["**macro**", *(f"**{100 * macro[m]:.2f}**" for m, _ in methods)])
    return "\n".join(md_table(["genre", *(f"ECE {label}" for _, label in methods)], rows))


def load(folder: str | Path, name: str) -> dict[str, Any]:
    """One JSON file of a results folder."""
    return json.loads((Path(folder) / name).read_text())


def _width(test: dict[str, Any]) -> float:
    return test["ci_high"] - test["ci_low"]


def interval_widths(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """How the intervals of one comparison change with its number of seeds: per report (``summarise``'s
    summary, fewest seeds first) and Holm family, the tests, how many are significant, the median width of
    the two-level interval (films and seeds resampled) and of the film-only one, in points, and, from the
    second report on, the median ratio of each test's two-level width to the same pair's width in the first
    report (pairs matched whichever way round each report orders them)."""
    def family_tests(summary: dict[str, Any]) -> dict[str, dict[frozenset, dict[str, Any]]]:
        return {name: {frozenset((t["a"], t["b"])): t for t in summary.get(key) or []}
                for name, key in ((QUESTIONS, "tests"), (ALL_PAIRS, "all_pairs"))}

    families = [family_tests(summary) for summary in summaries]
    first = families[0] if families else {}
    rows = []
    for i, (summary, by_family) in enumerate(zip(summaries, families)):
        seeds = max(s["seeds"] for s in summary["methods"].values())
        for name, tests in by_family.items():
            if not tests:
                continue
            two = np.median([_width(t) for t in tests.values()])
            film = np.median([_width(t["film_only"]) for t in tests.values()])
            matched = [_width(t) / _width(first[name][pair]) for pair, t in tests.items()
                       if i > 0 and pair in first.get(name, {}) and _width(first[name][pair]) > 0]
            rows.append({"seeds": seeds, "family": name, "tests": len(tests),
                         "significant": sum(t["p_holm"] < 0.05 for t in tests.values()),
                         "two_level_width": round(100 * float(two), 2), "film_only_width": round(100 * float(film), 2),
                         "width_vs_first": round(float(np.median(matched)), 3) if matched else None})
    return rows


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def interval_widths_markdown(rows: list[dict[str, Any]]) -> str:
    """The table of :func:`interval_widths`."""
    return "\n".join(md_table(
        ["seeds", "family", "tests", "significant (Holm)", "median 95% CI width, films + seeds",
         "median width, films only", "width / same pair's with the fewest seeds (median)"],
        [[r["seeds"], r["family"], r["tests"], r["significant"], f"{r['two_level_width']:.2f}",
          f"{r['film_only_width']:.2f}", _ratio(r["width_vs_first"])] for r in rows]))
