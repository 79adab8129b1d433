import math

import pytest
import torch

from pipeline.models.losses import asymmetric_loss


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


def test_bce_and_weighted_bce_hand_computed():
    from pipeline.models.losses import bce, positive_weights, weighted_bce

    p = torch.tensor([[0.8, 0.4]], dtype=torch.float64)
    y = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    logits = torch.logit(p)
    assert bce(logits, y).item() == pytest.approx(-(math.log(0.8) + math.log(0.6)) / 2)
    w = torch.tensor([3.0, 0.5], dtype=torch.float64)
    # l = -[w y log p + (1 - y) log(1 - p)]: the weight multiplies the positive term only
    assert weighted_bce(logits, y, w).item() == pytest.approx(-(3 * math.log(0.8) + math.log(0.6)) / 2)
    labels = torch.tensor([[1, 0], [0, 0], [0, 1], [0, 0]])
    assert positive_weights(labels).tolist() == [3.0, 3.0]


def test_soft_f1_hand_computed():
    from pipeline.models.losses import soft_f1

    p = torch.tensor([[0.9], [0.2], [0.6]], dtype=torch.float64)
    y = torch.tensor([[1.0], [0.0], [1.0]], dtype=torch.float64)
    # tp = .9 + .6 = 1.5, fp = .2, fn = .1 + .4 = .5, tn = .8
    f1_pos = 3.0 / (3.0 + 0.5 + 0.2)
    f1_neg = 1.6 / (1.6 + 0.5 + 0.2)
    assert soft_f1(torch.logit(p), y).item() == pytest.approx(1 - 0.5 * (f1_pos + f1_neg), rel=1e-6)
    perfect = soft_f1(torch.tensor([[30.0], [-30.0]]), torch.tensor([[1.0], [0.0]])).item()
    assert perfect == pytest.approx(0.0, abs=1e-6)


def test_oversampling_weights_favour_rare_genres():
    from pipeline.models.train import oversampling_weights

    labels = torch.tensor([[1, 0], [1, 0], [1, 0], [1, 1]])
    w = oversampling_weights(labels)
    assert w[3] > w[0] and w[0] == w[1] == w[2]
