"""Scaling laws of few-token VLMs: fit error(N, V) with uncertainty, a FLOPs cost model, an inference-optimal planner.

Public API (numpy/scipy only; no torch):
    load_results_csv(path) -> {task: ScalingData};  from_records(list_of_dicts) -> ScalingData
    fit_law(data, form="paper"|"qv", n_boot=1000, seed=0) -> FitResult  (.law, .to_json(), .to_dict())
    plan(law, budget_flops, text_tokens, llm_sizes, token_options, cost_model=None) -> Plan
    CostModel(...).flops(n_b, v, q)
"""
from leanvl.scaling.cost import CostModel, attention_flops, llm_flops, llm_shape
from leanvl.scaling.io import ScalingData, from_records, load_results_csv, reference_path
from leanvl.scaling.law import FitResult, Law, compare_forms, fit_law
from leanvl.scaling.plan import Plan, optimal_tokens, plan

__all__ = ["CostModel", "attention_flops", "llm_flops", "llm_shape", "ScalingData", "from_records",
           "load_results_csv", "reference_path", "FitResult", "Law", "compare_forms", "fit_law", "Plan",
           "optimal_tokens", "plan"]
