"""When training stops: the rule the training loop applies and its replay on a recorded validation curve."""

from __future__ import annotations


class EarlyStopping:
    """The stopping rule: the best epoch is the one with the lowest validation loss; training stops after
    ``patience`` epochs in a row without a lower one. The loop and :func:`replay_early_stopping` (which reads a
    recorded curve) use this same rule."""

    def __init__(self, patience: int):
        self.patience = patience
        self.best_loss, self.best_epoch, self.stale = float("inf"), 0, 0

    def update(self, epoch: int, val_loss: float) -> bool:
        """Record an epoch; True when it is the new best."""
        if val_loss < self.best_loss:
            self.best_loss, self.best_epoch, self.stale = val_loss, epoch, 0
            return True
        self.stale += 1
        return False

    @property
    def stop(self) -> bool:
        return self.stale >= self.patience


def replay_early_stopping(val_losses: list[float], patience: int) -> tuple[int, int]:
    """(best epoch, epochs run) that ``patience`` would have given on a run whose validation loss per epoch
    (epochs 1, 2, ...) is ``val_losses``, recorded with a larger patience. Training is the same epoch for epoch
    until it stops, so where the best epoch is the recorded one the checkpoint is byte-identical."""
    rule = EarlyStopping(patience)
    for epoch, loss in enumerate(val_losses, 1):
        rule.update(epoch, loss)
        if rule.stop:
            return rule.best_epoch, epoch
    return rule.best_epoch, len(val_losses)
