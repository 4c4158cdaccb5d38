"""Fit options beyond plain least squares: binomial residual weights, a Huber loss in log space, cluster resampling.

- Binomial weights: a row's accuracy p measured on n questions has variance p(1-p)/n, so its residual is weighted
  by n / (p(1-p)), with p shrunk to (n*p + 0.5) / (n + 1) so that rows at 0% or 100% keep a finite weight; the
  weights are scaled to mean 1.
- Huber in log space, as Hoffmann et al. (Chinchilla, approach 3) and the Besiroglu et al. replication fit it:
  minimise sum_i Huber_delta(LSE(log A - alpha ln N - beta ln T, log D) - log error_i), delta = 1e-3, by L-BFGS-B
  from several starts. With delta this small, residuals above 0.1% in log error count linearly: a robust (L1-like)
  fit that one bad row cannot drag.
- Cluster resampling (`cluster`): draw LLM sizes (all rows of a size together) with replacement; draws with fewer
  than 2 distinct sizes, which cannot identify alpha, are redrawn. With G sizes there are only C(2G-1, G) distinct
  draws (35 for 4 sizes), and this pairs cluster bootstrap is known to be unreliable with few clusters.
- Wild cluster bootstrap (`wild-cluster`; Cameron, Gelbach & Miller 2008, Webb's six-point weights for few
  clusters, Webb 2023): keep every row, multiply each LLM size's residuals by one weight drawn per size from
  {±sqrt(3/2), ±1, ±sqrt(1/2)} (6^G patterns), refit. Errors shared within a size move all its rows together.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import huber

from leanvl.errors import DataError

HUBER_DELTA = 1e-3
LOSSES = ("squares", "huber")
WEIGHTS = ("none", "binomial")
RESAMPLING = ("residual", "cluster", "wild-cluster")
WEBB_WEIGHTS = np.array([-np.sqrt(1.5), -1.0, -np.sqrt(0.5), np.sqrt(0.5), 1.0, np.sqrt(1.5)])
_LOG_D_MIN = np.log(1e-8)
LOG_LOWER = np.array([-50.0, 0.0, 0.0, _LOG_D_MIN])  # log A, alpha, beta, log D
LOG_UPPER = np.array([50.0, 3.0, 3.0, 0.0])


def binomial_weights(y: np.ndarray, count: np.ndarray | None, where: str) -> np.ndarray:
    """n / (p(1-p)) per row (p shrunk away from 0 and 1), scaled to mean 1; DataError without question counts."""
    if count is None:
        raise DataError(f"{where}: --weights binomial needs an 'n_questions' column (questions behind each row)")
    p = (count * (1.0 - y) + 0.5) / (count + 1.0)
    w = count / (p * (1.0 - p))
    return w / w.mean()


def check_positive_error(y: np.ndarray, where: str) -> None:
    """The Huber fit works on log error: every row needs error > 0 (accuracy < 1)."""
    if np.any(y <= 0):
        raise DataError(f"{where}: --loss huber fits log(error), but {int((y <= 0).sum())} row(s) have error 0 "
                        f"(accuracy 1); use --loss squares")


def _huber_objective(phi, ln_n, ln_t, log_y, delta):
    u = phi[0] - phi[1] * ln_n - phi[2] * ln_t
    pred = np.logaddexp(u, phi[3])
    r = pred - log_y
    s = np.exp(u - pred)                          # d pred / d u; d pred / d log D = 1 - s
    g = np.clip(r, -delta, delta) / delta         # Huber'(r), scaled with the loss by 1 / delta
    grad = np.array([(g * s).sum(), -(g * s * ln_n).sum(), -(g * s * ln_t).sum(), (g * (1.0 - s)).sum()])
    return float(huber(delta, r).sum() / delta), grad


def huber_solve(theta0: np.ndarray, ln_n, ln_t, y) -> tuple[np.ndarray, float]:
    """One L-BFGS-B run of the log-space Huber fit from theta0 = (log A, alpha, beta, D); returns (theta, loss)."""
    phi0 = np.array([theta0[0], theta0[1], theta0[2], np.log(max(theta0[3], 1e-4))])
    phi0 = np.clip(phi0, LOG_LOWER, LOG_UPPER)
    r = minimize(_huber_objective, phi0, args=(ln_n, ln_t, np.log(y), HUBER_DELTA), jac=True, method="L-BFGS-B",
                 bounds=list(zip(LOG_LOWER, LOG_UPPER)), options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-10})
    phi = r.x
    return np.array([phi[0], phi[1], phi[2], np.exp(phi[3])]), float(r.fun)


def huber_fit(seeds: np.ndarray, ln_n, ln_t, y) -> np.ndarray:
    """Best Huber fit over the seeds, each also tried with a floor D at half the smallest error."""
    starts = [s for seed in seeds for s in (seed, np.array([*seed[:3], 0.5 * y.min()]))]
    return min((huber_solve(s, ln_n, ln_t, y) for s in starts), key=lambda tl: tl[1])[0]


def cluster_draw(rng: np.random.Generator, groups: np.ndarray) -> tuple[np.ndarray, int]:
    """Row indices of one cluster resample (whole groups, with replacement) and how many draws were redrawn."""
    sizes = np.unique(groups)
    redrawn = 0
    while True:
        pick = sizes[rng.integers(0, sizes.size, sizes.size)]
        if np.unique(pick).size >= min(2, sizes.size):
            return np.concatenate([np.flatnonzero(groups == s) for s in pick]), redrawn
        redrawn += 1
