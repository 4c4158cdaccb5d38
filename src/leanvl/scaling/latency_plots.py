"""Two panels for a latency plan: predicted error vs FLOPs per request (the FLOPs view) beside predicted error vs
measured latency (ms per batch; ms per request in throughput mode), one line per LLM size, each with its Pareto
frontier, the budget and the two planners' choices marked."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from leanvl.scaling.latency import LatencyPlan
from leanvl.scaling.law import Law
from leanvl.scaling.plots import _pyplot, _save, _size_label, pareto_mask


def plot_latency_frontier(plan: LatencyPlan, law: Law, path: Path) -> Path:
    """Write the PNG and return its path."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11.0, 4.4), dpi=90, sharey=True)
    opts = plan.options
    err = np.array([1.0 - o.accuracy for o in opts])
    throughput = plan.mode == "throughput"
    ms = np.array([1000.0 / o.requests_per_s if throughput and o.requests_per_s > 0 else
                   (np.inf if throughput else o.latency_ms) for o in opts])
    costs = (("GFLOPs per request", np.array([o.gflops for o in opts]), plan.flops_budget_gflops,
              plan.flops_choice, "FLOPs-optimal"),
             ("ms per request at the best batch" if throughput else f"measured ms (batch {plan.batch})", ms,
              1000.0 / plan.min_rps if throughput else plan.budget_ms, plan.latency_choice, "latency-optimal"))
    sizes = sorted({o.llm_params_b for o in opts})
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(sizes)))
    for ax, (xlabel, x, budget, choice, name) in zip(axes, costs):
        ok = np.isfinite(x)
        for color, n in zip(colors, sizes):
            sel = ok & np.array([o.llm_params_b == n for o in opts])
            order = np.argsort(x[sel])
            ax.plot(x[sel][order], err[sel][order], "o-", color=color, ms=4, lw=1, label=_size_label(n))
        front = pareto_mask(x[ok], err[ok])
        order = np.argsort(x[ok][front])
        ax.step(x[ok][front][order], err[ok][front][order], where="post", color="crimson", ls="--", lw=1.5,
                label="Pareto frontier")
        ax.axvline(budget, color="gray", ls=":", lw=1, label="budget")
        if choice is not None:
            cx = choice.gflops if name == "FLOPs-optimal" else (1000.0 / choice.requests_per_s if throughput
                                                                 else choice.latency_ms)
            ax.scatter([cx], [1.0 - choice.accuracy], marker="*", s=160, color="crimson", zorder=5,
                       label=f"{name}: {_size_label(choice.llm_params_b)}, V={choice.visual_tokens:g}")
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("predicted error (1 - accuracy)")
    axes[0].set_title(f"FLOPs view: {plan.cost_model}, Q = {plan.text_tokens:g}", fontsize=9)
    axes[1].set_title(f"measured latency: {plan.device}", fontsize=9)
    fig.suptitle(f"law A={law.A:.3f} alpha={law.alpha:.3f} beta={law.beta:.3f} D={law.D:.3f}", fontsize=9)
    return _save(fig, path)
