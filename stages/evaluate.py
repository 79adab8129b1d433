"""Stage ``evaluate``: the trained head on the test split -> metrics, per-genre table, PR curves."""

from __future__ import annotations

from pathlib import Path

import torch
import typer

from pipeline.core.io import write_json, write_parquet
from pipeline.core.params import load_params
from pipeline.evaluation.evaluate import (
    calibration_table,
    evaluate_scores,
    paper_rule,
    plot_subsets,
    predictions_table,
    reliability_points,
    rounded,
    rule_figures,
)
from pipeline.evaluation.live import log_evaluation, open_live
from pipeline.evaluation.review import split_cards, write_review
from pipeline.models.checkpoint import load_head, modalities
from pipeline.models.datasets import load_datasets, predict_scores
from pipeline.models.product import MAIN, product_from_head
from pipeline.scoring.calibration import calibration_figures
from pipeline.scoring.decisions import POSTER_ONLY, decisions_line
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
    ocr: Path = typer.Option(Path("features/ocr.parquet"), help="OCR lines and boxes (the review page shows them)."),
    review: Path = typer.Option(Path("eval/review"), help="Review page of the test split (index.html, thumbs/)."),
) -> None:
    """Score the test split with the paper's rule (eval.threshold, or per-genre thresholds tuned on validation)
    and compute every metric; beside them, genres per poster, the product rule (the checkpoint's, on its calibrated
    probabilities) and calibration on test; write the review page of the test posters."""
    p = load_params(params, ["eval", "ocr", "encoder"])
    ev = p["eval"]
    head, ckpt = load_head(model)
    genres = ckpt["genres"]
    # the films table always (test films with and without a plot are reported apart); a model that reads
    # metadata gets the spec fitted on the training films when it was trained
    datasets = load_datasets(features, posters, split, genres, films, spec=ckpt.get("metadata_spec")).datasets
    test, val = datasets["test"], datasets["val"]
    device = torch.device("cpu")
    # thresholds see validation posters only, never the test split
    s_val = predict_scores(head, val, device)
    paper = paper_rule(ev.threshold_mode, ev.threshold, val.labels.numpy(), s_val, genres)
    main = product_from_head(ckpt, ev.threshold)
    if main.note:
        print(f"evaluate: {main.note}")
    scores = predict_scores(head, test, device)
    # the probabilities people read and the product's genres: each test film's input pattern (poster only, or
    # with a plot) gets the calibration and rule train fitted for it; the paper's rule reads the head's own scores
    decided = main.decide(test, {MAIN: scores})
    probs = decided.probabilities
    y = test.labels.numpy()
    result, table, curves = evaluate_scores(y, scores, genres, paper)
    metrics = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in result.items() if k != "per_genre"}
    figures = rule_figures(y, scores, paper, decided)
    if "has_plot" in test.tensors:  # data.films set: the same figures on test films with and without a plot
        figures |= plot_subsets(y, scores, test.tensors["has_plot"].numpy(), paper, decided, modalities(ckpt), genres)
    y_val = val.labels.numpy()
    calibration = calibration_figures(y_val, s_val, y, scores, genres)
    applied = sorted({d.calibration_method for d in main.decisions.values()})
    figures["calibration"] = {"applied": "+".join(applied),
                              "ece_macro": {m: c["ece_macro"] for m, c in calibration.items()}}
    # Per-genre results live in the per_genre plot (a plot and a table), keeping `dvc metrics show` readable.
    with open_live(live) as logger:
        log_evaluation(logger, metrics | figures, rounded(table, 6), curves,
                       calibration_table(calibration, genres),
                       reliability_points(y, scores, probs, genres))
    write_parquet(predictions, predictions_table(test.keys, test.imdb_ids, y, scores, genres, paper, decided))
    notes: list[str] = []
    thresholds_of = {p: d.rule.thresholds for p, d in main.decisions.items()}
    cards = split_cards(posters, ocr, test, probs, decided.chosen, genres, head, ckpt, p["ocr"], p["encoder"], notes,
                        rules=decided.rules,
                        thresholds=[thresholds_of.get(p, thresholds_of[POSTER_ONLY]) for p in decided.patterns])
    calibrations = ", ".join(f"{p} {d.calibration_method}" for p, d in main.decisions.items())
    written = write_review(review, cards, genres, title="Test posters: genres predicted against the truth",
                           rule=decisions_line(main.decisions),
                           thresholds=main.plan_for(POSTER_ONLY).decision.rule.thresholds,
                           notes=notes + [f"probabilities calibrated per input pattern, fitted on validation: "
                                          f"{calibrations}"])
    write_json(thresholds, {"mode": ev.threshold_mode, "thresholds": paper.to_dict()["thresholds"]})
    print(f"evaluate: {result['posters']} test posters: macro F1 {result['f1_macro']:.4f}, "
          f"micro F1 {result['f1_micro']:.4f}, hit {result['hit']:.4f}; genres per poster "
          f"{figures['genres_per_poster']:.2f} (paper's rule), {figures['product_rule']['genres_per_poster']:.2f} "
          f"(product rule), true {figures['genres_per_poster_true']:.2f}")
    eces = figures["calibration"]["ece_macro"]
    print(f"evaluate: macro ECE on test {eces['none']:.4f} as trained, {eces['temperature']:.4f} with temperature, "
          f"{eces['platt']:.4f} with Platt scaling (fitted on validation); "
          f"applied: {figures['calibration']['applied']}")
    print(f"evaluate: review page {review / 'index.html'} ({written['cards']} posters, "
          f"{written['without_thumbnail']} without a thumbnail)")


if __name__ == "__main__":
    typer.run(main)
