"""When training stops: the rule the training loop applies and its replay on a recorded validation curve."""

from __future__ import annotations


class EarlyStopping:
    """The stopping rule: the best epoch is the one with the lowest validation loss; training stops after
    ``patience`` epochs in a row without a lower one. The loop and :func:`replay_early_stopping` (which reads a
    recorded curve) use this same rule."""

    def __init__(self, patience: int, min_delta: float = 0.0):
        #: ``min_delta``: an epoch is a new best only when its loss is lower than the best by more than this share
        #: of it (0: any lower loss). Training uses 0: :func:`min_delta_table` measured what more would cost.
        self.patience, self.min_delta = patience, min_delta
        self.best_loss, self.best_epoch, self.stale = float("inf"), 0, 0

    def update(self, epoch: int, val_loss: float) -> bool:
        """Record an epoch; True when it is the new best."""
        if val_loss < self.best_loss * (1 - self.min_delta):
            self.best_loss, self.best_epoch, self.stale = val_loss, epoch, 0
            return True
        self.stale += 1
        return False

    @property
    def stop(self) -> bool:
        return self.stale >= self.patience


def replay_early_stopping(val_losses: list[float], patience: int, min_delta: float = 0.0) -> tuple[int, int]:
    """(best epoch, epochs run) that ``patience`` (and ``min_delta``) would have given on a run whose validation
    loss per epoch (epochs 1, 2, ...) is ``val_losses``, recorded with a larger patience. Training is the same
    epoch for epoch until it stops, so where the best epoch is the recorded one the checkpoint is byte-identical."""
    rule = EarlyStopping(patience, min_delta)
    for epoch, loss in enumerate(val_losses, 1):
        rule.update(epoch, loss)
        if rule.stop:
            return rule.best_epoch, epoch
    return rule.best_epoch, len(val_losses)


#: The patiences a replay table tries (runs are recorded with train.patience, the largest of them by default).
PATIENCES = (1, 2, 3, 4, 5, 6, 8, 10)


def replay_table(curves: list[tuple[str, list[float]]], patiences=PATIENCES, min_delta: float = 0.0) -> list[dict]:
    """Each patience replayed on the recorded runs (``(method, validation loss per epoch)``): how many runs keep
    their recorded best epoch (and so their checkpoint, byte for byte, and every figure made from it), the
    epochs they would take, and the methods with a run that would stop before its best epoch.

    A run enters a patience's row only if its curve runs at least that many epochs past its best (it was
    recorded with that patience or more): past the end of its record a replay cannot say when it would have
    stopped, nor whether the loss would have fallen again. A patience no run was recorded with has no row."""
    recorded = [replay_early_stopping(curve, len(curve) + 1)[0] for _, curve in curves]
    rows = []
    for patience in patiences:
        runs = [(name, curve, rec) for (name, curve), rec in zip(curves, recorded) if len(curve) - rec >= patience]
        if not runs:
            continue
        replays = [replay_early_stopping(curve, patience, min_delta) for _, curve, _ in runs]
        rows.append({"patience": patience, "min_delta": min_delta, "runs": len(runs),
                     "kept": sum(best == rec for (best, _), (_, _, rec) in zip(replays, runs)),
                     "epochs": sum(ran for _, ran in replays), "epochs_recorded": sum(len(c) for _, c, _ in runs),
                     "moved": sorted({name for (name, _, rec), (best, _) in zip(runs, replays) if best != rec})})
    return rows


#: The minimum improvements (shares of the best loss) :func:`min_delta_table` tries.
MIN_DELTAS = (0.0, 0.001, 0.005, 0.01, 0.02, 0.05)


def min_delta_table(curves: list[tuple[str, list[float]]], patience: int, min_deltas=MIN_DELTAS) -> list[dict]:
    """:func:`replay_table`'s row for ``patience`` under each minimum improvement: a larger one stops a run sooner
    by not counting small late improvements, and so moves the best epoch (and the checkpoint) of the runs that had
    them."""
    return [row for d in min_deltas for row in replay_table(curves, (patience,), d)]
