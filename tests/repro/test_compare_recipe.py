"""`leanvl repro superclass-vs-clip` at the tiny scale: four real trainings on the CPU-seconds budget (in this
process), the report, and resumption. The held-out evaluation is replaced by fixed numbers here: compare's own
`evaluate_runs` (probe, k-shot, zero-shot, retrieval) runs end to end in tests/test_compare.py, and at this size it
would add ~2 min. Findings are not asserted (README / RESULTS)."""
import json
import os

import pytest

import leanvl.compare
from leanvl.repro.cli import load_recipes
from leanvl.repro.compare_recipe import COMPARE_RUNS, compare_settings, mean_interval
from leanvl.repro.runner import run_recipe

load_recipes()
TASKS = ("shape", "color", "count")


def _fixed_evals(cfg):
    """evaluate_runs' structure with fixed accuracies (one per run), after checking each run left a checkpoint."""
    evals = {}
    for i, name in enumerate(COMPARE_RUNS):
        assert os.path.exists(os.path.join(cfg.out, name, "result.json"))
        acc = 0.3 + 0.1 * i
        evals[name] = {"trainable_params": 10, "encoder_params": 5,
                       "probe": {**{t: acc for t in TASKS}, "top1": acc},
                       "fewshot": {"top1": acc, "top1_std": 0.05, "seeds": 3, "k": cfg.k},
                       "zeroshot": {"shape": acc, "color": acc, "top1": acc}, "retrieval": {"mean_r1": acc}}
    return evals


@pytest.fixture
def fixed_evaluation(monkeypatch):
    monkeypatch.setattr(leanvl.compare, "evaluate_runs", _fixed_evals)


def _read(path):
    with open(path) as f:
        return json.load(f)


def test_runs_on_the_cpu_clock_writes_outputs_and_resumes(tmp_path, fixed_evaluation):
    out = str(tmp_path / "svc")
    logs = []
    first = run_recipe("superclass-vs-clip", out, scale="tiny", device="cpu", log=logs.append)
    assert [r["cell"] for r in first["rows"]] == [*COMPARE_RUNS, "evaluate", "superclass-floor"] and len(logs) == 6
    assert os.path.getsize(os.path.join(out, "plot.png")) > 10_000
    assert open(os.path.join(out, "table.md")).read().strip() == first["table"]
    for row in first["rows"][:4]:
        assert row["step"] >= 1 and row["train_s"] > 0 and row["process_cpu_s"] > 0 and row["final_loss"] > 0
    assert first["rows"][0]["target_entropy"] > 0  # SuperClass's loss floor is logged
    obj = first["rows"][4]["objectives"]
    assert obj["superclass"]["eval_curve"][-1]["step"] == obj["superclass"]["steps"]  # in-loop k-NN, final step
    assert "eval/zeroshot_top1" in obj["clip"]["eval_curve"][-1]
    table = {line.split("|")[1].strip(): line for line in first["table"].splitlines()[2:6]}
    assert set(table) == {*COMPARE_RUNS} and "30.0% [" in table["superclass"] and "(lit)" in table["superclass"]
    assert os.path.exists(os.path.join(out, "compare", "compare.md"))
    floor = first["rows"][-1]
    assert 0 < floor["target_entropy"] < floor["prior_loss"] and "image-independent prior" in first["table"]
    assert "| superclass | 30.0% [" in first["table"].split("per task")[1]  # the per-task probe table
    # interrupted in the LiT cell, after its last checkpoint: only LiT (resumed, nothing left to train) and the
    # evaluation run again; the other rows are kept as they were
    steps = first["rows"][3]["step"]
    for path in ("cells/lit/done.json", "cells/evaluate/done.json", "compare/lit/result.json", "result.json"):
        os.remove(os.path.join(out, path))
    logs.clear()
    again = run_recipe("superclass-vs-clip", out, scale="tiny", device="cpu", log=logs.append)
    assert logs == ["leanvl repro: cell 4/6 lit ...", "leanvl repro: cell 5/6 evaluate ..."]
    assert again["rows"][:3] == first["rows"][:3] and again["rows"][3]["step"] == steps
    assert _read(os.path.join(out, "compare", "lit", "config.json"))["history"]  # it was a --resume


def test_cpu_default_is_an_equal_cpu_seconds_budget_and_intervals():
    s = compare_settings("cpu")
    assert s["budget"] == "cpu-seconds" and s["seconds"] > 0 and s["k"] == 10
    est = mean_interval({"shape": 0.5, "color": 1.0, "count": 0.5, "top1": 0.6667}, {"shape": 100, "color": 100,
                                                                                    "count": 400})
    assert est["value"] == pytest.approx(2 / 3) and est["n"] == 600
    assert est["ci"][0] < 2 / 3 < est["ci"][1] and est["tasks"]["color"]["ci"][1] == pytest.approx(1.0)
    half = (0.25 / 100 + 0.25 / 400) ** 0.5 / 3 * 1.96
    assert est["ci"][1] - 2 / 3 == pytest.approx(half, rel=1e-6)
