"""Stage ``report``: all runs of ``compare`` -> Markdown + CSV tables (paper Tables I-IV), bootstrap
tests against the best baseline, metrics and plots."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.core.errors import PipelineError
from pipeline.core.io import write_csv, write_json, write_text
from pipeline.core.params import load_params
from pipeline.evaluation.compare import (
    films_summary,
    load_runs,
    micro_pr_curves,
    per_genre_f1_long,
    summarise,
    with_blends,
)
from pipeline.evaluation.markdown import genre_table, markdown, table
from pipeline.evaluation.methods import TABLES
from stages._command import command


@command
def main(
    params: Path = typer.Option(Path("params.yaml"), help="Parameters file."),
    runs: Path = typer.Option(Path("compare/runs"), help="Runs written by the compare stages."),
    out: Path = typer.Option(Path("compare"), help="Folder for report.md, tables, metrics and plots."),
) -> None:
    """Write the comparison report from the runs of compare.methods x compare.seeds."""
    p = load_params(params, ["data", "compare", "eval"])
    genres, cmp, ev = p["data"].genres, p["compare"], p["eval"]
    found = load_runs(runs)
    missing = [f"{m}/seed{s}" for m in cmp.methods for s in cmp.seeds
               if s not in {r["seed"] for r in found.get(m, [])}]
    if missing:
        raise PipelineError(f"{runs}: missing runs {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}; "
                            f"run dvc repro")
    # and the blends of methods that ran (moviescope-separate: image, plot and metadata runs averaged)
    selected = with_blends({m: [r for r in found[m] if r["seed"] in cmp.seeds] for m in cmp.methods})
    summary = summarise(selected, genres, cmp.bootstrap, ev.threshold_mode, ev.threshold, ev.rule_metric,
                        ev.calibration, seed=cmp.bootstrap_seed)
    summary["films"] = films_summary(selected, genres, cmp.bootstrap, ev.threshold_mode, ev.threshold,
                                     seed=cmp.bootstrap_seed)
    write_text(out / "report.md", markdown(summary))
    for name, methods in TABLES.items():
        write_csv(out / f"table_{name}.csv", table(summary, methods))
    write_csv(out / "table_IV.csv", genre_table(summary))
    write_csv(out / "per_genre_f1.csv", per_genre_f1_long(summary))
    write_csv(out / "pr_micro.csv", micro_pr_curves(selected, genres))
    metrics = {m: {k: round(v, 6) for k, v in s["mean"].items()} for m, s in summary["methods"].items()}
    write_json(out / "metrics.json", {"best": summary["best"], "best_baseline": summary["best_baseline"],
                                      "methods": metrics})
    write_json(out / "summary.json", summary)
    print(f"report: best {summary['best']} (macro F1 {summary['methods'][summary['best']]['mean']['f1_macro']:.4f}), "
          f"best baseline {summary['best_baseline']}; {out / 'report.md'}")


if __name__ == "__main__":
    typer.run(main)
