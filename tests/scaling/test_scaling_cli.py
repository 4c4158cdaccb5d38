"""`leanvl scaling fit/plan` end to end on the shipped reference data; plots; no torch import."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from leanvl.cli import main


@pytest.fixture(scope="module")
def reference_fit(tmp_path_factory):
    out = tmp_path_factory.mktemp("fit")
    assert main(["scaling", "fit", "--reference", "reasoning", "--json", str(out / "fit.json"),
                 "--plot", str(out / "plots"), "--bootstrap", "1000"]) == 0
    return out


def test_reference_fit_reproduces_paper(reference_fit):
    d = json.loads((reference_fit / "fit.json").read_text())
    assert 0.06 < d["alpha"] < 0.09 and 0.01 < d["beta"] < 0.02 and d["D"] >= 0
    assert d["ci"]["alpha"][0] <= 0.077 <= d["ci"]["alpha"][1]      # the paper's value is inside our interval
    assert d["ci"]["beta"][0] <= 0.015 <= d["ci"]["beta"][1]
    assert d["cv"]["max_abs_pts"] < 2.0 and d["bootstrap"]["n"] == 1000


def test_plots_written(reference_fit):
    pngs = sorted(p.name for p in (reference_fit / "plots").glob("*.png"))
    assert pngs == ["scaling_frontier.png", "scaling_isoflop.png", "scaling_pred_obs.png"]
    assert all((reference_fit / "plots" / p).read_bytes()[:4] == b"\x89PNG" for p in pngs)


def test_plan_from_fit_json(reference_fit, capsys):
    law = str(reference_fit / "fit.json")
    plan_json = reference_fit / "plan.json"
    assert main(["scaling", "plan", "--law", law, "--budget-gflops", "500", "--text-tokens", "50",
                 "--json", str(plan_json)]) == 0
    p = json.loads(plan_json.read_text())
    assert 12 <= p["v_star"] <= 14 and all(r["gflops"] <= 500 for r in p["rows"])
    assert {r["llm_params_b"] for r in p["rows"]} <= {0.5, 1.8, 4.0, 7.0, 14.0}
    assert main(["scaling", "plan", "--law", law, "--budget-gflops", "500", "--text-tokens", "0"]) == 0
    assert "V* = 1" in capsys.readouterr().out


def test_qv_form_comparison_reported(tmp_path, capsys):
    out = tmp_path / "qv.json"
    assert main(["scaling", "fit", "--reference", "reasoning", "--form", "qv", "--text-tokens", "50",
                 "--bootstrap", "20", "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    assert d["form"] == "qv" and d["form_comparison"]["better"] in ("paper", "qv")
    assert "cross-validates better" in capsys.readouterr().out


@pytest.mark.parametrize("argv,message", [
    (["scaling", "fit"], "either a CSV path or --reference"),
    (["scaling", "fit", "--reference", "reasoning", "--form", "qv", "--bootstrap", "0"], "needs text tokens"),
    (["scaling", "plan", "--law", "/nonexistent.json", "--budget-gflops", "1", "--text-tokens", "5"],
     "no such file"),
])
def test_cli_user_errors(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_plan_bad_budget_and_bad_json(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["scaling", "plan", "--law", str(bad), "--budget-gflops", "1", "--text-tokens", "5"]) == 2
    good = tmp_path / "law.json"
    good.write_text(json.dumps({"A": 0.6, "alpha": 0.07, "beta": 0.015, "D": 0.0}))
    assert main(["scaling", "plan", "--law", str(good), "--budget-gflops", "-3", "--text-tokens", "5"]) == 2
    assert "budget" in capsys.readouterr().err


def test_scaling_does_not_import_torch():
    code = ("import sys; import leanvl.scaling, leanvl.scaling.cli, leanvl.scaling.plots; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
