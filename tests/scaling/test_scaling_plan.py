"""Cost model terms, closed-form optimum vs numerical argmin, planner ranking."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from leanvl.errors import LeanvlError
from leanvl.scaling.cost import CostModel, attention_flops, llm_flops, llm_shape, vit_flops
from leanvl.scaling.law import Law
from leanvl.scaling.plan import numeric_optimum, optimal_tokens, plan


@pytest.mark.parametrize("alpha,beta,q", [(0.077, 0.015, 50), (0.3, 0.1, 200), (0.2, 0.19, 10), (0.5, 0.05, 1000)])
def test_closed_form_matches_numerical_argmin(alpha, beta, q):
    law = Law(0.6, alpha, beta, 0.1)
    v_star, _ = optimal_tokens(law, q)
    for budget in (1e11, 1e13):   # independent of the budget
        assert numeric_optimum(law, budget, q, v_max=1e5) == pytest.approx(v_star, rel=1e-4)


def test_paper_optimum_and_edge_cases():
    paper = Law(0.6, 0.077, 0.015, 0.0)
    assert 12 <= optimal_tokens(paper, 50)[0] <= 14
    assert optimal_tokens(paper, 0)[0] == 1.0
    assert numeric_optimum(paper, 1e12, 0) == pytest.approx(1.0, abs=1e-3)  # argmin sits at the 1-token floor
    v, note = optimal_tokens(Law(0.6, 0.01, 0.05, 0.0), 50)
    assert v is None and "more tokens win" in note


def test_attention_term_counts_causal_pairs():
    layers, width, t = 3, 8, 5
    pairs = sum(i + 1 for i in range(t))      # query i sees keys 0..i
    assert attention_flops(layers, width, t) == layers * pairs * 2 * (2 * width)


def test_llm_shape_from_dict_object_and_nested():
    assert llm_shape({"num_hidden_layers": 24, "hidden_size": 1024}) == (24, 1024)
    assert llm_shape(SimpleNamespace(n_layer=12, n_embd=768)) == (12, 768)
    assert llm_shape({"text_config": {"num_hidden_layers": 32, "hidden_size": 4096}}) == (32, 4096)
    with pytest.raises(LeanvlError):
        llm_shape({"vocab_size": 5})


def test_llm_shape_from_transformers_config():
    from transformers import Qwen2Config

    assert llm_shape(Qwen2Config(num_hidden_layers=4, hidden_size=64, intermediate_size=128,
                                 num_attention_heads=4, num_key_value_heads=4)) == (4, 64)


def test_cost_model_terms_add_up():
    n_b, v, q = 7.0, 16, 50
    base = llm_flops(7e9, v, q)
    assert base == 2 * 7e9 * (q + v)
    assert CostModel().flops(n_b, v, q) == pytest.approx(base)
    vis = vit_flops(3e8, 577)
    cm = CostModel.from_hf_configs({7.0: {"num_hidden_layers": 32, "hidden_size": 4096}}, vision_flops=vis,
                                   compressor_flops=1e9, query_pass=True)
    expected = (base + vis + 1e9 + 2 * 7e9 * q + attention_flops(32, 4096, q + v) + attention_flops(32, 4096, q))
    assert cm.flops(n_b, v, q) == pytest.approx(expected)
    assert "QueCC" in cm.describe() and "attention" in cm.describe()
    with pytest.raises(LeanvlError, match="no LLM config for size 4B"):
        cm.flops(4.0, v, q)


def test_plan_ranks_feasible_options_within_budget():
    law = Law(0.59, 0.071, 0.015, 0.0)
    budget = 5e11
    p = plan(law, budget, 50, [0.5, 1.8, 4, 7], [1, 4, 16, 64, 576])
    assert p.rows and all(r.gflops * 1e9 <= budget for r in p.rows)
    assert len(p.rows) + p.n_infeasible == 20
    accs = [r.accuracy for r in p.rows]
    assert accs == sorted(accs, reverse=True)
    brute = max(((n, v) for n in (0.5, 1.8, 4, 7) for v in (1, 4, 16, 64, 576) if 2 * n * 1e9 * (50 + v) <= budget),
                key=lambda nv: law.accuracy(*nv))
    assert (p.rows[0].llm_params_b, p.rows[0].visual_tokens) == (float(brute[0]), float(brute[1]))
    assert p.n_max_b_at_v_star == pytest.approx(budget / (2 * (50 + p.v_star)) / 1e9)
    assert "rank" in p.table()


def test_plan_extra_cost_shrinks_feasible_set():
    law = Law(0.59, 0.071, 0.015, 0.0)
    base = plan(law, 5e11, 50, [0.5, 1.8, 4, 7], [1, 4, 16, 64])
    quecc = plan(law, 5e11, 50, [0.5, 1.8, 4, 7], [1, 4, 16, 64], CostModel(query_pass=True))
    assert len(quecc.rows) < len(base.rows)


def test_plan_rejects_bad_budget():
    with pytest.raises(LeanvlError, match="budget"):
        plan(Law(0.6, 0.1, 0.01, 0.0), 0, 50)
