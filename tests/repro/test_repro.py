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


def test_ocr_tokens_and_scaling_write_their_outputs(tmp_path):
    ocr = run_recipe("ocr-tokens", str(tmp_path / "o"), scale="tiny", device="cpu", log=lambda m: None)
    assert [r["tokens"] for r in ocr["rows"][1:]] == [1, 4] and "OCR" in _outputs(str(tmp_path / "o"))["table"]
    out = str(tmp_path / "s")
    result = run_recipe("scaling", out, scale="tiny", device="cpu", log=lambda m: None)
    _outputs(out)
    assert {r["cell"] for r in result["rows"]} == {"encoder", "tiny-v1", "tiny-v4", "small-v1", "small-v4"}
    assert os.path.exists(os.path.join(out, "summary.md")) and "Fitted law" in result["table"]


def test_superclass_vs_clip_cells_and_report(tmp_path):
    """The recipe is `leanvl compare` (whose training and evaluation tests/test_compare.py runs end to end); here:
    its cells, in order, and its report on fixed numbers (no training: it would repeat test_compare's ~70 s)."""
    from leanvl.repro.study_recipes import compare_cells, compare_report, compare_settings

    s = {**compare_settings("tiny"), "device": "cpu"}
    assert [c.name for c in compare_cells(s, str(tmp_path))] == ["superclass", "clip", "siglip", "lit", "evaluate"]
    obj = {name: {"probe_top1": p, "fewshot_top1": 0.4, "fewshot_top1_std": 0.05, "zeroshot_top1": 0.2,
                  "zeroshot_via": "own", "final_loss": 1.5, "wall_s": 3.0}
           for name, p in (("superclass", 0.55), ("clip", 0.5), ("siglip", 0.45))}
    table = compare_report(s, [{"cell": "evaluate", "objectives": obj}], str(tmp_path))
    assert os.path.getsize(os.path.join(tmp_path, "plot.png")) > 1000
    rows = {line.split("|")[1].strip(): line for line in table.splitlines()[2:]}
    assert set(rows) == {"superclass", "clip", "siglip"} and "55.0" in rows["superclass"] and "1.5000" in rows["clip"]


def test_cli_rejects_unknown_recipe_and_scale(capsys):
    assert main(["repro", "nope"]) == 2
    assert main(["repro", "quecc", "--scale", "huge"]) == 2
