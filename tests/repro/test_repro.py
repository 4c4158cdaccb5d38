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


def _rows(out):
    with open(os.path.join(out, "result.json")) as f:
        rows = json.load(f)["rows"]
    return [{k: v for k, v in r.items() if k not in ("wall_s", "cpu_s", "train_s")} for r in rows]


def test_cache_features_gives_the_same_results_as_no_cache(tmp_path, capsys):
    """`--cache-features`: the second VLM cell reads the first cell's encoded batches; every result row (losses,
    accuracies, intervals) equals the uncached run's."""
    plain, cached = str(tmp_path / "plain"), str(tmp_path / "cached")
    assert main(["repro", "quecc", "--scale", "tiny", "--device", "cpu", "--out", plain]) == 0
    capsys.readouterr()
    assert main(["repro", "quecc", "--scale", "tiny", "--device", "cpu", "--out", cached, "--cache-features"]) == 0
    assert "--cache-features: 3 batches from the cache, 3 encoded" in capsys.readouterr().out
    assert _rows(cached) == _rows(plain)
    for cell in ("avgpool-v1", "quecc-gate-v1"):  # the training losses, step by step, to the last bit
        losses = [[json.loads(line)["loss"] for line in open(os.path.join(d, "cells", cell, "metrics.jsonl"))
                   if '"loss"' in line] for d in (plain, cached)]
        assert losses[0] == losses[1] and losses[0]
    assert main(["repro", "quecc", "--scale", "tiny", "--out", str(tmp_path / "x"), "--cache-features",
                 "--cache-gb", "0"]) == 2
    assert "--cache-gb must be a positive number" in capsys.readouterr().err
