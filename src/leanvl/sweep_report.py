"""The sweep's closing step: fit the scaling law per split from results.csv rows, plot, plan, summarise."""
from __future__ import annotations

import json
import os
from typing import Any

from leanvl.errors import LeanvlError


def _budget(rows: list[dict[str, str]], q: float) -> float:
    """Default budget: 2N(Q+V) of the second-largest LLM at the largest token count (a budget with trade-offs)."""
    sizes = sorted({float(r["llm_params_b"]) for r in rows})
    v_max = max(float(r["visual_tokens"]) for r in rows)
    n = sizes[-2] if len(sizes) > 1 else sizes[-1]
    return 2.0 * n * 1e9 * (q + v_max)


def fit_split(rows: list[dict[str, str]], task: str, out: str, n_boot: int, budget: float,
              plots: bool = True) -> dict[str, Any]:
    """Fit one split, write its plots (unless `plots` is False), plan at `budget` FLOPs (0: default); returns a
    summary dict."""
    import numpy as np

    from leanvl.scaling.io import from_records
    from leanvl.scaling.law import fit_law
    from leanvl.scaling.plan import plan
    from leanvl.scaling.plots import make_plots

    data = from_records(rows, source=os.path.join(out, "results.csv"), task=task)
    fit = fit_law(data, n_boot=n_boot, seed=0)
    q = float(np.median(data.q)) if data.q is not None else 0.0
    if plots:
        make_plots(fit, data, os.path.join(out, "plots"), q=q, prefix=f"scaling_{task}")
    budget = budget or _budget([r for r in rows if r["task"] == task], q)
    p = plan(fit.law, budget, q, llm_sizes=data.llm_sizes, token_options=data.token_counts)
    best = p.rows[0] if p.rows else None
    return {"task": task, "points": len(data), "alpha": fit.alpha, "beta": fit.beta, "A": fit.A, "D": fit.D,
            "ci": fit.ci, "r2": fit.r2, "alpha_gt_beta": fit.alpha > fit.beta, "text_tokens": q,
            "v_star": p.v_star, "budget_gflops": p.budget_gflops,
            "best": None if best is None else {"llm_params_b": best.llm_params_b, "visual_tokens": best.visual_tokens,
                                               "accuracy": best.accuracy, "gflops": best.gflops},
            "fit": fit.to_dict()}


def _line(s: dict[str, Any]) -> str:
    ci = s["ci"]
    a = f"alpha = {s['alpha']:.4f}" + (f" [{ci['alpha'][0]:.4f}, {ci['alpha'][1]:.4f}]" if ci else "")
    b = f"beta = {s['beta']:.4f}" + (f" [{ci['beta'][0]:.4f}, {ci['beta'][1]:.4f}]" if ci else "")
    sign = "alpha > beta (LLM size matters more)" if s["alpha_gt_beta"] else "beta >= alpha (more tokens win)"
    best = s["best"]
    plan = (f"best at {s['budget_gflops']:.3g} GFLOPs: {best['llm_params_b'] * 1e3:.3g}M-param LLM with "
            f"{best['visual_tokens']:g} tokens (pred. acc {best['accuracy']:.3f})") if best else "no option fits"
    vstar = f"V* = {s['v_star']:.3g}" if s["v_star"] is not None else "V*: more tokens win"
    return f"- {s['task']}: {a}, {b}, R² {s['r2']:.3f}; {sign}; Q = {s['text_tokens']:.1f}, {vstar}; {plan}"


def results_table(rows: list[dict[str, str]]) -> str:
    """Markdown table: accuracy per (LLM, tokens) cell and split."""
    tasks = sorted({r["task"] for r in rows})
    cells: dict[tuple, dict[str, str]] = {}
    for r in rows:
        cells.setdefault((float(r["llm_params"]), r["llm"], int(r["visual_tokens"])), {})[r["task"]] = r["accuracy"]
    lines = ["| LLM | params | tokens | " + " | ".join(tasks) + " |", "|---|---|---|" + "---|" * len(tasks)]
    for (n, llm, v), acc in sorted(cells.items()):
        vals = " | ".join(f"{float(acc[t]) * 100:.1f}%" if t in acc else "–" for t in tasks)
        lines.append(f"| {llm} | {n / 1e6:.2f}M | {v} | {vals} |")
    return "\n".join(lines)


def report(rows: list[dict[str, str]], out: str, budget_gflops: float = 0.0, n_boot: int = 1000,
           plots: bool = True) -> str:
    """Fit per split, write DIR/summary.json + summary.md + plots (DIR/plots/, unless `plots` is False); return the
    printed summary."""
    if not rows:
        raise LeanvlError(f"{out}: no results to fit")
    summaries, notes = [], []
    for task in sorted({r["task"] for r in rows}):
        try:
            summaries.append(fit_split(rows, task, out, n_boot, budget_gflops * 1e9, plots))
        except LeanvlError as exc:
            notes.append(f"- {task}: not fitted ({exc})")
    by_task = {s["task"]: s for s in summaries}
    verdict = []
    if "reasoning" in by_task:
        verdict.append(f"reasoning α > β: {'yes' if by_task['reasoning']['alpha_gt_beta'] else 'no'}")
    if "ocr" in by_task:
        ocr = by_task["ocr"]
        verdict.append(f"OCR β > α: {'yes' if ocr['beta'] > ocr['alpha'] else 'no'}")
    text = "\n".join(["## Sweep results", "", results_table(rows), "", "## Fitted law per split", "",
                      *[_line(s) for s in summaries], *notes, "", "Paper's signs reproduced? " + "; ".join(verdict)])
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump({"splits": summaries, "notes": notes}, f, indent=2)
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(text + "\n")
    return text
