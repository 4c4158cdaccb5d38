"""`leanvl repro ocr-tokens` at the tiny scale: runs on `synthetic+ocr`, writes result.json / table.md / plot.png,
and a rerun resumes (finished cells are not run again). Findings are not asserted here (README / RESULTS)."""
import json
import os

from leanvl.repro.cli import load_recipes
from leanvl.repro.runner import RECIPES, run_recipe

load_recipes()


def test_ocr_tokens_runs_resumes_and_writes_outputs(tmp_path):
    out = str(tmp_path / "o")
    logs = []
    first = run_recipe("ocr-tokens", out, scale="tiny", device="cpu", log=logs.append)
    with open(os.path.join(out, "result.json")) as f:
        result = json.load(f)
    with open(os.path.join(out, "table.md")) as f:
        assert f.read().strip() == result["table"]
    assert os.path.getsize(os.path.join(out, "plot.png")) > 1000
    assert result["settings"]["data"] == "synthetic+ocr" and len(logs) == 3
    assert [r["cell"] for r in result["rows"]] == ["encoder", "avgpool-v1", "avgpool-v4"]
    assert [r["tokens"] for r in result["rows"][1:]] == [1, 4] and "OCR" in result["table"]
    splits = result["rows"][1]["splits"]
    assert splits["ocr"]["n"] + splits["reasoning"]["n"] == 8 and splits["ocr"]["n"] > 0
    assert 0 <= splits["ocr"]["ci"][0] <= splits["ocr"]["value"] <= splits["ocr"]["ci"][1] <= 1
    # interrupted before the last cell: only that cell runs again, the others keep their rows
    os.remove(os.path.join(out, "cells", "avgpool-v4", "done.json"))
    logs.clear()
    again = run_recipe("ocr-tokens", out, scale="tiny", device="cpu", log=logs.append)
    assert logs == ["leanvl repro: cell 3/3 avgpool-v4 ..."] and again["rows"][:2] == first["rows"][:2]


def test_ocr_tokens_cpu_default_spans_one_token_to_more_than_one_per_letter():
    s = RECIPES.get("ocr-tokens").settings("cpu")
    assert s["tokens"] == [1, 4, 16] and RECIPES.get("ocr-tokens").settings("gpu")["tokens"][-1] == 64 and s["data"] == "synthetic+ocr" and s["compressor"] == "avgpool"
