"""PNG plots of a fitted law (matplotlib, Agg backend): error vs FLOPs with the Pareto frontier, predicted vs observed,
and error vs visual tokens at fixed budgets (iso-FLOP). FLOPs use the paper's cost 2N(Q+V)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from leanvl.scaling.cost import llm_flops
from leanvl.scaling.io import ScalingData
from leanvl.scaling.law import FitResult
from leanvl.scaling.plan import optimal_tokens


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _size_label(n_b: float) -> str:
    """LLM size for a legend: 7B, 760M, 110K."""
    for scale, unit in ((1.0, "B"), (1e-3, "M"), (1e-6, "K")):
        if n_b >= scale:
            return f"{n_b / scale:.3g}{unit}"
    return f"{n_b:.3g}B"


def pareto_mask(cost: np.ndarray, err: np.ndarray) -> np.ndarray:
    """Points no cheaper-or-equal point beats: sorted by cost, each strictly lowers the best error so far."""
    order = np.lexsort((err, cost))
    mask = np.zeros(cost.size, dtype=bool)
    best = np.inf
    for i in order:
        if err[i] < best:
            mask[i], best = True, err[i]
    return mask


def plot_frontier(fit: FitResult, data: ScalingData, q: float, path: Path) -> Path:
    """Error vs inference FLOPs: observed points, the fitted curve per LLM size, and the observed Pareto frontier."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=90)
    cost = llm_flops(data.n * 1e9, data.v, q)
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(data.llm_sizes)))
    v_line = np.geomspace(1, max(data.token_counts) * 1.5, 100)
    for color, n in zip(colors, data.llm_sizes):
        sel = data.n == n
        ax.scatter(cost[sel], data.y[sel], color=color, s=22, label=_size_label(n))
        ax.plot(llm_flops(n * 1e9, v_line, q), fit.law.error(n, v_line, q), color=color, lw=1)
    front = pareto_mask(cost, data.y)
    order = np.argsort(cost[front])
    ax.step(cost[front][order], data.y[front][order], where="post", color="crimson", lw=1.5, ls="--",
            label="Pareto frontier")
    ax.set_xscale("log")
    ax.set_xlabel(f"inference FLOPs 2N(Q+V), Q = {q:g}")
    ax.set_ylabel("error (1 - accuracy)")
    law = fit.law
    ax.set_title(f"{fit.task}: A={law.A:.3f} alpha={law.alpha:.3f} beta={law.beta:.3f} D={law.D:.3f}", fontsize=9)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_pred_obs(fit: FitResult, data: ScalingData, path: Path) -> Path:
    """Predicted vs observed accuracy with the identity line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.4, 4.4), dpi=90)
    pred = fit.law.accuracy(data.n, data.v, 0.0 if data.q is None else data.q)
    obs = 1.0 - data.y
    sc = ax.scatter(obs, pred, c=np.log(data.n), cmap="viridis", s=22)
    lo, hi = min(obs.min(), pred.min()), max(obs.max(), pred.max())
    ax.plot([lo, hi], [lo, hi], color="gray", lw=1)
    ax.set_xlabel("observed accuracy")
    ax.set_ylabel("predicted accuracy")
    ax.set_title(f"{fit.task}: R^2 = {fit.r2:.4f}", fontsize=9)
    fig.colorbar(sc, ax=ax, label="ln N (billions)")
    return _save(fig, path)


def plot_isoflop(fit: FitResult, data: ScalingData, q: float, path: Path) -> Path:
    """Predicted error vs visual tokens at three fixed budgets (N = C / 2(Q+V)), with the closed-form V*."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=90)
    cost = llm_flops(data.n * 1e9, data.v, q)
    v = np.geomspace(1, 2000, 300)
    for c in np.geomspace(cost.min() * 2, cost.max(), 3):
        n_b = c / (2.0 * (q + v)) / 1e9
        ax.plot(v, fit.law.error(n_b, v, q), label=f"C = {c:.3g} FLOPs")
    v_star, _ = optimal_tokens(fit.law, q)
    if v_star is not None:
        ax.axvline(v_star, color="crimson", ls="--", lw=1, label=f"V* = {v_star:.3g}")
    ax.set_xscale("log")
    ax.set_xlabel("visual tokens V (LLM size N = C / 2(Q+V))")
    ax.set_ylabel("predicted error")
    ax.set_title(f"{fit.task}: iso-FLOP curves, Q = {q:g}", fontsize=9)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    _pyplot().close(fig)
    return path


def make_plots(fit: FitResult, data: ScalingData, outdir: str | Path, q: float = 50.0, prefix: str = "scaling") -> list:
    """Write the three PNGs into outdir as <prefix>_frontier/_pred_obs/_isoflop.png; returns their paths."""
    out = Path(outdir)
    return [plot_frontier(fit, data, q, out / f"{prefix}_frontier.png"),
            plot_pred_obs(fit, data, out / f"{prefix}_pred_obs.png"),
            plot_isoflop(fit, data, q, out / f"{prefix}_isoflop.png")]
