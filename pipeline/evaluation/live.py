"""Metrics and plots through DVCLive, the DVC ecosystem's own logger.

Train logs every epoch as it ends (training and validation loss, validation macro F1 at the
paper's threshold and macro AP), so ``dvc exp show`` shows a running experiment's progress; at
the end it adds the run's summary (best epoch, posters, the decision rule chosen). Evaluate logs
the test metrics and two plots (per-genre results, interpolated precision-recall per genre).

Every file is a DVC output declared in ``dvc.yaml`` (metrics: ``{dir}/metrics.json``; plots:
``{dir}/plots/``, rendered by the top-level ``plots:`` of ``dvc.yaml``), so ``dvc metrics diff``
and ``dvc plots diff`` compare experiments. ``Live`` runs with ``save_dvc_exp=False`` (DVC's own
``dvc exp run`` makes the experiment) and ``dvcyaml=None`` (the project's ``dvc.yaml`` declares
the files; DVCLive must not write a second one). No timestamps are logged and the step is the
epoch, so the same run writes the same bytes. DVCLive writes in place, not by rename: DVC removes a
stage's outputs when the stage starts, so there is no earlier good output to keep.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from pipeline.scoring.metrics import average_precision, f1

if TYPE_CHECKING:
    import polars as pl
    from dvclive import Live

    from pipeline.models.datasets import Dataset
    from pipeline.models.train import ChosenRule, EpochRecord, TrainSummary


def open_live(folder: str | Path) -> Live:
    """A DVCLive logger writing under ``folder`` (emptied first, as DVCLive does)."""
    from dvclive import Live

    return Live(dir=str(folder), save_dvc_exp=False, dvcyaml=None, report=None)


def _rounded(value: float) -> float:
    return round(float(value), 6)


class EpochLogger:
    """A train hook (``pipeline.models.train.EpochHook``): logs each epoch to ``live``, step = epoch.

    It reads the validation scores of the pass that gave the epoch's validation loss (no second pass), and
    changes nothing: training with or without the logger gives the same model (tested)."""

    def __init__(self, live: Live, val: Dataset, threshold: float = 0.5):
        self.live, self.val, self.threshold = live, val, threshold

    def __call__(self, record: EpochRecord, model: torch.nn.Module, scores: np.ndarray) -> None:
        y = self.val.labels.numpy()
        self.live.step = record.epoch
        self.live.log_metric("train/loss", record.train_loss)
        self.live.log_metric("val/loss", record.val_loss)
        self.live.log_metric("val/f1_macro", _rounded(f1(y, (scores > self.threshold).astype(np.int64), "macro")))
        self.live.log_metric("val/average_precision_macro", _rounded(np.nanmean(average_precision(y, scores))))
        self.live.make_summary()


def log_train_summary(live: Live, summary: TrainSummary, posters: dict[str, int],
                      rules: dict[str, ChosenRule]) -> None:
    """The run's figures beside the last epoch's: best epoch and loss, epochs, parameters, posters, and the
    decision (calibration and rule) chosen for each input pattern."""
    from dataclasses import asdict

    live.summary.update(summary.reproducible() | posters | {"decision_rule": {p: asdict(r) for p, r in rules.items()}})
    live.make_summary()


def _records(table: pl.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain dicts; NaN (a genre without a positive test poster) becomes null, valid JSON."""
    return [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
            for row in table.to_dicts()]


def log_evaluation(live: Live, metrics: dict[str, Any], per_genre: pl.DataFrame, pr_curves: pl.DataFrame,
                   calibration: pl.DataFrame | None = None, reliability: dict[str, pl.DataFrame] | None = None) -> None:
    """Test metrics (``metrics.json``) and the evaluation plots (``plots/custom/*.json``): per-genre F1,
    precision-recall, ECE per genre and calibration, and the reliability diagram."""
    live.summary.update(metrics)
    if calibration is not None:
        live.log_plot("calibration", _records(calibration), x="none", y="genre", template="bar_horizontal",
                      title="Expected calibration error per genre on test (as trained)")
    for name, points in (reliability or {}).items():
        which = "calibrated probabilities" if name.endswith("calibrated") else "scores as trained"
        live.log_plot(name, _records(points), x="confidence", y="frequency", template="linear",
                      title=f"Reliability on test, {which}: observed frequency against mean probability (15 bins)")
    live.log_plot("per_genre", _records(per_genre), x="f1", y="genre",
                  template="bar_horizontal", title="Test F1 per genre")
    live.log_plot("precision_recall", _records(pr_curves), x="recall",
                  y=str(pr_curves.columns[1]), title="Precision-recall per genre (test, interpolated)")
    live.make_summary()
