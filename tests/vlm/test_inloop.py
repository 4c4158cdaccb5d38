"""`vlm train --eval-every N`: held-out VQA with the live model through the trainer's evaluator hook."""
import json
import os

from leanvl.cli import main

TRAIN = ["vlm", "train", "--llm", "tiny", "--compressor", "avgpool", "--tokens", "4", "--batch-size", "4",
         "--no-progress", "--log-every", "5"]


def test_eval_every_logs_heldout_accuracy(tmp_path, monkeypatch):
    import leanvl.vlm.io as io

    def no_reload(*a, **k):
        raise AssertionError("the in-loop evaluation must not reload the model")

    monkeypatch.setattr(io, "load_vlm", no_reload)
    out = str(tmp_path / "run")
    assert main(TRAIN + ["--steps", "3", "--eval-every", "2", "--eval-limit", "6", "--out", out]) == 0
    lines = [json.loads(x) for x in open(os.path.join(out, "metrics.jsonl"))]
    evals = {x["step"]: x for x in lines if "eval/accuracy" in x}
    assert sorted(evals) == [2, 3]  # every 2 steps and after the last
    for x in evals.values():
        assert 0.0 <= x["eval/accuracy"] <= 1.0 and x["eval/n"] == 6 and x["eval_s"] > 0
        assert {"eval/acc_reasoning", "eval/acc_ocr"} <= set(x)


def test_eval_every_bad_data_fails_before_writing(tmp_path):
    out = tmp_path / "run"
    assert main(TRAIN + ["--steps", "1", "--eval-every", "1", "--eval-data", str(tmp_path / "nope.json"),
                         "--out", str(out)]) == 2
    assert not (out / "vlm").exists()
