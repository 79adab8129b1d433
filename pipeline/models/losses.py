"""Loss functions for multi-label genre prediction (take logits and 0/1 targets), by name (``loss.name``).

Each loss registers itself where it is defined (``@LOSSES.register(name)``), with what it needs bound
by :func:`create_loss`: ``binds`` (parameters taken from ``loss.*``) or ``weights_from_labels``
(positive weights computed from the training labels)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from pipeline.core.registry import Registry

EPS = 1e-8

#: name -> loss function ``(logits, targets, ...) -> scalar``.
LOSSES: Registry = Registry("loss.name")


@LOSSES.register("asymmetric", binds=("gamma_pos", "gamma_neg", "margin"))
def asymmetric_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    gamma_pos: float = 3.0,
    gamma_neg: float = 4.0,
    margin: float = 0.2,
) -> torch.Tensor:
    """Asymmetric Loss (Ridnik et al. 2021) as printed in the paper's eq. 8-9.

    With p = sigmoid(logit) and the shifted probability p_m = max(p - margin, 0):

        L+ = y (1 - p)^gamma_pos log(p)
        L- = (1 - y) p_m^gamma_neg log(1 - p_m)
        L  = -(1/M) sum_j (L+_j + L-_j), averaged over the samples of the batch.

    The paper writes the sum without the minus sign; a loss to minimise needs it
    (both log terms are <= 0). The paper averages over the M genres (1/M), where
    Ridnik et al. sum: we follow the paper. Logs are clamped at 1e-8, as in
    Ridnik et al.'s reference code; the focusing weights keep their gradient.
    """
    targets = targets.to(logits.dtype)
    p = torch.sigmoid(logits)
    log_p = F.logsigmoid(logits)
    p_m = (p - margin).clamp(min=0) if margin > 0 else p
    loss_pos = targets * (1 - p).pow(gamma_pos) * log_p.clamp(min=math.log(EPS))
    loss_neg = (1 - targets) * p_m.pow(gamma_neg) * torch.log((1 - p_m).clamp(min=EPS))
    return -(loss_pos + loss_neg).mean(dim=1).mean()


@LOSSES.register("bce")
def bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy, mean over genres and posters."""
    return F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype))


@LOSSES.register("weighted_bce", weights_from_labels=True)
def weighted_bce(logits: torch.Tensor, targets: torch.Tensor, pos_weight: torch.Tensor) -> torch.Tensor:
    """Positive-weighted BCE (the MovieScope-ensemble paper): l = -[p_c y log x + (1 - y) log(1 - x)],
    mean over genres and posters, with p_c = negatives / positives of genre c in the training set."""
    return F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype), pos_weight=pos_weight.to(logits))


def positive_weights(labels: torch.Tensor) -> torch.Tensor:
    """negatives / positives per genre (a genre with no positive gets weight 1)."""
    pos = labels.float().sum(0)
    neg = labels.shape[0] - pos
    return torch.where(pos > 0, neg / pos.clamp(min=1), torch.ones_like(pos))


@LOSSES.register("soft_f1")
def soft_f1(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Macro double soft-F1 (the visio-textual paper), on probabilities instead of 0/1 decisions.

    Per genre, with soft counts tp = sum p y, fp = sum p (1 - y), fn = sum (1 - p) y, tn = sum (1 - p)(1 - y):

        loss_i = 1 - 0.5 * (2tp / (2tp + fn + fp + eps) + 2tn / (2tn + fn + fp + eps))

    averaged over genres. (The poster prints ``... + 0.5 F1_neg``; maximising the
    negative-class F1 needs the minus, as in the loss it cites.) Computed over the batch.
    """
    y = targets.to(logits.dtype)
    p = torch.sigmoid(logits)
    tp = (p * y).sum(0)
    fp = (p * (1 - y)).sum(0)
    fn = ((1 - p) * y).sum(0)
    tn = ((1 - p) * (1 - y)).sum(0)
    f1_pos = 2 * tp / (2 * tp + fn + fp + EPS)
    f1_neg = 2 * tn / (2 * tn + fn + fp + EPS)
    return (1 - 0.5 * (f1_pos + f1_neg)).mean()


def create_loss(name: str, train_labels: torch.Tensor | None = None, **kwargs):
    """The loss registered as ``name`` with what it needs bound.

    ``kwargs`` holds the ``loss.*`` parameters; a loss takes those it registered as ``binds``
    (asymmetric: gamma_pos, gamma_neg, margin) and ignores the rest. A loss registered with
    ``weights_from_labels`` (weighted_bce) computes its positive weights from ``train_labels``.
    """
    fn, meta = LOSSES.get(name), LOSSES.meta(name)
    if meta.get("weights_from_labels"):
        if train_labels is None:
            raise ValueError(f"{name} needs the training labels")
        weights = positive_weights(train_labels)
        return lambda logits, targets: fn(logits, targets, weights)
    bound = {k: v for k, v in kwargs.items() if k in meta.get("binds", ())}
    return (lambda logits, targets: fn(logits, targets, **bound)) if bound else fn
