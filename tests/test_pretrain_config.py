"""Per-objective option groups: nested in config.json, old flat configs still load, --help grouped by objective."""
import json
import os

import pytest
import torch

from leanvl.cli import main
from leanvl.errors import LeanvlError
from leanvl.objective_options import LitOptions, SuperClassOptions
from leanvl.pretrain_config import PretrainConfig

# config.json's "pretrain" block as runs written before option groups stored it: every objective's flag flat.
OLD_FLAT = {"objective": "superclass", "data": "synthetic", "model": "leanvl_convnet", "pretrained": "",
            "image_size": 32, "idf": "none", "idf_table": "", "loss": "softmax", "label_max_tokens": 0,
            "head_chunk": 4, "text_model": "leanvl-text-tiny", "lit_encoder": "", "lit_unlock": 0,
            "clip_local_loss": True}


def test_old_flat_dict_and_nested_dict_give_the_same_config():
    old = PretrainConfig.from_dict(OLD_FLAT)
    assert old.options == SuperClassOptions(idf="none", head_chunk=4) and old.image_size == 32
    nested = old.to_dict()
    assert nested["options"] == {"idf": "none", "idf_table": "", "loss": "softmax", "head_chunk": 4}
    assert "idf" not in nested and PretrainConfig.from_dict(json.loads(json.dumps(nested))) == old
    lit = PretrainConfig.from_dict({**OLD_FLAT, "objective": "lit", "lit_encoder": "runs/sc", "lit_unlock": 2})
    assert lit.options == LitOptions(lit_encoder="runs/sc", lit_unlock=2)
    assert PretrainConfig(objective="clip").options.text_model == "leanvl-text-tiny"
    with pytest.raises(LeanvlError, match="unknown objective 'mae'"):
        PretrainConfig.from_dict({**OLD_FLAT, "objective": "mae"})


def test_run_with_a_hand_written_old_style_config_loads(tmp_path):
    from leanvl.pretrain import load_run

    run = str(tmp_path / "run")
    assert main(["pretrain", "--model", "leanvl_convnet", "--image-size", "32", "--batch-size", "4", "--steps", "1",
                 "--idf", "none", "--head-chunk", "4", "--no-progress", "--out", run]) == 0
    path = os.path.join(run, "config.json")
    saved = json.load(open(path))
    assert saved["extra"]["pretrain"]["options"]["head_chunk"] == 4  # new runs store the group nested
    saved["extra"]["pretrain"] = OLD_FLAT
    json.dump(saved, open(path, "w"))
    task, cfg = load_run(run)
    assert cfg.options == SuperClassOptions(idf="none", head_chunk=4) and task.head_chunk == 4
    assert task.idf == "none" and torch.isfinite(task.head.fc.weight).all()


def test_help_groups_flags_under_their_objective(capsys):
    with pytest.raises(SystemExit):
        main(["pretrain", "--help"])
    text = capsys.readouterr().out
    text = text[text.index("\noptions:"):]  # the help body, after the usage lines
    sc, clip, lit, training = (text.index(h) for h in ("superclass options:", "clip options:", "lit options:",
                                                        "training:"))
    assert sc < text.index("--idf-table") < text.index("--head-chunk") < clip < text.index("--text-model") < lit
    assert lit < text.index("--lit-unlock") < training < text.index("--grad-clip")
    assert text.count("--text-model TEXT_MODEL\n") == 1  # lit's inherited clip options are shown once
