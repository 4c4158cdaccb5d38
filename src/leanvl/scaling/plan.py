"""Inference-optimal planning: given a fitted law and a FLOPs budget, which LLM size and visual-token count to deploy.

At fixed budget C under the paper's cost 2N(Q+V), N = C / (2(Q+V)) and error - D ∝ (Q+V)^alpha * V^-beta, minimised
at V* = beta * Q / (alpha - beta) when alpha > beta (independent of C; at least 1 token); when beta >= alpha more
tokens always win. The ranked table evaluates every (N, V) option under the full cost model.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

from leanvl.errors import LeanvlError
from leanvl.scaling.cost import CostModel
from leanvl.scaling.law import Law

DEFAULT_TOKENS = (1, 4, 16, 36, 64, 144, 576)
DEFAULT_SIZES = (0.5, 1.8, 4.0, 7.0, 14.0)


def optimal_tokens(law: Law, text_tokens: float) -> tuple[float | None, str]:
    """(V*, explanation) under the paper's cost; V* is None when more tokens win (beta >= alpha)."""
    if law.beta >= law.alpha:
        return None, f"beta ({law.beta:.4g}) >= alpha ({law.alpha:.4g}): more tokens win; use the most the budget allows"
    if law.form == "qv":
        return 1.0, ("qv form: error depends on Q+V only and alpha > beta, so spend compute on N: "
                     "use the fewest visual tokens (V* = 1)")
    v = law.beta * text_tokens / (law.alpha - law.beta)
    if v < 1.0:
        return 1.0, f"V* = beta*Q/(alpha-beta) = {v:.3g} < 1, so V* = 1 (at least one visual token)"
    return float(v), f"V* = beta*Q/(alpha-beta) = {law.beta:.4g}*{text_tokens:g}/({law.alpha:.4g}-{law.beta:.4g})"


@dataclass
class PlanRow:
    """One deployable option with its predicted accuracy and cost."""

    llm_params_b: float
    visual_tokens: float
    gflops: float
    accuracy: float


@dataclass
class Plan:
    """The planner's answer: closed-form V*, the largest LLM at V*, and the feasible options best first."""

    budget_gflops: float
    text_tokens: float
    v_star: float | None
    v_star_note: str
    n_max_b_at_v_star: float | None
    cost_model: str
    rows: list[PlanRow] = field(default_factory=list)
    n_infeasible: int = 0

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        d = asdict(self)
        d["rows"] = [asdict(r) for r in self.rows]
        return d

    def to_json(self) -> str:
        """JSON string of to_dict()."""
        return json.dumps(self.to_dict(), indent=2)

    def table(self, top: int = 15) -> str:
        """A human-readable ranked table of the best `top` feasible options."""
        lines = [f"budget {self.budget_gflops:g} GFLOPs, Q = {self.text_tokens:g} text tokens, cost = {self.cost_model}",
                 self.v_star_note]
        if self.v_star is not None:
            lines.append(f"V* = {self.v_star:.3g}; largest LLM at V*: {self.n_max_b_at_v_star:.3g}B "
                         f"(paper cost 2N(Q+V))")
        lines.append(f"{'rank':>4} {'LLM (B)':>8} {'tokens':>7} {'GFLOPs':>10} {'pred. acc':>9}")
        for i, r in enumerate(self.rows[:top], start=1):
            lines.append(f"{i:>4} {r.llm_params_b:>8g} {r.visual_tokens:>7g} {r.gflops:>10.4g} {r.accuracy:>9.4f}")
        if not self.rows:
            lines.append("   (no option fits the budget)")
        lines.append(f"{len(self.rows)} feasible option(s), {self.n_infeasible} over budget")
        return "\n".join(lines)


def plan(law: Law, budget_flops: float, text_tokens: float, llm_sizes=DEFAULT_SIZES, token_options=DEFAULT_TOKENS,
         cost_model: CostModel | None = None) -> Plan:
    """Rank every (LLM size in billions, token count) that fits `budget_flops` by the law's predicted accuracy."""
    if not budget_flops > 0:
        raise LeanvlError(f"budget must be > 0 FLOPs, got {budget_flops:g}")
    if text_tokens < 0:
        raise LeanvlError(f"text tokens must be >= 0, got {text_tokens:g}")
    if not llm_sizes or min(llm_sizes) <= 0 or not token_options or min(token_options) <= 0:
        raise LeanvlError("LLM sizes and token options must be non-empty and > 0")
    cost_model = cost_model or CostModel()
    v_star, note = optimal_tokens(law, text_tokens)
    n_max = None if v_star is None else budget_flops / (2.0 * (text_tokens + v_star)) / 1e9
    rows, infeasible = [], 0
    for n_b in sorted(set(float(s) for s in llm_sizes)):
        for v in sorted(set(float(t) for t in token_options)):
            flops = float(cost_model.flops(n_b, v, text_tokens))
            if flops > budget_flops:
                infeasible += 1
                continue
            rows.append(PlanRow(n_b, v, flops / 1e9, float(law.accuracy(n_b, v, text_tokens))))
    rows.sort(key=lambda r: (-r.accuracy, r.gflops))
    return Plan(budget_flops / 1e9, float(text_tokens), v_star, note, n_max, cost_model.describe(), rows, infeasible)


def numeric_optimum(law: Law, budget_flops: float, text_tokens: float, v_max: float = 1e4) -> float:
    """V minimising the law at N = C / (2(Q+V)) by a dense log-grid then bounded scalar search (for checking)."""
    from scipy.optimize import minimize_scalar

    def err(log_v: float) -> float:
        v = np.exp(log_v)
        return float(law.error(budget_flops / (2.0 * (text_tokens + v)) / 1e9, v, text_tokens))

    grid = np.linspace(0.0, np.log(v_max), 2001)
    i = int(np.argmin([err(g) for g in grid]))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    return float(np.exp(minimize_scalar(err, bounds=(lo, hi), method="bounded", options={"xatol": 1e-10}).x))
