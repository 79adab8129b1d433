"""Loss functions for multi-label genre prediction (take logits and 0/1 targets)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

EPS = 1e-8


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


LOSSES = {"asymmetric": asymmetric_loss}


def create_loss(name: str, **kwargs):
    """The loss function registered as ``name``, with its parameters bound."""
    fn = LOSSES[name]
    return lambda logits, targets: fn(logits, targets, **kwargs)
