import math

import torch

from pipeline.losses import asymmetric_loss


def _hand(p, y, gp=3.0, gn=4.0, m=0.2):
    """Eq. 8-9 written out for one sample, one genre at a time."""
    total = 0.0
    for pj, yj in zip(p, y):
        if yj:
            total += (1 - pj) ** gp * math.log(pj)
        else:
            pm = max(pj - m, 0.0)
            total += pm ** gn * math.log(1 - pm)
    return -total / len(p)


def test_asymmetric_loss_matches_hand_computation():
    p = [0.9, 0.3, 0.1, 0.7]
    y = [1, 1, 0, 0]
    logits = torch.logit(torch.tensor([p], dtype=torch.float64))
    got = asymmetric_loss(logits, torch.tensor([y], dtype=torch.float64)).item()
    # by hand: pos 0.1^3*ln .9 = -1.0536e-4; 0.7^3*ln .3 = -0.412961; neg p=.1 -> 0; p=.7 -> .5^4*ln .5 = -0.043322
    expected = -(-1.053605e-4 - 0.4129606 + 0.0 - 0.0433217) / 4
    assert abs(got - expected) < 1e-6
    assert abs(got - _hand(p, y)) < 1e-9


def test_margin_discards_easy_negatives_and_batch_mean():
    logits = torch.logit(torch.tensor([[0.15, 0.05], [0.9, 0.5]], dtype=torch.float64))
    y = torch.tensor([[0.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    # first row: both negatives below the 0.2 margin -> zero loss
    assert asymmetric_loss(logits[:1], y[:1]).item() == 0.0
    got = asymmetric_loss(logits, y).item()
    expected = (_hand([0.15, 0.05], [0, 0]) + _hand([0.9, 0.5], [1, 0])) / 2
    assert abs(got - expected) < 1e-9


def test_gamma_zero_margin_zero_is_bce():
    logits = torch.randn(5, 3, dtype=torch.float64)
    y = (torch.rand(5, 3) > 0.5).double()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
    assert torch.allclose(asymmetric_loss(logits, y, 0.0, 0.0, 0.0), bce)


def test_gradient_is_finite_at_extremes():
    logits = torch.tensor([[30.0, -30.0, 0.0]], requires_grad=True)
    loss = asymmetric_loss(logits, torch.tensor([[0.0, 1.0, 1.0]]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
