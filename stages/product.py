"""Stage ``product``: the model ``poster-genres predict`` serves -> ``models/product.pt`` + ``dvclive/product``.

Trains the ``product.candidates`` methods once (train.seed), takes the main pipeline's model beside them, and
chooses per input pattern on the validation split (:func:`pipeline.models.product.choose_product`); then
scores the test split with the product and with the main model alone, on every film and on the films with
and without a plot."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.core.io import write_parquet
from pipeline.core.params import FusionParams, LossParams, TrainParams, load_params
from pipeline.evaluation.evaluate import decided_figures, product_predictions
from pipeline.evaluation.live import open_live
from pipeline.evaluation.methods import method_fusion, method_label, method_training, reads_films
from pipeline.models.checkpoint import load_head, record_inputs
from pipeline.models.datasets import hide_films, load_datasets
from pipeline.models.product import MAIN, WITHHELD, product_from_head, save_product
from pipeline.models.train import Candidate, build_product
from stages._command import command


@command
def main(
    params: Path = typer.Option(Path("params.yaml"), help="Parameters file."),
    model: Path = typer.Option(Path("models/model.pt"), help="The main pipeline's model (train), a candidate."),
    features: Path = typer.Option(Path("features"), help="Folder of image/text/plot features."),
    posters: Path = typer.Option(Path("data/posters.parquet"), help="Posters table from ingest."),
    split: Path = typer.Option(Path("data/split.parquet"), help="Split from the split stage."),
    films: Path = typer.Option(Path("data/films.parquet"), help="Films table (plot, metadata) from films."),
    out: Path = typer.Option(Path("models/product.pt"), help="The product: members and a plan per input pattern."),
    live: Path = typer.Option(Path("dvclive/product"), help="DVCLive folder: metrics.json (the choice on validation, "
                              "the product and the main model on test)."),
    predictions: Path = typer.Option(Path("eval/product_predictions.parquet"),
                                     help="Test films: labels, the product's and the main model's genres and "
                                          "decisions (what `poster-genres results product` pairs across seeds)."),
) -> None:
    """Choose the product on validation among the main model and product.candidates (per input pattern: poster
    only, with a plot; by eval.rule_metric of the cross-fitted product rule), and measure it on test."""
    p = load_params(params, ["data", "fusion", "train", "loss", "eval", "product"])
    genres, ev, fusion = p["data"].genres, p["eval"], p["fusion"]
    _, main_ckpt = load_head(model)
    inputs = load_datasets(features, posters, split, genres, films, fusion.metadata_names, fusion.metadata_buckets,
                           spec=main_ckpt.get("metadata_spec"))
    datasets = inputs.datasets
    films_available = "has_plot" in datasets["train"].tensors
    candidates, skipped = [], []
    for name in p["product"].candidates:
        if reads_films(name) and not films_available:
            skipped.append(name)
            continue
        train, loss = method_training(name, p["train"].model_dump(), p["loss"].model_dump())
        candidates.append(Candidate(name, FusionParams(**method_fusion(name, fusion.model_dump())),
                                    TrainParams(**train), LossParams(**loss)))
    if skipped:
        print(f"product: skipped {', '.join(skipped)} (they read a film's plot or metadata; data.films is null)")
    product, trained = build_product(datasets, inputs.dims, genres, main_ckpt, candidates, ev.rule_metric,
                                     ev.threshold, ev.calibration, p["product"].average_top,
                                     on_trained=lambda ckpt: record_inputs(ckpt, inputs))
    for name, summary in ((n, r.summary) for n, r in trained.items()):
        print(f"product: {name} ({method_label(name)}): {summary.epochs_run} epochs in {summary.seconds:.1f} s, "
              f"best epoch {summary.best_epoch}")
    save_product(product, out)

    test = datasets["test"]
    has_plot = test.tensors["has_plot"].numpy() if "has_plot" in test.tensors else None
    y = test.labels.numpy()
    scores = product.member_scores(test)
    main_alone = product_from_head(main_ckpt, ev.threshold)
    decided, main_decided = product.decide(test, scores), main_alone.decide(test, {MAIN: scores[MAIN]})
    # every test film again with its synopsis and metadata withheld: the no-plot plan judged on the ~9 in 10 test
    # films that have a plot, not only on the few that arrive without one
    hidden = hide_films(test, product.metadata_spec) if has_plot is not None else None
    withheld = product.decide(hidden, product.member_scores(hidden)) if hidden is not None else None
    write_parquet(predictions, product_predictions(test.keys, test.imdb_ids, has_plot, y, genres, decided,
                                                   main_decided, withheld))
    figures = {
        "validation": product.choice,
        # epochs run, the best (early-stopped) epoch and the validation loss per epoch of each candidate trained
        # here (what an early-stopping setting is judged on): byte-stable, unlike seconds
        "training": {name: {**r.summary.reproducible(), "val_loss": [e.val_loss for e in r.curve]}
                     for name, r in trained.items()},
        "plans": {pattern: {"members": plan.label, "calibration": plan.decision.calibration_method,
                            "rule": plan.decision.rule.name} for pattern, plan in product.plans.items()},
        "test": {"product": decided_figures(y, decided, has_plot, genres),
                 MAIN: decided_figures(y, main_decided, has_plot, genres),
                 **({WITHHELD: decided_figures(y, withheld, has_plot, genres)} if withheld is not None else {})},
    }
    with open_live(live) as logger:
        logger.summary.update(figures)
        logger.make_summary()
    for pattern, plan in product.plans.items():
        chosen = product.choice["patterns"][pattern]
        print(f"product: {pattern} ({chosen['posters']} validation posters): {plan.label}, calibration "
              f"{plan.decision.calibration_method}, rule {plan.decision.rule.name} ({ev.rule_metric} cross-fitted "
              f"{chosen['candidates'][chosen['chosen']][ev.rule_metric]:.4f})")
    for who, by_subset in figures["test"].items():
        for subset, f in by_subset.items():
            if subset != "tags_without_plot":
                print(f"product: test, {who}, {subset} ({f['posters']} posters): macro F1 {f['f1_macro']:.4f}, "
                      f"samples F1 {f['f1_samples']:.4f}, genres per poster {f['genres_per_poster']:.2f}")


if __name__ == "__main__":
    typer.run(main)
