"""`leanvl repro scaling` at the tiny scale: runs, writes its outputs (with held-out losses), resumes only the missing
cell; and the held-out answer loss is the model's own training loss on those items. No findings asserted."""
import json
import os

import torch

from leanvl.repro.cli import load_recipes
from leanvl.repro.runner import run_recipe
from leanvl.repro.study_recipes import scaling_settings, steps_for

load_recipes()


def test_scaling_runs_writes_outputs_and_resumes(tmp_path):
    out = str(tmp_path / "s")
    first = run_recipe("scaling", out, scale="tiny", device="cpu", log=lambda m: None)
    for name in ("result.json", "table.md", "plot.png", "summary.md", "summary.json"):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    with open(os.path.join(out, "table.md")) as f:
        assert f.read().strip() == first["table"]
    cells = [r for r in first["rows"] if r["cell"] != "encoder"]
    assert [r["cell"] for r in cells] == ["tiny-v1", "tiny-v4", "small-v1", "small-v4"]
    for r in cells:
        assert r["steps"] == steps_for(scaling_settings("tiny"), r["llm"]) == 2
        assert set(r["heldout_loss"]) >= {"all", "reasoning", "answer_tokens"} and r["heldout_loss"]["all"] > 0
        assert {row["task"] for row in r["rows"]} >= {"reasoning"} and r["train_losses"][-1][0] == 2
    assert "held-out loss reasoning" in first["table"] and "Fitted law" in first["table"]
    # interrupted before the last cell: only that cell runs again
    os.remove(os.path.join(out, "cells", "small-v4", "done.json"))
    logs = []
    again = run_recipe("scaling", out, scale="tiny", device="cpu", log=logs.append)
    assert logs == ["leanvl repro: cell 5/5 small-v4 ..."]
    assert again["rows"][:4] == first["rows"][:4]


def test_heldout_loss_is_the_training_loss_on_those_items(tmp_path):
    from leanvl.sweep import heldout_loss
    from leanvl.vlm.batches import image_transform
    from leanvl.vlm.chat import collate, encode_conversation
    from leanvl.vlm.evaluate import eval_items
    from leanvl.vlm.io import build_vlm
    from leanvl.vlm.model import VLMConfig
    from leanvl.vlm.vqa_data import conversation

    model = build_vlm(VLMConfig(llm="tiny", encoder="leanvl_convnet", image_size=32, compressor="avgpool", tokens=1))
    items = [it for it in eval_items("synthetic", image_size=32, limit=12, seed=0) if it["split"] == "reasoning"]
    got = heldout_loss(model, items, batch_size=5)  # several batches of unequal answer lengths
    batch = collate([encode_conversation(model.tokenizer, conversation(it["question"], it["answer"]))
                     for it in items], model.tokenizer.pad_token_id)
    batch["image"] = torch.stack([image_transform(32)(it["image"].convert("RGB")) for it in items])
    with torch.no_grad():
        ref = model.eval()(batch)
    assert abs(got["reasoning"] - float(ref["loss"])) < 1e-4 and got["all"] == got["reasoning"]
    assert got["answer_tokens"] == int(ref["answer_tokens"])
