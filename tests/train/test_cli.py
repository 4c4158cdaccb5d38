"""`leanvl pretrain` / `export` / `eval probe` end to end, and their bad-input contract (exit 2, one line)."""
import json
import os
import subprocess
import sys

import pytest
import torch

from leanvl.cli import main

TINY = ["--model", "leanvl_convnet", "--image-size", "32", "--batch-size", "8", "--no-progress"]


def test_pretrain_writes_metrics_config_checkpoint_and_export_loads(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["pretrain", "--objective", "superclass", "--data", "synthetic", "--steps", "3", "--out", out,
                 *TINY]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["step"] == 3 and summary["skipped"] == 0
    rows = [json.loads(x) for x in open(os.path.join(out, "metrics.jsonl"))]
    assert rows[-1]["step"] == 3 and "loss" in rows[-1]
    cfg = json.load(open(os.path.join(out, "config.json")))
    assert cfg["extra"]["pretrain"]["model"] == "leanvl_convnet"
    assert main(["export", "--ckpt", out, "--out", str(tmp_path / "enc")]) == 0
    import leanvl

    enc = leanvl.load_encoder(str(tmp_path / "enc"))
    assert enc.forward_pooled(torch.randn(1, 3, 32, 32)).shape == (1, enc.width)


@pytest.mark.parametrize("precision", ["bf16", "bf16_master"])
def test_bf16_precisions_train_a_batchnorm_cnn_and_export(tmp_path, precision):
    """BatchNorm running statistics follow the bf16 weights; the float64 IDF counts stay float64."""
    out = str(tmp_path / precision)
    assert main(["pretrain", "--steps", "2", "--precision", precision, "--out", out, *TINY]) == 0
    from safetensors.torch import load_file

    ckpt = load_file(os.path.join(out, "checkpoints", "step-00000002", "model.safetensors"))
    assert ckpt["idf_df"].dtype == torch.float64
    weight = torch.float32 if precision == "bf16_master" else torch.bfloat16
    assert ckpt["head.fc.weight"].dtype == weight
    assert main(["export", "--ckpt", out, "--out", str(tmp_path / "enc")]) == 0


def test_offline_idf_table_round_trip(tmp_path):
    table = str(tmp_path / "idf.safetensors")
    assert main(["data", "idf", "--data", "synthetic", "--n", "200", "--out", table]) == 0
    from safetensors.torch import load_file

    t = load_file(table)
    assert t["docs"].item() == 200 and t["df"].max().item() <= 200 and t["df"][[0, 49406, 49407]].sum() == 0
    assert main(["pretrain", "--idf", "offline", "--idf-table", table, "--steps", "2",
                 "--out", str(tmp_path / "r"), *TINY]) == 0


@pytest.mark.parametrize("args,needle", [
    (["--model", "no_such_net"], "unknown encoder"),
    (["--data", "/nonexistent/data.csv"], "data"),
    (["--data", "/nonexistent/shard-{0000..0003}.tar"], "shard"),
    (["--steps", "0"], "--steps"),
    (["--precision", "fp8"], "--precision"),
    (["--idf", "offline"], "--idf-table"),
    (["--out", "/proc/leanvl-cannot-write"], "cannot write"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, args, needle):
    base = ["pretrain", *TINY, "--steps", "2", "--out", str(tmp_path / "r")]
    proc = subprocess.run([sys.executable, "-m", "leanvl.cli", *base, *args], capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=120)
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip()
    assert "\n" not in err and "Traceback" not in err and needle.lower() in err.lower(), err


def test_every_pretrain_flag_is_documented():
    from leanvl.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices["pretrain"]
    for action in sub._actions:
        if action.option_strings and action.dest != "help":
            assert action.help and len(action.help) > 5, action.dest
