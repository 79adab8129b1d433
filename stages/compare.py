"""Stage ``compare`` (one per method x seed): train a method on the cached features, keep its
validation and test scores -> ``compare/runs/<method>/seed<k>/``. Thresholds are the report's
business (post-hoc), so ``eval.*`` never re-trains a run."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import torch
import typer

from pipeline.core.io import write_json, write_parquet
from pipeline.core.params import FusionParams, LossParams, TrainParams, load_params
from pipeline.evaluation.methods import method_fusion, method_training
from pipeline.evaluation.runs import branch_figures, has_plot, run_frame
from pipeline.models.checkpoint import head_from_checkpoint
from pipeline.models.datasets import load_datasets, predict_scores
from pipeline.models.train import train_head
from stages._command import command


@command
def main(
    method: str = typer.Option(..., help="A method of pipeline/evaluation/methods.py (e.g. ours, gmu, naive)."),
    seed: int = typer.Option(0, help="Training seed."),
    params: Path = typer.Option(Path("params.yaml"), help="Parameters file."),
    features: Path = typer.Option(Path("features"), help="Folder of image/text features."),
    posters: Path = typer.Option(Path("data/posters.parquet"), help="Posters table from ingest."),
    split: Path = typer.Option(Path("data/split.parquet"), help="Split from the split stage."),
    films: Path = typer.Option(Path("data/films.parquet"), help="Films table (plot, metadata) from films."),
    out: Path = typer.Option(Path("compare/runs"), help="Runs folder (<method>/seed<k>/ is written)."),
) -> None:
    """Train one method with one seed (training options from train.* and loss.*, but where the method's paper
    sets them)."""
    p = load_params(params, ["data", "fusion", "train", "loss", "compare"])
    genres = p["data"].genres
    fusion = FusionParams(**method_fusion(method, p["fusion"].model_dump()))
    train, loss = method_training(method, p["train"].model_dump(), p["loss"].model_dump())
    # compare.patience, not train.patience: long curves, which the report replays under any smaller patience
    train, loss = TrainParams(**{**train, "seed": seed, "patience": p["compare"].patience}), LossParams(**loss)
    inputs = load_datasets(features, posters, split, genres, films, fusion.metadata_names, fusion.metadata_buckets)
    datasets = inputs.datasets
    result = train_head(datasets, inputs.dims, genres, fusion, train, loss)
    summary = result.summary
    head = head_from_checkpoint(result.checkpoint)
    cpu = torch.device("cpu")
    val, test = datasets["val"], datasets["test"]
    s_val, s_test = predict_scores(head, val, cpu), predict_scores(head, test, cpu)
    folder = out / method / f"seed{seed}"
    frames = [run_frame(val.keys, val.imdb_ids, "val", val.labels.numpy(), s_val, genres, has_plot(val)),
              run_frame(test.keys, test.imdb_ids, "test", test.labels.numpy(), s_test, genres, has_plot(test))]
    write_parquet(folder / "scores.parquet", pl.concat(frames))
    branches = branch_figures(head, val, cpu)
    write_json(folder / "run.json", {
        "method": method, "seed": seed, "epochs_run": summary.epochs_run, "best_epoch": summary.best_epoch,
        "best_val_loss": summary.best_val_loss, "parameters": summary.parameters,
        "val_loss": [e.val_loss for e in result.curve],  # per epoch: what an early-stopping setting is judged on
        **({"branches": branches} if branches else {}),
    })
    # wall time varies run to run: kept apart so run.json and scores stay byte-identical
    write_json(folder / "timing.json", {"seconds": round(summary.seconds, 2), "device": summary.device})
    print(f"compare: {method} seed {seed}: {summary.epochs_run} epochs in {summary.seconds:.1f} s")


if __name__ == "__main__":
    typer.run(main)
