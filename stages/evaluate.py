"""Stage ``evaluate``: the trained head on the test split -> metrics, per-genre table, PR curves."""

from __future__ import annotations

from pathlib import Path

import torch
import typer

from pipeline.core.io import write_json, write_parquet
from pipeline.core.params import load_params
from pipeline.evaluation.evaluate import (
    evaluate_scores,
    paper_rule,
    plot_subsets,
    predictions_table,
    rounded,
    rule_figures,
)
from pipeline.evaluation.live import log_evaluation, open_live
from pipeline.evaluation.thresholds import checkpoint_rule
from pipeline.models.checkpoint import load_head, modalities
from pipeline.models.datasets import load_datasets, predict_scores
from stages._command import command


@command
def main(
    params: Path = typer.Option(Path("params.yaml"), help="Parameters file."),
    model: Path = typer.Option(Path("models/model.pt"), help="Checkpoint from train."),
    features: Path = typer.Option(Path("features"), help="Folder of image/text features."),
    posters: Path = typer.Option(Path("data/posters.parquet"), help="Posters table from ingest."),
    split: Path = typer.Option(Path("data/split.parquet"), help="Split from the split stage."),
    films: Path = typer.Option(Path("data/films.parquet"), help="Films table (plot, metadata) from films."),
    live: Path = typer.Option(Path("dvclive/evaluate"), help="DVCLive folder: metrics.json (test metrics, both "
                              "rules) and plots/custom/ (per-genre results, precision-recall per genre)."),
    predictions: Path = typer.Option(Path("eval/test_predictions.parquet"), help="Test scores per poster."),
    thresholds: Path = typer.Option(Path("eval/thresholds.json"), help="The paper's rule's threshold per genre."),
) -> None:
    """Score the test split with the paper's rule (eval.threshold, or per-genre thresholds tuned on validation)
    and compute every metric; beside them, genres per poster and the product rule (the checkpoint's) on test."""
    ev = load_params(params, ["eval"])["eval"]
    head, ckpt = load_head(model)
    genres = ckpt["genres"]
    # the films table always (test films with and without a plot are reported apart); a model that reads
    # metadata gets the spec fitted on the training films when it was trained
    datasets = load_datasets(features, posters, split, genres, films, spec=ckpt.get("metadata_spec")).datasets
    test, val = datasets["test"], datasets["val"]
    device = torch.device("cpu")
    # thresholds see validation posters only, never the test split
    paper = paper_rule(ev.threshold_mode, ev.threshold, val.labels.numpy(), predict_scores(head, val, device), genres)
    product, note = checkpoint_rule(ckpt, ev.threshold)
    if note:
        print(f"evaluate: {note}")
    scores = predict_scores(head, test, device)
    y = test.labels.numpy()
    result, table, curves = evaluate_scores(y, scores, genres, paper)
    metrics = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in result.items() if k != "per_genre"}
    figures = rule_figures(y, scores, paper, product)
    if "has_plot" in test.tensors:  # data.films set: the same figures on test films with and without a plot
        figures |= plot_subsets(y, scores, test.tensors["has_plot"].numpy(), paper, product, modalities(ckpt), genres)
    # Per-genre results live in the per_genre plot (a plot and a table), keeping `dvc metrics show` readable.
    with open_live(live) as logger:
        log_evaluation(logger, metrics | figures, rounded(table, 6), curves)
    write_parquet(predictions, predictions_table(test.keys, test.imdb_ids, y, scores, genres, paper, product))
    write_json(thresholds, {"mode": ev.threshold_mode, "thresholds": paper.to_dict()["thresholds"]})
    print(f"evaluate: {result['posters']} test posters: macro F1 {result['f1_macro']:.4f}, "
          f"micro F1 {result['f1_micro']:.4f}, hit {result['hit']:.4f}; genres per poster "
          f"{figures['genres_per_poster']:.2f} (paper's rule), {figures['product_rule']['genres_per_poster']:.2f} "
          f"({product.name}), true {figures['genres_per_poster_true']:.2f}")


if __name__ == "__main__":
    typer.run(main)
