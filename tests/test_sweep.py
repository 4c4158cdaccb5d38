"""`leanvl sweep`: a tiny grid end to end, resumable, its CSV read by `leanvl scaling fit`, bad input exit 2."""
import csv
import json
import os

import pytest

from leanvl.cli import main

def tiny(steps: int = 2) -> list[str]:
    return ["--llm-sizes", "tiny,small", "--tokens", "1,4", "--steps", str(steps), "--batch-size", "4",
            "--eval-limit", "12", "--bootstrap", "20"]


TINY = tiny()


def rows(out):
    with open(os.path.join(out, "results.csv")) as f:
        return list(csv.DictReader(f))


def test_tiny_sweep_end_to_end_resumable_and_fittable(tmp_path, capsys):
    out = str(tmp_path / "sw")
    assert main(["sweep", *TINY, "--out", out]) == 0
    first = rows(out)
    assert {(r["llm"], r["visual_tokens"]) for r in first} == {("tiny", "1"), ("tiny", "4"), ("small", "1"),
                                                               ("small", "4")}
    assert {r["task"] for r in first} == {"reasoning", "ocr"}
    assert all(0.0 <= float(r["accuracy"]) <= 1.0 and int(r["llm_params"]) > 0 for r in first)
    assert all(float(r["accuracy_lo"]) <= float(r["accuracy"]) <= float(r["accuracy_hi"]) for r in first)
    assert all(int(r["n_questions"]) > 0 and float(r["accuracy_hi"]) > float(r["accuracy_lo"]) for r in first)
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert {s["task"] for s in summary["splits"]} == {"reasoning", "ocr"}
    assert os.path.exists(os.path.join(out, "plots", "scaling_reasoning_frontier.png"))
    # rerun: every cell is done, no row is added
    assert main(["sweep", *TINY, "--out", out]) == 0
    assert rows(out) == first
    # --cache-features: the later cells read the frozen encoder's features of the first; the same rows
    cached = str(tmp_path / "cached")
    capsys.readouterr()
    assert main(["sweep", *TINY, "--out", cached, "--cache-features"]) == 0
    assert "--cache-features: " in capsys.readouterr().out
    timing = ("train_wall_s", "eval_wall_s")
    assert [{k: v for k, v in r.items() if k not in timing} for r in rows(cached)] == \
        [{k: v for k, v in r.items() if k not in timing} for r in first]
    # the CSV is what `leanvl scaling fit` reads
    assert main(["scaling", "fit", os.path.join(out, "results.csv"), "--bootstrap", "10"]) == 0
    assert "reasoning" in capsys.readouterr().out
    assert main(["scaling", "fit", os.path.join(out, "results.csv"), "--bootstrap", "cluster:10",
                 "--weights", "binomial"]) == 0   # n_questions per cell feeds the binomial weights
    assert "weights binomial" in capsys.readouterr().out


def test_interrupted_cell_resumes_from_its_checkpoint(tmp_path):
    out = str(tmp_path / "sw")
    from leanvl.sweep import SweepSettings, prepare_dir, train_cell

    s = SweepSettings(llm_sizes=["tiny", "small"], tokens=[1, 4], steps=4, batch_size=4)
    prepare_dir(out, s, overwrite=False)
    cell = os.path.join(out, "cells", "tiny-v1")
    train_cell(s, "tiny", 1, cell)  # a finished training, then "killed" before its evaluation
    before = sorted(os.listdir(os.path.join(cell, "checkpoints")))
    train_cell(s, "tiny", 1, cell)  # the rerun resumes at the last step instead of retraining
    assert sorted(os.listdir(os.path.join(cell, "checkpoints"))) == before
    assert len(open(os.path.join(cell, "metrics.jsonl")).readlines()) == 4


@pytest.mark.parametrize("args,needle", [
    (["--llm-sizes", "tiny,gigantic"], "unknown LLM size"),
    (["--tokens", "1,3"], "do not tile"),
    (["--out", "/proc/leanvl-sweep"], "cannot write"),
    (["--cache-features", "--cache-gb", "nan"], "--cache-gb must be a positive number"),
])
def test_bad_input_exit_2(tmp_path, capsys, args, needle):
    base = ["sweep", *TINY, "--out", str(tmp_path / "sw")]
    assert main(base + args) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err


def test_rerun_with_other_settings_refuses_unless_overwrite(tmp_path, capsys):
    out = str(tmp_path / "sw")
    assert main(["sweep", *TINY, "--out", out]) == 0
    assert main(["sweep", *tiny(steps=3), "--out", out]) == 2
    assert "other settings" in capsys.readouterr().err
    assert main(["sweep", *tiny(steps=3), "--out", out, "--overwrite"]) == 0
    assert {r["steps"] for r in rows(out)} == {"3"}


def test_multi_layers_flag_reaches_the_cells(tmp_path):
    from leanvl.cli import build_parser
    from leanvl.sweep import settings_from_args, train_cell

    args = build_parser().parse_args(["sweep", *tiny(1), "--multi-layers", "2,3", "--out", str(tmp_path / "sw")])
    s = settings_from_args(args)
    assert s.multi_layers == "2,3" and s.llm_sizes == ["tiny", "small"] and s.tokens == [1, 4]
    cell = str(tmp_path / "sw" / "cells" / "tiny-v1")
    train_cell(s, "tiny", 1, cell)
    saved = json.load(open(os.path.join(cell, "config.json")))["extra"]["vlm"]
    assert saved["multi_layers"] == "2,3"
