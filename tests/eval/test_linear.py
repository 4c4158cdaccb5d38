import torch

from leanvl.eval.linear import accuracy, fit_logistic, fit_with_sweep


def test_logistic_regression_separates_separable_classes():
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(5, 16, generator=g) * 4
    y = torch.arange(500) % 5
    x = centers[y] + torch.randn(500, 16, generator=g) * 0.5
    probe = fit_with_sweep(x[:400], y[:400])
    assert accuracy(probe, x[400:], y[400:]) == 1.0


def test_logistic_regression_is_at_chance_on_noise():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(600, 8, generator=g)
    y = torch.randint(0, 4, (600,), generator=g)
    probe = fit_logistic(x[:400], y[:400], l2=1e-2)
    assert accuracy(probe, x[400:], y[400:]) < 0.4
