"""`leanvl repro`: every recipe runs at the tiny scale, writes result.json / table.md / plot.png, and a rerun
resumes (finished cells are not run again). Findings are not asserted here (README / RESULTS)."""
import json
import os

import pytest

from leanvl.cli import main
from leanvl.errors import LeanvlError
from leanvl.repro.cli import load_recipes
from leanvl.repro.runner import run_recipe

load_recipes()


def _outputs(out):
    with open(os.path.join(out, "result.json")) as f:
        result = json.load(f)
    assert os.path.getsize(os.path.join(out, "plot.png")) > 1000
    with open(os.path.join(out, "table.md")) as f:
        assert f.read().strip() == result["table"]
    return result


def test_quecc_runs_resumes_and_refuses_other_settings(tmp_path):
    out = str(tmp_path / "q")
    logs = []
    first = run_recipe("quecc", out, scale="tiny", device="cpu", log=logs.append)
    result = _outputs(out)
    assert [r["cell"] for r in result["rows"]] == ["encoder", "ceiling", "avgpool-v1", "quecc-gate-v1"]
    assert "binding" in result["table"] and len(logs) == 4
    ceil = result["rows"][1]["ceiling"]
    assert set(ceil) == {"avgpool-1", "avgpool-4", "oracle-1", "chance"} and ceil["oracle-1"]["n"] == 20
    assert "oracle-1" in result["table"]
    vlm = result["rows"][2]
    assert vlm["splits"]["reasoning"]["n"] == 8 and 0 <= vlm["splits"]["reasoning"]["ci"][0] <= 1
    # interrupted after the first VLM cell: only the missing cell runs again, the others keep their rows
    os.remove(os.path.join(out, "cells", "quecc-gate-v1", "done.json"))
    os.remove(os.path.join(out, "result.json"))
    logs.clear()
    again = run_recipe("quecc", out, scale="tiny", device="cpu", log=logs.append)
    assert logs == ["leanvl repro: cell 4/4 quecc-gate-v1 ..."]
    assert again["rows"][:3] == first["rows"][:3]
    with pytest.raises(LeanvlError, match="other settings"):
        run_recipe("quecc", out, scale="cpu", device="cpu")


# ocr-tokens: tests/repro/test_ocr_recipe.py; scaling: test_scaling_recipe.py; superclass-vs-clip: test_compare_recipe.py


def test_cli_rejects_unknown_recipe_and_scale(capsys):
    assert main(["repro", "nope"]) == 2
    assert main(["repro", "quecc", "--scale", "huge"]) == 2
