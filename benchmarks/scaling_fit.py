"""Benchmark: leanvl's multi-start bounded least-squares fit vs the reference's exhaustive grid search, one run.

Grid (the reference's): A in [0.2, 0.7] x50, alpha in [0, 0.2] x100, beta in [0, 0.05] x100, D in [0, 0.3] x10
= 5M combinations, each scored by SSE over the data points; evaluated exhaustively with numpy in alpha-chunks.
Prints both wall times, both SSEs, the speed ratio, and the bootstrap (1000 resamples) wall time.

Usage: python benchmarks/scaling_fit.py [CSV] [--repeats 20]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from leanvl.scaling.io import load_results_csv, reference_path
from leanvl.scaling.law import design, fit_law, fit_theta


def grid_search(n: np.ndarray, v: np.ndarray, y: np.ndarray, chunk: int = 5) -> tuple[np.ndarray, float]:
    """Exhaustive search over the reference grid; returns (best [A, alpha, beta, D], best SSE)."""
    a_grid = np.linspace(0.2, 0.7, 50)
    alpha_grid = np.linspace(0.0, 0.2, 100)
    beta_grid = np.linspace(0.0, 0.05, 100)
    d_grid = np.linspace(0.0, 0.3, 10)
    ln_n, ln_v = np.log(n), np.log(v)
    nb = np.exp(-beta_grid[:, None] * ln_v[None])                                  # [beta, pts]
    best, best_sse = None, np.inf
    for i in range(0, alpha_grid.size, chunk):
        al = alpha_grid[i:i + chunk]
        t = np.exp(-al[:, None] * ln_n[None])[:, None, :] * nb[None]                # [alpha, beta, pts]
        pred = a_grid[:, None, None, None, None] * t[None, None] + d_grid[None, :, None, None, None]
        sse = ((pred - y) ** 2).sum(-1)                                             # [A, D, alpha, beta]
        k = int(np.argmin(sse))
        if sse.flat[k] < best_sse:
            ia, idd, ial, ib = np.unravel_index(k, sse.shape)
            best, best_sse = np.array([a_grid[ia], al[ial], beta_grid[ib], d_grid[idd]]), float(sse.flat[k])
    return best, best_sse


def main() -> None:
    """Run both fits on the same data and print the comparison."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", nargs="?", help="results CSV (default: the shipped reasoning table)")
    ap.add_argument("--repeats", type=int, default=20, help="timed repeats of the leanvl fit (median reported)")
    args = ap.parse_args()
    data = next(iter(load_results_csv(args.csv or reference_path("reasoning")).values()))
    print(f"data: {data.source}, {len(data)} points")

    t0 = time.perf_counter()
    g_theta, g_sse = grid_search(data.n, data.v, data.y)
    t_grid = time.perf_counter() - t0

    ln_n, ln_t = design(data, "paper")
    fit_theta(ln_n, ln_t, data.y)                                                   # warm imports / caches
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        theta, sse = fit_theta(ln_n, ln_t, data.y)
        times.append(time.perf_counter() - t0)
    t_fit = float(np.median(times))

    t0 = time.perf_counter()
    full = fit_law(data, n_boot=1000, seed=0, cv=False)
    t_boot = time.perf_counter() - t0

    print(f"grid (5,000,000 combos, numpy): {t_grid:8.3f} s  SSE {g_sse:.6e}  "
          f"A={g_theta[0]:.4f} alpha={g_theta[1]:.4f} beta={g_theta[2]:.4f} D={g_theta[3]:.4f}")
    print(f"leanvl least_squares (median of {args.repeats}): {t_fit * 1e3:8.2f} ms  SSE {sse:.6e}  "
          f"A={np.exp(theta[0]):.4f} alpha={theta[1]:.4f} beta={theta[2]:.4f} D={theta[3]:.4f}")
    print(f"speed ratio grid / leanvl: {t_grid / t_fit:.0f}x;  SSE ratio leanvl / grid: {sse / g_sse:.4f} "
          f"({'lower' if sse < g_sse else 'NOT lower'})")
    print(f"leanvl fit + 1000-resample bootstrap: {t_boot:.2f} s (bootstrap alone {full.bootstrap['wall_s']:.2f} s)")


if __name__ == "__main__":
    main()
