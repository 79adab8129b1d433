"""``poster-genres``: one command line for the stages, the feature store and prediction.

Each stage subcommand is the same function DVC runs (``python -m stages.<name>``).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from enum import Enum
from pathlib import Path

import typer

from stages import (
    compare,
    embed_image,
    embed_plot,
    embed_text,
    evaluate,
    ingest,
    ocr,
    product,
    report,
    scrape,
    split,
    train,
)
from stages import films as films_stage  # the name films is predict's option
from stages._command import command

app = typer.Typer(
    help="Predict a film's genres from its poster (artwork + OCR text) and, where known, its plot and metadata. "
         "Stages run under DVC: `dvc repro`.",
    no_args_is_help=True,
    add_completion=False,
)

app.command("scrape")(scrape.main)
app.command("ingest")(ingest.main)
app.command("films")(films_stage.main)
app.command("ocr")(ocr.main)
app.command("embed-image")(embed_image.main)
app.command("embed-text")(embed_text.main)
app.command("embed-plot")(embed_plot.main)
app.command("split")(split.main)
app.command("train")(train.main)
app.command("evaluate")(evaluate.main)
app.command("product")(product.main)
app.command("compare")(compare.main)
app.command("report")(report.main)


#: What predict serves by default (the product stage's), and the main pipeline's head where there is none.
PRODUCT, MAIN_MODEL = Path("models/product.pt"), Path("models/model.pt")


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


@app.command("predict")
@command
def predict_cmd(
    posters: list[Path] = typer.Argument(..., help="Poster files and/or folders of posters."),
    model: Path | None = typer.Option(
        None, help="The model: models/product.pt by default (the product stage's choice on validation), else "
                   "models/model.pt (the main pipeline's head) where there is no product; or any checkpoint."),
    params: Path = typer.Option(Path("params.yaml"),
                                help="Params of the run that trained the model (ocr, encoder, eval)."),
    threshold: float | None = typer.Option(
        None, min=0.0, max=1.0,
        help="The paper's rule: this threshold for every genre, no cap (e.g. 0.5). Default: the decision rule "
             "saved in the checkpoint (chosen on validation by train; eval.threshold for an older checkpoint)."),
    format: Format = typer.Option(Format.table, "--format", "-f", help="Output format."),
    ray_address: str | None = typer.Option(
        None, "--ray-address",
        help="Run the OCR and embedding of many posters on Ray: local (start an instance here), auto (join "
             "the running cluster) or ray://host:port. Default: params' ray.address (null = this process)."),
    plot: str | None = typer.Option(
        None, "--synopsis", "--plot",
        help="The film's synopsis (its plot), for one poster, for a model trained with data.films (see `features "
             "show` or the checkpoint's modalities). Without it the film is predicted as one without a synopsis."),
    films: Path | None = typer.Option(
        None, help="A films CSV (the shared format: imdb_id,plot,...,certification) for many posters: each row "
                   "joins the poster whose file name holds its IMDb id (tt0084058.jpg), or the file named in a "
                   "`poster` column. Posters without a row are predicted without a plot or metadata."),
    html: Path | None = typer.Option(
        None, help="Also write a review page of these posters to this folder (index.html and thumbnails; open it "
                   "in a browser, no server): OCR boxes, the text read, probabilities, and what MCAM attended to."),
) -> None:
    """Predict genres (and every genre's probability) for posters; unreadable files are reported and skipped.

    Each poster is decided by its input pattern's calibration and rule (poster_only, or with_plot when its film's
    synopsis is given), chosen on validation; stderr names each pattern's rule (`poster_only: rule: ...`) and JSON
    and CSV carry the rule and the pattern per poster. A model trained with films reads the poster only when
    neither --plot nor --films is given."""
    from pipeline.core.params import load_params
    from pipeline.evaluation.review import write_predicted
    from pipeline.models.predict import Seen, predict

    p = load_params(params, ["ocr", "encoder", "eval", "ray"])
    if model is None:
        model = PRODUCT if PRODUCT.exists() or not MAIN_MODEL.exists() else MAIN_MODEL
        if model == MAIN_MODEL:
            print(f"note: no {PRODUCT} (run dvc repro): using the main pipeline's model {MAIN_MODEL}", file=sys.stderr)
    ray = p["ray"] if ray_address is None else p["ray"].model_copy(update={"address": ray_address})
    notes: list[str] = []
    seen: list[Seen] = []
    results, errors = predict(posters, model, p["ocr"], p["encoder"], threshold=threshold,
                              fallback_threshold=p["eval"].threshold, notes=notes, ray=ray, plot=plot, films=films,
                              seen=seen if html is not None else None)
    for line in notes:
        print(line, file=sys.stderr)
    for line in errors:
        print(f"error: {line}", file=sys.stderr)
    if html is not None:
        write_predicted(html, seen[0], errors)
        print(f"review page: {html / 'index.html'}", file=sys.stderr)
    if format is Format.json:
        print(json.dumps([r.__dict__ for r in results], indent=2))
    elif format is Format.csv:
        buf = io.StringIO()
        genres = list(results[0].probabilities) if results else []
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["path", "genres", *genres, "rule", "pattern"])
        for r in results:
            writer.writerow([r.path, "|".join(r.genres), *(r.probabilities[g] for g in genres), r.rule, r.pattern])
        print(buf.getvalue(), end="")
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table("poster", "genres", "top probabilities")
        for r in results:
            top = sorted(r.probabilities.items(), key=lambda kv: -kv[1])[:3]
            table.add_row(r.path, ", ".join(r.genres) or "-", ", ".join(f"{g} {s:.2f}" for g, s in top))
        Console().print(table)
    if not results:
        raise typer.Exit(1)


class ThresholdMode(str, Enum):
    global_ = "global"
    per_genre = "per_genre"


class Split(str, Enum):
    test = "test"
    val = "val"


@app.command("compare-two")
@command
def compare_two_cmd(
    runs_a: Path = typer.Argument(..., help="compare/runs folder of the first comparison (e.g. the new OCR engine)."),
    runs_b: Path = typer.Argument(..., help="compare/runs folder of the second, same posters and split."),
    labels: tuple[str, str] = typer.Option(("A", "B"), help="Names of the two comparisons in the report."),
    reference: str = typer.Option("image", help="Method whose gain every other method is measured over, in both."),
    method: list[str] | None = typer.Option(None, help="Compare only these methods (repeat the option; the "
                                               "reference is added). Default: every method in both."),
    threshold_mode: ThresholdMode | None = typer.Option(None, help="Default: eval.threshold_mode of the params."),
    split: Split = typer.Option(Split.test, help="The split judged: val chooses a setting without reading test "
                                                 "(global threshold only)."),
    params: Path = typer.Option(Path("params.yaml"), help="Params (data.genres, compare.bootstrap, eval)."),
    out: Path | None = typer.Option(None, help="Also write the report here (.md) and its figures (.json beside)."),
) -> None:
    """Two comparisons that differ in one upstream choice (OCR engine, encoder), method by method.

    Paired test (films and seeds) of seed-averaged test (or validation) macro F1: each method A - B, and each
    method's gain over REFERENCE within A, within B and its change; Holm-adjusted over all tests."""
    from pipeline.core.errors import PipelineError
    from pipeline.core.io import write_json, write_text
    from pipeline.core.params import load_params
    from pipeline.evaluation.compare import compare_two, load_runs
    from pipeline.evaluation.markdown import compare_two_markdown

    p = load_params(params, ["data", "compare", "eval"])
    mode = threshold_mode.value if threshold_mode else p["eval"].threshold_mode
    for folder in (runs_a, runs_b):
        if not any(folder.glob("*/seed*/run.json")):
            raise PipelineError(f"{folder}: no comparison runs (method/seedN/run.json) there; run the comparison first")
    result = compare_two(load_runs(runs_a), load_runs(runs_b), p["data"].genres, labels, reference,
                         p["compare"].bootstrap, mode, p["eval"].threshold, method or None,
                         seed=p["compare"].bootstrap_seed, split=split.value)
    text = compare_two_markdown(result)
    if out is not None:
        write_text(out, text)
        write_json(out.with_suffix(".json"), result)
    print(text, end="")


@app.command("product-report")
@command
def product_report_cmd(
    runs: Path = typer.Argument(..., help="Folder of <variant>/seed<k>/product_predictions.parquet (the product "
                                          "stage's eval/ file; its dvclive/product/metrics.json beside it as "
                                          "product_metrics.json), or <variant>/fold<f>/seed<k>/ for the folds of "
                                          "split.folds (pooled); variants: films, poster."),
    out: Path = typer.Option(Path("compare/product.md"), help="The report (Markdown; .json beside it)."),
    params: Path = typer.Option(Path("params.yaml"), help="Parameters file (data.genres, compare.bootstrap)."),
    bootstrap_seed: int | None = typer.Option(None,
                                              help="Seed of the bootstrap draws (default: compare.bootstrap_seed)."),
    table_v: Path | None = typer.Option(None, help="A committed films comparison summary.json (results/films): its "
                                                   "best product-rule macro F1 is set beside, for reference."),
    comparison: Path | None = typer.Option(None, help="A committed poster-only comparison summary.json "
                                                      "(results/comparison), likewise."),
) -> None:
    """The product against the paper's head on test over seeds: all films, with and without a plot; two-level
    paired bootstrap, Holm; the genres tagged on films without a plot."""
    from pipeline.core.io import write_json, write_text
    from pipeline.core.params import load_params
    from pipeline.evaluation.product_report import (
        best_product_rule,
        load_product_runs,
        load_training_curves,
        product_markdown,
        product_summary,
    )
    from pipeline.models.early_stopping import min_delta_table, replay_table

    p = load_params(params, ["data", "compare", "train"])
    found, plans, folds = load_product_runs(runs)
    seed = p["compare"].bootstrap_seed if bootstrap_seed is None else bootstrap_seed
    summary = product_summary(found, p["data"].genres, p["compare"].bootstrap, seed, plans, folds)
    curves = load_training_curves(runs)
    if curves:  # each run's validation loss per epoch: the early-stopping replay
        summary["early_stopping"] = replay_table(curves)
        summary["min_delta"] = min_delta_table(curves, p["train"].patience)
    summary["references"] = {}
    for label, path in (("Table V (films)", table_v), ("poster-only comparison", comparison)):
        if path is not None:
            method, value, std = best_product_rule(json.loads(Path(path).read_text()))
            summary["references"][label] = {"method": method, "f1_macro": value,
                                            **({"f1_macro_std": std} if std is not None else {})}
    text = product_markdown(summary)
    write_text(out, text)
    write_json(out.with_suffix(".json"), summary)
    print(text, end="")


results_app = typer.Typer(help="Keep a run's reports in git (results/), with the command and revision.",
                          no_args_is_help=True)
app.add_typer(results_app, name="results")


@results_app.command("save")
@command
def results_save(
    name: str = typer.Argument(..., help="Folder under results/ (e.g. films)."),
    command_line: str = typer.Option(..., "--command", help="The command that made the reports."),
    workspace: Path = typer.Option(Path("."), help="The workspace that ran it (a clone, a worktree)."),
    out: Path = typer.Option(Path("results"), help="Where results folders live."),
    report_revision: str | None = typer.Option(
        None, help="The revision of the code that re-made the report from the saved runs, when not the workspace's."),
    note: str | None = typer.Option(None, help="A line of context kept with the provenance."),
    kind: str = typer.Option("comparison", help="comparison (compare/ reports), main (the main run's metrics), "
                                                "compare-two (compare/compare_two.md and .json, its --out) or "
                                                "product (compare/product.md and .json, product-report's --out)."),
) -> None:
    """Copy the comparison's report and summary, the main run's metrics or compare-two's report (and the films
    reports) into results/NAME, with provenance.json (command, git revision, params that differ from the
    committed params.yaml)."""
    from pipeline.evaluation.results import FILES, save_results

    if kind not in FILES:
        raise typer.BadParameter(f"--kind must be one of {', '.join(FILES)} (got {kind!r})")
    provenance = save_results(workspace, out / name, command_line, report_revision, note, kind)
    print(json.dumps(provenance, indent=2))


@results_app.command("widths")
@command
def results_widths(
    folders: list[Path] = typer.Argument(..., help="results/ folders of one comparison reported with different "
                                                   "seeds (each with summary.json), fewest seeds first."),
) -> None:
    """How the comparison's intervals change with more seeds: per report and Holm family, the tests, how many are
    significant, the median interval widths (films + seeds, films only) and each pair's width against the first."""
    from pipeline.core.errors import PipelineError
    from pipeline.evaluation.results import interval_widths, interval_widths_markdown, load

    for folder in folders:
        if not (folder / "summary.json").exists():
            raise PipelineError(f"{folder}: no summary.json (a comparison saved by results save)")
    print(interval_widths_markdown(interval_widths([load(f, "summary.json") for f in folders])))


features_app = typer.Typer(help="Inspect the feature store.", no_args_is_help=True)
app.add_typer(features_app, name="features")


@features_app.command("show")
@command
def features_show(
    folder: Path = typer.Argument(Path("features"), help="Folder with image.h5 / text.h5."),
) -> None:
    """Shapes, dtypes and encoder identity of the feature files (image, OCR text, plot), and OCR coverage."""
    from pipeline.core.io import read_parquet
    from pipeline.features.store import describe_features

    out = {}
    for name in ("image", "text", "plot"):
        path = folder / f"{name}.h5"
        out[name] = describe_features(path) if path.exists() else "missing"
    ocr_path = folder / "ocr.parquet"
    if ocr_path.exists():
        table = read_parquet(ocr_path)
        out["ocr"] = {"posters": len(table), "with_text": int((table["texts"].list.len() > 0).sum())}
    print(json.dumps(out, indent=2))


@features_app.command("cache")
@command
def features_cache() -> None:
    """What the content-addressed cache holds: one entry per identity (kind, parts, bytes)."""
    from pipeline.features.cache import describe

    print(json.dumps(describe(), indent=2))


@features_app.command("text")
@command
def features_text(
    key: str = typer.Argument(..., help="Poster sha256 (or its first characters) or imdb id."),
    folder: Path = typer.Option(Path("features"), help="Features folder."),
    posters: Path = typer.Option(Path("data/posters.parquet"), help="Posters table."),
) -> None:
    """The OCR lines (with confidences) and embedded text of one poster."""
    import polars as pl

    from pipeline.core.io import read_parquet

    table = read_parquet(posters)
    match = table.filter((pl.col("imdb_id") == key) | pl.col("sha256").str.starts_with(key))
    if match.is_empty():
        raise typer.BadParameter(f"no poster matches {key!r}")
    # one row per poster key in each file
    ocr_rows = {r["key"]: r for r in read_parquet(folder / "ocr.parquet").iter_rows(named=True)}
    embedded = dict(read_parquet(folder / "text.parquet").select("key", "text").iter_rows())
    for r in match.iter_rows(named=True):
        o = ocr_rows.get(r["sha256"])
        print(json.dumps({
            "imdb_id": r["imdb_id"], "title": r["title"], "path": r["path"], "key": r["sha256"],
            "lines": [] if o is None else [{"text": t, "confidence": round(float(c), 3)}
                                           for t, c in zip(o["texts"], o["confidences"])],
            "embedded_text": embedded.get(r["sha256"]),
        }, indent=2))


if __name__ == "__main__":
    app()
