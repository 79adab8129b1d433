"""Stage ``train``: the fusion head on cached features -> ``models/model.pt`` + curve + summary."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.core.params import load_params
from pipeline.evaluation.live import EpochLogger, log_train_summary, open_live
from pipeline.models.checkpoint import record_inputs, save_checkpoint
from pipeline.models.datasets import load_datasets
from pipeline.models.train import attach_decisions, train_head
from stages._command import command


@command
def main(
    params: Path = typer.Option(Path("params.yaml"), help="Parameters file."),
    features: Path = typer.Option(Path("features"), help="Folder of image/text features."),
    posters: Path = typer.Option(Path("data/posters.parquet"), help="Posters table from ingest."),
    split: Path = typer.Option(Path("data/split.parquet"), help="Split from the split stage."),
    films: Path = typer.Option(Path("data/films.parquet"), help="Films table (plot, metadata) from films."),
    model: Path = typer.Option(Path("models/model.pt"), help="Best checkpoint (lowest validation loss)."),
    live: Path = typer.Option(Path("dvclive/train"), help="DVCLive folder: metrics.json (per epoch while "
                              "training, then the run's summary) and plots/ (one file per metric, by epoch)."),
) -> None:
    """Train the head named by fusion.head with train.* and loss.* (paper defaults); then choose the product's
    calibration and decision rule on the validation split (eval.calibration, eval.rule_metric), one per input
    pattern (poster only; with a plot), and save them in the checkpoint."""
    p = load_params(params, ["data", "fusion", "train", "loss", "eval"])  # data: genres only (films: its table)
    genres = p["data"].genres
    fusion = p["fusion"]
    inputs = load_datasets(features, posters, split, genres, films, fusion.metadata_names, fusion.metadata_buckets)
    datasets, info = inputs.datasets, inputs.info
    with open_live(live) as logger:
        result = train_head(datasets, inputs.dims, genres, fusion, p["train"], p["loss"],
                            on_epoch=EpochLogger(logger, datasets["val"], p["eval"].threshold))
        checkpoint, summary = result.checkpoint, result.summary
        record_inputs(checkpoint, inputs)
        rules = attach_decisions(checkpoint, datasets["val"], p["eval"].rule_metric, p["eval"].threshold,
                                 p["eval"].calibration)
        save_checkpoint(checkpoint, model)
        # Seconds vary run to run: printed, not written, so outputs stay byte-identical.
        log_train_summary(logger, summary, {k: v for k, v in info.items() if k != "metadata_spec"}, rules)
    print(f"train: {summary.epochs_run} epochs in {summary.seconds} s on {summary.device}, "
          f"best epoch {summary.best_epoch} (val loss {summary.best_val_loss})")
    for pattern, rule in rules.items():
        print(f"train: {pattern} ({rule.posters} validation posters): calibration {rule.calibration}, decision rule "
              f"{rule.name}: {rule.metric} {rule.validation_score:.4f} on validation (paper's rule "
              f"{rule.validation_score_paper_rule:.4f}), genres per poster {rule.genres_per_poster:.2f} (paper's rule "
              f"{rule.genres_per_poster_paper_rule:.2f}, true {rule.genres_per_poster_true:.2f})")


if __name__ == "__main__":
    typer.run(main)
