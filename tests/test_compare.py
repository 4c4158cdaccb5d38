"""`leanvl compare` end to end at tiny size (three real trainings in subprocesses), its report, and bad input."""
import json
import os

import pytest

from leanvl.cli import main
from leanvl.compare import pretrain_argv
from leanvl.compare_config import CompareConfig
from leanvl.compare_report import compare_command
from leanvl.errors import LeanvlError

TINY = ["--data", "synthetic", "--steps", "2", "--batch-size", "8", "--image-size", "32", "--eval-train", "300",
        "--eval-test", "40", "--k", "2"]


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    code = main(["compare", *TINY, "--out", str(out / "runs"), "--json", str(out / "result.json")])
    return code, out


def test_compare_writes_table_json_and_png(compared, capsys):
    code, out = compared
    assert code == 0
    result = json.loads((out / "result.json").read_text())
    objectives = result["objectives"]
    assert set(objectives) == {"superclass", "clip", "siglip"}
    for name, entry in objectives.items():
        for key in ("probe_top1", "fewshot_top1", "zeroshot_top1", "images_per_s", "peak_memory_mb", "wall_s",
                    "params"):
            assert entry[key] is not None, (name, key)
        for key in ("probe_top1", "fewshot_top1", "zeroshot_top1"):
            assert 0.0 <= entry[key] <= 1.0
        assert entry["images_per_s"] > 0 and entry["params"] > entry["encoder_params"] > 0
        assert entry["peak_memory_kind"] in ("rss", "cuda") and entry["steps"] == 2
        assert [s for s, _ in entry["loss_curve"]] == [1, 2]
    sc, clip = objectives["superclass"], objectives["clip"]
    assert sc["zeroshot_via"] == "lit" and sc["lit"]["trainable_params"] < sc["lit"]["params"]
    assert sc["encoder_params"] == clip["encoder_params"]  # same encoder architecture
    md = (out / "runs" / "compare.md").read_text()
    assert "| superclass |" in md and "| clip |" in md and "| siglip |" in md and "--steps 2" in md
    assert (out / "runs" / "compare.png").stat().st_size > 10_000
    assert json.loads((out / "runs" / "compare.json").read_text())["objectives"].keys() == objectives.keys()


def test_same_data_order_for_both_objectives(compared):
    _, out = compared
    rows = {}
    for name in ("superclass", "clip", "siglip", "lit"):
        with open(out / "runs" / name / "metrics.jsonl") as f:
            rows[name] = [json.loads(line)["data_raw"] for line in f]
    assert rows["superclass"] == rows["clip"] == rows["siglip"] == rows["lit"] == [8, 16]


def test_eval_commands_on_the_compared_runs(compared, capsys):
    _, out = compared
    runs = out / "runs"
    capsys.readouterr()
    assert main(["eval", "retrieval", "--ckpt", str(runs / "superclass")]) == 2
    assert "--objective lit" in capsys.readouterr().err
    assert main(["eval", "retrieval", "--ckpt", str(runs / "lit"), "--n", "30", "--json", str(out / "r.json")]) == 0
    r = json.loads((out / "r.json").read_text())
    assert r["n"] == 30 and 0 <= r["i2t_r1"] <= r["i2t_r5"] <= 1
    assert main(["eval", "zeroshot", "--ckpt", str(runs / "clip"), "--n-test", "30", "--classnames", "x.txt"]) == 2


@pytest.mark.parametrize("extra, message", [
    (["--steps", "0"], "--steps must be >= 1"),
    (["--json", "/no/such/dir/x.json"], "--json"),
])
def test_bad_input_exits_2(tmp_path, capsys, extra, message):
    assert main(["compare", *TINY, "--out", str(tmp_path / "o"), *extra]) == 2
    assert message in capsys.readouterr().err


def test_refuses_non_empty_out_and_files(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert main(["compare", *TINY, "--out", str(tmp_path / "f")]) == 2
    assert main(["compare", *TINY, "--out", str(tmp_path)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert os.listdir(tmp_path) == ["f"]


def test_training_failure_is_one_line(tmp_path, capsys):
    (tmp_path / "bad.tar").write_text("not a tar\n")  # passes validation, fails in the training process
    assert main(["compare", *TINY, "--data", str(tmp_path / "bad.tar"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("leanvl: error: superclass training failed (exit 2)"), err


def test_unknown_encoder_is_refused_before_any_training(tmp_path, capsys):
    assert main(["compare", *TINY, "--model", "no_such_encoder", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no_such_encoder" in err and "training failed" not in err and "\n" not in err
    assert not (tmp_path / "o").exists()


def test_budget_seconds_runs_every_objective_on_the_clock():
    cfg = CompareConfig(out="o", budget="seconds", seconds=6.0, steps=7)
    for objective in ("superclass", "clip", "siglip", "lit"):
        argv = pretrain_argv(cfg, objective)
        assert argv[argv.index("--max-seconds") + 1] == "6.0"
        assert int(argv[argv.index("--steps") + 1]) >= 10**9  # steps never end a timed run
    assert "--max-seconds" not in pretrain_argv(CompareConfig(out="o", steps=7), "clip")
    command = compare_command({**vars(cfg), "machine": "x"})
    assert "--budget seconds" in command and "--seconds 6.0" in command and "--steps" not in command
    assert "--seconds" not in compare_command(vars(CompareConfig(out="o", steps=7)))


def test_budget_cpu_seconds_runs_every_objective_on_the_cpu_clock_and_resumes():
    cfg = CompareConfig(out="o", budget="cpu-seconds", seconds=6.0, steps=7)
    for objective in ("superclass", "clip", "siglip", "lit"):
        argv = pretrain_argv(cfg, objective)
        assert argv[argv.index("--max-seconds") + 1] == "6.0" and "--overwrite" in argv
        assert argv[argv.index("--max-seconds-clock") + 1] == "cpu"
        assert int(argv[argv.index("--steps") + 1]) >= 10**9
    assert "--max-seconds-clock" not in pretrain_argv(CompareConfig(out="o", budget="seconds"), "clip")
    argv = pretrain_argv(cfg, "clip", resume=True, eval_every=20, eval_n=50)
    assert "--overwrite" not in argv and argv[argv.index("--resume") + 1] == "latest"
    assert argv[argv.index("--eval-every") + 1] == "20" and argv[argv.index("--eval-n") + 1] == "50"
    command = compare_command({**vars(cfg), "machine": "x"})
    assert "--budget cpu-seconds" in command and "--seconds 6.0" in command and "--steps" not in command
    with pytest.raises(LeanvlError, match="--seconds must be a finite number > 0"):
        CompareConfig(out="o", budget="cpu-seconds", seconds=0.0).validate()
