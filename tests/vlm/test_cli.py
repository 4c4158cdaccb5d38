"""`leanvl vlm train|ask|eval|bench` and `leanvl data vqa` end to end; bad input exits 2 with one line."""
import json
import os
import subprocess
import sys

import pytest

from leanvl.cli import main
from leanvl.train.checkpoint import checkpoint_dirs

TRAIN = ["vlm", "train", "--llm", "tiny", "--compressor", "quecc", "--tokens", "4", "--multi-layers", "1,2,3",
         "--batch-size", "4", "--no-progress", "--log-every", "1"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("vlm") / "run")
    assert main(TRAIN + ["--steps", "3", "--out", out]) == 0
    return out


def test_train_writes_spec_and_checkpoint_and_resumes(run_dir):
    assert os.path.isfile(os.path.join(run_dir, "vlm", "vlm.json"))
    assert os.path.isfile(os.path.join(run_dir, "vlm", "tokenizer", "tokenizer.json"))
    assert len(checkpoint_dirs(run_dir)) == 1
    lines = [json.loads(x) for x in open(os.path.join(run_dir, "metrics.jsonl"))]
    assert [x["step"] for x in lines] == [1, 2, 3] and all(x["answer_tokens"] > 0 for x in lines)
    assert main(TRAIN + ["--steps", "4", "--out", run_dir, "--resume", "latest"]) == 0
    assert checkpoint_dirs(run_dir)[-1].endswith("step-00000004")


def test_eval_and_ask_from_a_run(run_dir, tmp_path, capsys):
    from leanvl.data.synthetic import scene_for_index

    out = tmp_path / "acc.json"
    assert main(["vlm", "eval", "--ckpt", run_dir, "--limit", "12", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["splits"]) <= {"reasoning", "ocr"} and 0.0 <= result["overall"] <= 1.0
    assert sum(result["counts"].values()) == 12
    scene_for_index(0, "test", 0)[0].save(tmp_path / "img.png")
    capsys.readouterr()
    assert main(["vlm", "ask", "--ckpt", run_dir, "--image", str(tmp_path / "img.png"), "--max-new-tokens", "3",
                 "What color is the star?"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) <= 1


def test_data_vqa_json_feeds_eval_and_train(run_dir, tmp_path, capsys):
    d = tmp_path / "vqa"
    assert main(["data", "vqa", "--out", str(d), "--n", "6"]) == 0
    entries = json.loads((d / "vqa.json").read_text())
    assert {e["split"] for e in entries} <= {"reasoning", "ocr"} and len(entries) >= 6
    assert all((d / e["image"]).is_file() for e in entries)
    capsys.readouterr()
    assert main(["vlm", "eval", "--ckpt", run_dir, "--data", str(d / "vqa.json")]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert sum(result["counts"].values()) == len(entries)
    out = str(tmp_path / "run2")
    assert main(TRAIN + ["--steps", "1", "--data", str(d / "vqa.json"), "--out", out, "--init", run_dir]) == 0


def test_bench_prints_rows(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["vlm", "bench", "--llm", "tiny", "--tokens", "1,4,16", "--grid", "4", "--vision-dim", "16",
                 "--repeats", "1", "--batch", "2", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    rows, summary = result["rows"], result["summary"]
    assert [r["tokens"] for r in rows] == [1, 4, 16] and all(r["batch"] == 2 for r in rows)
    assert summary["measured_speedup"] == rows[2]["prefill_ms"] / rows[0]["prefill_ms"]
    assert summary["predicted_speedup"] == rows[2]["flops"]["total"] / rows[0]["flops"]["total"]
    assert "FLOPs predict" in capsys.readouterr().out
    flops = [r["flops"]["total"] for r in rows]
    assert flops == sorted(flops) and rows[0]["flops"]["linear"] == 2 * rows[0]["llm_params"] * (32 + 1)


def test_bench_bad_batch_exits_2(capsys):
    assert main(["vlm", "bench", "--llm", "tiny", "--tokens", "1", "--batch", "0"]) == 2
    assert capsys.readouterr().err.strip() == "leanvl: error: --batch must be >= 1, got 0"


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    (tmp_path / "empty_llm").mkdir()
    (tmp_path / "empty_llm" / "config.json").write_text("{}")
    (tmp_path / "noconv.json").write_text(json.dumps([{"image": "x.png"}]))
    from PIL import Image
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    (tmp_path / "twoimg.json").write_text(json.dumps([{"image": "x.png", "conversations": [
        {"from": "human", "value": "<image><image>?"}, {"from": "gpt", "value": "a"}]}]))
    base = TRAIN + ["--steps", "1"]
    cases = [
        (["--compressor", "blur"], "unknown compressor"),
        (["--llm", "gpt-9"], "unknown LLM"),
        (["--llm", str(tmp_path / "empty_llm")], "has no weights"),
        (["--data", str(tmp_path / "noconv.json")], "no 'conversations'"),
        (["--data", str(tmp_path / "twoimg.json")], "2 <image> placeholders for 1 image"),
        (["--freeze", "brain"], "unknown part"),
    ]
    for i, (extra, match) in enumerate(cases):
        capsys.readouterr()
        assert main(base + ["--out", str(tmp_path / f"r{i}"), *extra]) == 2, extra
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("leanvl: error:") and match in lines[0], (extra, lines)


def test_bad_token_count_in_a_subprocess_has_no_traceback(tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-m", "leanvl.cli", *TRAIN, "--steps", "1", "--tokens", "9",
                          "--out", str(tmp_path / "r")], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "leanvl: error: 9 visual tokens do not tile the 8x8 encoder grid; valid counts: 1, 4, 16, 64"]


def test_eval_json_with_answers_and_options_reports_every_metric(run_dir, tmp_path, capsys):
    from PIL import Image

    Image.new("RGB", (64, 64), "red").save(tmp_path / "r.png")
    ask = lambda q, a: [{"from": "human", "value": f"<image>\n{q}"}, {"from": "gpt", "value": a}]  # noqa: E731
    entries = [{"image": "r.png", "conversations": ask("What color?", "red"), "split": "vqa",
                "answers": ["red"] * 6 + ["orange"] * 4},
               {"image": "r.png", "conversations": ask("Which? A. red B. blue", "A"), "split": "mc",
                "options": ["red", "blue"]},
               {"image": "r.png", "conversations": ask("Read it.", "stop"), "split": "ocr"}]
    (tmp_path / "q.json").write_text(json.dumps(entries))
    out = tmp_path / "res.json"
    capsys.readouterr()
    assert main(["vlm", "eval", "--ckpt", run_dir, "--data", str(tmp_path / "q.json"), "--json", str(out),
                 "--records"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[0].split()[:3] == ["metric", "group", "value"] and any("mc_accuracy" in x for x in printed)
    result = json.loads(out.read_text())
    m, records = result["metrics"], result["records"]
    assert m["vqa_accuracy"]["overall"]["n"] == 1 and m["mc_accuracy"]["overall"]["n"] == 1
    assert m["anls"]["overall"]["n"] == 3 and set(m["exact_match"]["splits"]) == {"vqa", "mc", "ocr"}
    assert m["exact_match"]["overall"]["value"] == result["overall"] == sum(r["correct"] for r in records) / 3
    lo, hi = m["exact_match"]["overall"]["ci"]
    assert 0.0 <= lo <= result["overall"] <= hi <= 1.0 and hi - lo > 0.3   # 3 questions: a wide interval
    assert records[0]["answers"] == ["red"] * 6 + ["orange"] * 4 and records[1]["options"] == ["red", "blue"]
