"""Training a fusion head on cached features (no OCR or encoder runs here).

The loop follows the paper: Adam (lr 1e-4, betas 0.9/0.999, eps 1e-8), batch
32, up to 100 epochs, early stopping with patience 10 on the validation loss,
and the best checkpoint (lowest validation loss) kept. Seeds are fixed and
torch runs in deterministic mode, so the same features and params give the
same checkpoint.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from pipeline.core.checkpoint import HeadCheckpoint
from pipeline.core.devices import resolve_device
from pipeline.core.params import FusionParams, LossParams, TrainParams
from pipeline.core.progress import progress_bar
from pipeline.models.checkpoint import head_from_checkpoint, make_checkpoint
from pipeline.models.datasets import Dataset, loss_and_scores, mean_loss, pattern_scores
from pipeline.models.early_stopping import EarlyStopping
from pipeline.models.heads import create_head, head_config
from pipeline.models.losses import create_loss
from pipeline.models.product import MAIN, Member, Product, choose_product
from pipeline.scoring.decisions import POSTER_ONLY, Decision, fit_decision


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of training: mean training loss over its batches, loss on the validation split."""

    epoch: int
    train_loss: float
    val_loss: float


@dataclass(frozen=True)
class TrainSummary:
    best_epoch: int
    best_val_loss: float
    epochs_run: int
    parameters: int
    seconds: float  # wall time: varies run to run, never written where outputs must be byte-identical
    device: str

    def reproducible(self) -> dict[str, Any]:
        """The fields that are the same for the same inputs (no wall time, no device)."""
        return {k: v for k, v in asdict(self).items() if k not in ("seconds", "device")}


@dataclass
class TrainResult:
    checkpoint: HeadCheckpoint  # plain data for torch.save
    curve: list[EpochRecord]
    summary: TrainSummary


@dataclass(frozen=True)
class ChosenRule:
    """The product's decision rule chosen on validation, with the figures behind the choice."""

    name: str
    max_genres: int | None
    metric: str
    validation_score: float
    validation_score_paper_rule: float
    genres_per_poster: float
    genres_per_poster_paper_rule: float
    genres_per_poster_true: float
    calibration: str = "none"
    posters: int = 0


#: Called after every epoch with the record and the model (in its state after that epoch).
EpochHook = Callable[[EpochRecord, torch.nn.Module, np.ndarray], None]  # the epoch, the model, validation scores


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def epoch_batches(n: int, batch_size: int, generator: torch.Generator, weights: torch.Tensor | None = None,
                  lengths: torch.Tensor | None = None, pool_batches: int = 50) -> list[torch.Tensor]:
    """Index batches of one training epoch.

    A random permutation (or, with ``weights``, ``n`` draws with replacement), cut into
    batches. With ``lengths``, posters are grouped by length first: the order is cut into
    pools of ``pool_batches`` batches, each pool sorted by length (longest first), cut into
    batches, and the batches shuffled, so a batch holds similar lengths but every epoch still
    mixes the whole training set.
    """
    order = (torch.multinomial(weights, n, replacement=True, generator=generator)
             if weights is not None else torch.randperm(n, generator=generator))
    if lengths is None:
        return [order[s:s + batch_size] for s in range(0, n, batch_size)]
    pool = batch_size * pool_batches
    batches = []
    for s in range(0, n, pool):
        part = order[s:s + pool]
        part = part[torch.argsort(lengths[part], descending=True, stable=True)]
        batches += [part[b:b + batch_size] for b in range(0, len(part), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def train_head(
    datasets: dict[str, Dataset],
    dims: dict[str, int],
    genres: list[str],
    fusion: FusionParams,
    train: TrainParams,
    loss: LossParams,
    on_epoch: EpochHook | None = None,
) -> TrainResult:
    """Train; return the best checkpoint, the per-epoch curve and a summary.

    ``on_epoch`` (e.g. a DVCLive logger) sees every epoch as it ends, with the validation scores of the pass
    that gave its validation loss; it must not change the model."""
    seed_everything(train.seed)
    device = resolve_device(train.device, "train.device")
    config = head_config(fusion, dims, len(genres))
    model = create_head(config).to(device)
    loss_fn = make_loss(loss, datasets["train"].labels)
    if not getattr(model, "trainable", True):
        return _fit_untrainable(model, datasets, config, genres, loss_fn, device, on_epoch)
    opt = torch.optim.Adam(model.parameters(), lr=train.lr, betas=tuple(train.betas), eps=train.eps)
    # the compiled module shares the model's parameters: it takes the training steps, the model itself the
    # validation passes and the checkpoint (its state_dict keys stay the model's own)
    step_model = torch.compile(model, dynamic=True) if train.compile else model
    gen = torch.Generator().manual_seed(train.seed)
    tr, va = datasets["train"], datasets["val"]

    # plot dropout draws from its own generator, so batch order is the same with and without it
    hide_gen = torch.Generator().manual_seed(train.seed + 1)
    hide_plots = train.plot_dropout > 0 and "has_plot" in tr.tensors
    sample_weights = oversampling_weights(tr.labels) if train.oversample else None
    # grouping by OCR-text length only pays where a head reads text token sequences (padding cut per batch);
    # every other head's batches stay independent of the OCR text
    lengths = tr.text_lengths() if train.group_by_length and getattr(model, "reads_text_tokens", False) else None
    rule = EarlyStopping(train.patience)
    state = None
    curve: list[EpochRecord] = []
    t0 = time.perf_counter()
    with progress_bar("epochs") as bar:
        task = bar.add_task("train", total=train.epochs)
        for epoch in range(1, train.epochs + 1):
            model.train()
            total, n = 0.0, 0
            for idx in epoch_batches(len(tr), train.batch_size, gen, sample_weights, lengths):
                feats, y = tr.batch(idx, device)
                if hide_plots:  # as if the catalogue had no synopsis for these films
                    hidden = torch.rand(len(idx), generator=hide_gen) < train.plot_dropout
                    feats["has_plot"] = feats["has_plot"] & ~hidden.to(device)
                batch_loss = batch_training_loss(step_model, feats, y, loss_fn, train.precision)
                opt.zero_grad(set_to_none=True)
                batch_loss.backward()
                opt.step()
                total += batch_loss.item() * len(idx)
                n += len(idx)
            val_loss, val_scores = loss_and_scores(model, va, loss_fn, device)
            curve.append(EpochRecord(epoch, round(total / n, 6), round(val_loss, 6)))
            if on_epoch is not None:
                on_epoch(curve[-1], model, val_scores)
            if rule.update(epoch, val_loss):
                state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            bar.update(task, advance=1, description=f"train (val {val_loss:.4f}, best {rule.best_loss:.4f})")
            if not bar.console.is_terminal:  # logs (dvc repro in CI, nohup): one line per epoch
                bar.console.print(f"epoch {epoch}: train loss {total / n:.5f}, val loss {val_loss:.5f}, "
                                  f"{time.perf_counter() - t0:.0f} s")
            if rule.stop:
                break
    seconds = time.perf_counter() - t0
    checkpoint = make_checkpoint(config, genres, state, rule.best_epoch, rule.best_loss)
    summary = TrainSummary(best_epoch=rule.best_epoch, best_val_loss=round(rule.best_loss, 6), epochs_run=len(curve),
                           parameters=int(sum(p.numel() for p in model.parameters())), seconds=round(seconds, 2),
                           device=device.type)
    return TrainResult(checkpoint, curve, summary)


def attach_decisions(checkpoint: HeadCheckpoint, val: Dataset, metric: str = "f1_samples", threshold: float = 0.5,
                     calibration: str = "auto") -> dict[str, ChosenRule]:
    """Fit each input pattern's decision (calibration and product rule) on validation and save them in
    ``checkpoint["decisions"]`` (pattern -> :meth:`Decision.to_dict`); return what was chosen per pattern.

    The validation scores are those of the checkpoint's head (the best epoch). A head that reads plots gets a
    ``poster_only`` decision fitted on scores computed with the films' plots hidden, so a film that arrives
    without a synopsis is decided by thresholds that were fitted on films like it; a poster-only head gets
    ``poster_only`` alone. Rounded figures: the checkpoint stays byte-identical for the same inputs."""
    head = head_from_checkpoint(checkpoint, "cpu")
    for key in ("decision_rule", "decision_rule_validation", "calibration"):
        checkpoint.pop(key, None)
    patterns = pattern_scores({"head": head}, val, checkpoint.get("metadata_spec"))
    if not head.config.get("plot"):  # its scores do not depend on the plot: one decision, on every film
        patterns = {POSTER_ONLY: patterns[POSTER_ONLY]}
    decisions = {pattern: fit_decision(pattern, y, s["head"], checkpoint["genres"], films, metric, threshold,
                                       calibration)
                 for pattern, (y, s, films) in patterns.items()}
    checkpoint["decisions"] = {p: d.to_dict() for p, d in decisions.items()}
    return {p: chosen_rule(d, metric) for p, d in decisions.items()}


def chosen_rule(decision: Decision, metric: str) -> ChosenRule:
    """The figures behind a decision's rule, for the stage's metrics."""
    report = decision.validation
    chosen = report["chosen"]
    return ChosenRule(name=decision.rule.name, max_genres=decision.rule.max_genres, metric=metric,
                      validation_score=chosen[metric], validation_score_paper_rule=report["paper"][metric],
                      genres_per_poster=chosen["genres_per_poster"],
                      genres_per_poster_paper_rule=report["paper"]["genres_per_poster"],
                      genres_per_poster_true=report["genres_per_poster_true"], calibration=decision.calibration_method,
                      posters=report["posters"])


def make_loss(loss: LossParams, train_labels: torch.Tensor):
    return create_loss(loss.name, train_labels=train_labels, gamma_pos=loss.gamma_pos,
                       gamma_neg=loss.gamma_neg, margin=loss.margin)


def oversampling_weights(labels: torch.Tensor) -> torch.Tensor:
    """Per poster, 1 / frequency of its rarest genre: rare-genre posters are drawn more often."""
    freq = labels.float().sum(0).clamp(min=1)
    inv = labels.float() / freq  # 1/freq where the poster has the genre, else 0
    return inv.max(dim=1).values.clamp(min=1.0 / len(labels))


def batch_training_loss(model, feats, y, loss_fn, precision: str = "float32"):
    """The head's own training loss when it has one (multi-task heads), else loss on its logits. With
    ``precision`` bfloat16 the forward pass runs under autocast and the loss reads float32 logits."""
    def float_loss(logits, targets):
        return loss_fn(logits.float(), targets)

    with torch.autocast(y.device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16"):
        if hasattr(model, "training_loss"):
            return model.training_loss(feats, y, float_loss)
        logits = model(feats)
    return float_loss(logits, y)


def _fit_untrainable(model, datasets, config, genres, loss_fn, device, on_epoch=None) -> TrainResult:
    """Heads without parameters (naive): fit on the training labels; one record, epoch 0."""
    model.fit(datasets["train"].labels.to(device))
    val_loss, val_scores = loss_and_scores(model, datasets["val"], loss_fn, device)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    checkpoint = make_checkpoint(config, genres, state, 0, val_loss)
    curve = [EpochRecord(0, round(mean_loss(model, datasets["train"], loss_fn, device), 6), round(val_loss, 6))]
    if on_epoch is not None:
        on_epoch(curve[0], model, val_scores)
    summary = TrainSummary(best_epoch=0, best_val_loss=round(val_loss, 6), epochs_run=0, parameters=0,
                           seconds=0.0, device=device.type)
    return TrainResult(checkpoint, curve, summary)


@dataclass(frozen=True)
class Candidate:
    """A candidate to train: its name and its training params (a comparison method's, resolved by the stage)."""

    name: str
    fusion: FusionParams
    train: TrainParams
    loss: LossParams


def build_product(datasets: dict[str, Dataset], dims: dict[str, int], genres: list[str], main: dict,
                  candidates: list[Candidate], metric: str = "f1_samples", threshold: float = 0.5,
                  calibration: str = "auto", average_top: int = 2, on_trained=None
                  ) -> tuple[Product, dict[str, TrainResult]]:
    """Train ``candidates`` on the training split, then :func:`choose_product` among the main model's checkpoint
    ``main`` and them on the validation split. The test split, if ``datasets`` has one, is never read.
    ``on_trained(checkpoint)`` completes each new checkpoint (the feature identities it was trained on)."""
    members = {MAIN: Member(MAIN, head_from_checkpoint(main, "cpu"), main)}
    trained: dict[str, TrainResult] = {}
    fitting = {"train": datasets["train"], "val": datasets["val"]}
    for c in candidates:
        result = train_head(fitting, dims, genres, c.fusion, c.train, c.loss)
        if on_trained is not None:
            on_trained(result.checkpoint)
        members[c.name] = Member(c.name, head_from_checkpoint(result.checkpoint, "cpu"), result.checkpoint)
        trained[c.name] = result
    return choose_product(members, datasets["val"], genres, metric, threshold, calibration, average_top), trained
