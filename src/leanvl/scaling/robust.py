"""Fit options beyond plain least squares: binomial residual weights, a Huber loss in log space, cluster resampling.

- Binomial weights: a row's accuracy p measured on n questions has variance p(1-p)/n, so its residual is weighted
  by n / (p(1-p)), with p shrunk to (n*p + 0.5) / (n + 1) so that rows at 0% or 100% keep a finite weight; the
  weights are scaled to mean 1.
- Huber in log space, as Hoffmann et al. (Chinchilla, approach 3) and the Besiroglu et al. replication fit it:
  minimise sum_i Huber_delta(LSE(log A - alpha ln N - beta ln T, log D) - log error_i), delta = 1e-3, by L-BFGS-B
  from several starts. With delta this small, residuals above 0.1% in log error count linearly: a robust (L1-like)
  fit that one bad row cannot drag.
- The design (which LLM sizes and token counts were run) is fixed by the experimenter; what is random is each
  cell's error, and errors are shared by the cells of one LLM (same backbone). So the cluster bootstraps keep the
  design and resample errors by whole LLM size:
  - `cluster` (cluster residual bootstrap): every LLM size receives the residual vector (one residual per token
    count) of a size drawn with replacement; needs every size measured at the same token counts.
  - `wild-cluster` (Cameron, Gelbach & Miller 2008, Webb's six-point weights for few clusters, Webb 2023): every
    size keeps its residuals, multiplied by one weight per size drawn from {+-sqrt(3/2), +-1, +-sqrt(1/2)}.
  With G sizes there are only G^G cluster draws (256 for 4; 6^G wild ones): when that is <= the resamples asked
  for, every draw is taken once (the exact bootstrap distribution) instead of sampling.
- `pairs-cluster`: resample whole LLM sizes with their rows (the design changes too); draws with < 2 distinct
  sizes, which cannot identify alpha, are dropped. It answers "had other LLM sizes been picked", and is known to
  be unreliable with few clusters (35 distinct draws for 4 sizes).
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import huber

from leanvl.errors import DataError

HUBER_DELTA = 1e-3
LOSSES = ("squares", "huber")
WEIGHTS = ("none", "binomial")
RESAMPLING = ("residual", "cluster", "wild-cluster", "pairs-cluster")
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


def index_draws(k: int, g: int, n_boot: int, rng: np.random.Generator, min_distinct: int = 1
                ) -> tuple[np.ndarray, bool, int]:
    """[B, g] draws of g values in range(k): all k^g of them when that is <= n_boot (exact), else n_boot random
    ones; draws with fewer than `min_distinct` distinct values are left out. Returns (draws, exact, left out)."""
    exact = k ** g <= n_boot
    if exact:
        draws = np.indices((k,) * g).reshape(g, -1).T
    else:
        draws = rng.integers(0, k, (n_boot, g))
    keep = np.array([np.unique(d).size >= min(min_distinct, k) for d in draws])
    left_out = int((~keep).sum())
    draws = draws[keep]
    while not exact and len(draws) < n_boot:   # sampled: top up the dropped draws
        d = rng.integers(0, k, g)
        if np.unique(d).size >= min(min_distinct, k):
            draws = np.vstack([draws, d])
    return draws, exact, left_out


def size_blocks(groups: np.ndarray, tokens: np.ndarray, where: str) -> np.ndarray:
    """[G, m] row indices: LLM size g's rows in token order; DataError unless every size has the same token counts."""
    sizes = np.unique(groups)
    blocks = [np.flatnonzero(groups == s)[np.argsort(tokens[groups == s], kind="stable")] for s in sizes]
    first = np.round(tokens[blocks[0]], 9)
    for s, rows in zip(sizes, blocks):
        if rows.size != first.size or not np.array_equal(np.round(tokens[rows], 9), first):
            raise DataError(f"{where}: --bootstrap cluster exchanges whole LLM sizes' residuals, so every size needs "
                            f"the same token counts (size {s:g} differs); use wild-cluster or pairs-cluster")
    return np.array(blocks)


def resampled_residuals(method: str, resid: np.ndarray, groups, tokens, n_boot: int, rng: np.random.Generator,
                        where: str = "<data>") -> tuple[np.ndarray, bool]:
    """[B, n] resampled residual vectors for `residual`, `cluster` or `wild-cluster` (see module docstring), and
    whether they are the exact (complete) set of cluster draws."""
    n = resid.size
    if method == "residual":
        return resid[rng.integers(0, n, (n_boot, n))], False
    if method == "wild-cluster":
        cluster = np.unique(groups, return_inverse=True)[1]
        draws, exact, _ = index_draws(WEBB_WEIGHTS.size, cluster.max() + 1, n_boot, rng)
        return resid[None, :] * WEBB_WEIGHTS[draws][:, cluster], exact
    blocks = size_blocks(groups, tokens, where)
    draws, exact, _ = index_draws(len(blocks), len(blocks), n_boot, rng)
    out = np.empty((len(draws), n))
    for i, pick in enumerate(draws):
        out[i, blocks.ravel()] = resid[blocks[pick].ravel()]
    return out, exact


def pairs_rows(groups: np.ndarray, n_boot: int, rng: np.random.Generator) -> tuple[list[np.ndarray], bool, int]:
    """Row indices of each pairs-cluster draw (whole LLM sizes with replacement, >= 2 distinct), whether the draws
    are exact (all of them), and how many were left out for having < 2 distinct sizes."""
    sizes = np.unique(groups)
    members = [np.flatnonzero(groups == s) for s in sizes]
    draws, exact, left_out = index_draws(sizes.size, sizes.size, n_boot, rng, min_distinct=2)
    return [np.concatenate([members[j] for j in d]) for d in draws], exact, left_out
