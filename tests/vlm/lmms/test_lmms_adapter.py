"""The lmms-eval adapter (real lmms-eval, offline, local tasks) scores the same as `leanvl vlm eval`."""
import json
import os
import subprocess
import sys

import pytest
import torch

from leanvl.cli import main
from leanvl.vlm.evaluate import eval_items, evaluate
from leanvl.vlm.io import save_vlm
from tests.vlm.helpers import make_vlm

SRC = os.path.join(os.path.dirname(__file__), "..", "..", "..", "src")
TASKS = "leanvl_vqa_reasoning,leanvl_vqa_ocr"


def _letter_vlm():
    """An untrained tiny VLM whose greedy answers are image-dependent runs of letters (other byte rows zeroed)."""
    model = make_vlm("avgpool", 4).eval()
    with torch.no_grad():
        emb = model.llm.get_input_embeddings().weight
        keep = torch.zeros(emb.shape[0], dtype=torch.bool)
        keep[ord("a"):ord("z") + 1] = True
        emb[~keep] = 0.0
        model.projector.net[2].weight.mul_(30)
    return model


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A saved VLM and a LLaVA json whose answers are its own answer on every other question (so the expected
    accuracy is known: ceil(n/2)/n per split) and a wrong word on the rest."""
    tmp = tmp_path_factory.mktemp("lmms")
    model = _letter_vlm()
    saved = save_vlm(model, str(tmp / "vlm"))
    items = eval_items("synthetic", image_size=64, limit=12, seed=0)
    _, records = evaluate(model, items, batch_size=4)
    assert all(r["prediction"].isalpha() for r in records)
    (tmp / "images").mkdir()
    entries, seen = [], {}
    for i, (it, r) in enumerate(zip(items, records)):
        k = seen.setdefault(it["split"], 0)
        seen[it["split"]] += 1
        it["image"].save(tmp / "images" / f"{i}.png")
        answer = r["prediction"] if k % 2 == 0 else "zzzz"
        entries.append({"id": i, "image": f"images/{i}.png", "split": it["split"], "kind": it["kind"],
                        "conversations": [{"from": "human", "value": "<image>\n" + it["question"]},
                                          {"from": "gpt", "value": answer}]})
    (tmp / "vqa.json").write_text(json.dumps(entries))
    return tmp, saved, {split: ((n + 1) // 2) / n for split, n in seen.items()}, seen


def test_lmms_eval_cli_scores_like_vlm_eval(setup):
    tmp, saved, expected, _ = setup
    data = str(tmp / "vqa.json")
    assert main(["vlm", "eval", "--ckpt", saved, "--data", data, "--json", str(tmp / "leanvl.json")]) == 0
    ours = json.loads((tmp / "leanvl.json").read_text())
    assert ours["splits"] == expected and set(expected) == {"ocr", "reasoning"}
    assert main(["vlm", "lmms-task", "--data", data, "--out", str(tmp / "tasks")]) == 0
    env = {**os.environ, "LMMS_EVAL_PLUGINS": "leanvl.vlm.lmms", "PYTHONPATH": os.path.abspath(SRC),
           "HF_HOME": str(tmp / "hf"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "lmms_eval", "eval", "--model", "leanvl", "--model_args",
           f"pretrained={saved}", "--tasks", TASKS, "--include_path", str(tmp / "tasks"),
           "--batch_size", "4", "--output_path", str(tmp / "out"), "--verbosity", "ERROR"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=400)
    assert res.returncode == 0 and "Error during evaluation" not in res.stdout + res.stderr, res.stderr[-3000:]
    found = [os.path.join(d, f) for d, _, fs in os.walk(tmp / "out") for f in fs if f.endswith("_results.json")]
    assert len(found) == 1, found
    out = json.loads(open(found[0]).read())
    for split in ("reasoning", "ocr"):
        assert out["results"][f"leanvl_vqa_{split}"]["exact_match,none"] == ours["splits"][split]
    assert out["throughput"]["avg_visual_tokens"] == 4 and out["throughput"]["avg_prefill_ms"] > 0


def test_vlm_eval_lmms_tasks_in_process(setup, capsys):
    tmp, saved, expected, counts = setup
    capsys.readouterr()
    assert main(["vlm", "eval", "--ckpt", saved, "--data", str(tmp / "vqa.json"), "--lmms-tasks", TASKS,
                 "--batch-size", "5"]) == 0
    got = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {t: m["exact_match"] for t, m in got["tasks"].items()} == {f"leanvl_vqa_{s}": v for s, v in expected.items()}
    assert got["tasks"]["leanvl_vqa_ocr"]["n"] == counts["ocr"] and got["throughput"]["avg_visual_tokens"] == 4
    assert main(["vlm", "eval", "--ckpt", saved, "--lmms-tasks", "no_such_task"]) == 2
