"""Stage ``evaluate``: the trained head on the test split -> metrics, per-genre table, PR curves."""

from __future__ import annotations

from pathlib import Path

import typer

import torch

from pipeline.evaluate import decision_thresholds, evaluate_scores, predictions_table
from pipeline.features import load_feature_pair
from pipeline.io import read_parquet, write_csv, write_json, write_parquet
from pipeline.params import load_params
from pipeline.train import build_datasets, load_head, predict_scores
from stages._command import command


@command
def main(
    params: Path = typer.Option(Path("params.yaml"), help="Parameters file."),
    model: Path = typer.Option(Path("models/model.pt"), help="Checkpoint from train."),
    features: Path = typer.Option(Path("features"), help="Folder of image/text features."),
    posters: Path = typer.Option(Path("data/posters.parquet"), help="Posters table from ingest."),
    split: Path = typer.Option(Path("data/split.parquet"), help="Split from the split stage."),
    metrics: Path = typer.Option(Path("metrics/eval.json"), help="Test metrics (dvc metrics)."),
    per_genre: Path = typer.Option(Path("plots/per_genre.csv"), help="Per-genre results (dvc plots)."),
    pr_curve: Path = typer.Option(Path("plots/pr_curve.csv"), help="Precision-recall curves (dvc plots)."),
    predictions: Path = typer.Option(Path("eval/test_predictions.parquet"), help="Test scores per poster."),
    thresholds: Path = typer.Option(Path("eval/thresholds.json"), help="Decision threshold per genre."),
) -> None:
    """Score the test split (eval.threshold, or per-genre thresholds tuned on validation) and compute every metric."""
    ev = load_params(params, ["eval"])["eval"]
    head, ckpt = load_head(model)
    genres = ckpt["genres"]
    image, text = load_feature_pair(features)
    datasets, _ = build_datasets(read_parquet(posters), read_parquet(split), image, text, genres)
    test, val = datasets["test"], datasets["val"]
    device = torch.device("cpu")
    # thresholds see validation posters only, never the test split
    tau = decision_thresholds(ev.threshold_mode, ev.threshold, val.labels.numpy(), predict_scores(head, val, device))
    scores = predict_scores(head, test, device)
    y = test.labels.numpy()
    result, table, curves = evaluate_scores(y, scores, genres, tau)
    rounded = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in result.items() if k != "per_genre"}
    # Per-genre results live in per_genre.csv (a plot and a table), keeping `dvc metrics show` readable.
    write_json(metrics, rounded)
    write_csv(per_genre, table.round(6))
    write_csv(pr_curve, curves)
    write_parquet(predictions, predictions_table(test.keys, test.imdb_ids, y, scores, genres, tau))
    write_json(thresholds, {"mode": ev.threshold_mode, "thresholds": {g: float(t) for g, t in zip(genres, tau)}})
    print(f"evaluate: {result['posters']} test posters: macro F1 {result['f1_macro']:.4f}, "
          f"micro F1 {result['f1_micro']:.4f}, hit {result['hit']:.4f}")


if __name__ == "__main__":
    typer.run(main)
