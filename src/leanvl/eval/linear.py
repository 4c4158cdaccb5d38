"""Multinomial logistic regression on frozen features (standardised, L2-regularised, full-batch L-BFGS)."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

import torch

DEFAULT_L2 = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


@dataclass
class LinearProbe:
    """A fitted probe: standardisation + linear classifier."""

    mean: torch.Tensor
    std: torch.Tensor
    weight: torch.Tensor
    bias: torch.Tensor
    l2: float

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Class index per row of `x`."""
        z = (x.double() - self.mean) / self.std
        return (z @ self.weight.T + self.bias).argmax(1)


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run tiny solver ops on one thread (on a busy 2-core machine, 2 threads made L-BFGS fits ~15-50x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fit_logistic(x: torch.Tensor, y: torch.Tensor, l2: float, num_classes: int | None = None,
                 max_iter: int = 200) -> LinearProbe:
    """Fit softmax regression with penalty `l2` * ||W||^2 on standardised `x` (float64, deterministic)."""
    x = x.double()
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    z = (x - mean) / std
    k = int(num_classes or int(y.max()) + 1)
    w = torch.zeros(k, z.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(k, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-9, tolerance_change=1e-12)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z @ w.T + b, y) + l2 * (w * w).sum()
        loss.backward()
        return loss

    with single_thread():
        opt.step(closure)
    return LinearProbe(mean, std, w.detach(), b.detach(), l2)


def accuracy(probe: LinearProbe, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy of `probe` on (x, y)."""
    return float((probe.predict(x) == y).double().mean())


def fit_with_sweep(x: torch.Tensor, y: torch.Tensor, l2_grid: tuple[float, ...] = DEFAULT_L2,
                   holdout: float = 0.2, seed: int = 0) -> LinearProbe:
    """Choose the L2 penalty on a held-out part of the training set, then refit on all of it."""
    n = len(y)
    k = int(y.max()) + 1
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    cut = max(1, int(n * holdout))
    val, tr = perm[:cut], perm[cut:]
    scores = [(accuracy(fit_logistic(x[tr], y[tr], l2, k), x[val], y[val]), -l2, l2) for l2 in l2_grid]
    best = max(scores)[2]
    return fit_logistic(x, y, best, k)
