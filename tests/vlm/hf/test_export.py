"""`leanvl vlm export` -> transformers AutoModelForCausalLM/AutoProcessor (trust_remote_code, leanvl not importable)
gives the same greedy answers as leanvl's own generate / `vlm ask`."""
import json
import os
import subprocess
import sys

import pytest
import torch

from leanvl.cli import main
from leanvl.errors import LeanvlError
from leanvl.vlm.batches import image_transform
from leanvl.vlm.generate import generate, greedy_decode, prefill, stop_ids
from leanvl.vlm.hf.export import export_model, run_export
from leanvl.vlm.io import load_vlm, save_vlm
from tests.vlm.helpers import make_vlm

QUESTIONS = ["What color is the star?", "How many shapes are there?", "What word is written in the image?"]
CASES = {"none": 64, "avgpool": 4, "quecc": 4}

# Loads every export in a fresh interpreter where `import leanvl` fails, answers QUESTIONS on the images.
LOADER = r"""
import json, sys
sys.modules["leanvl"] = None
import torch
from PIL import Image
from transformers import AutoModelForCausalLM, AutoModelForImageTextToText, AutoProcessor
dirs, images = json.loads(sys.argv[1]), [Image.open(p) for p in json.loads(sys.argv[2])]
questions, out = json.loads(sys.argv[3]), {}
for name, d in dirs.items():
    model = AutoModelForCausalLM.from_pretrained(d, trust_remote_code=True).eval()
    proc = AutoProcessor.from_pretrained(d, trust_remote_code=True)
    inputs = proc(images=images, text=questions)
    with torch.no_grad():
        ids = model.generate(**inputs, max_new_tokens=6)
    out[name] = {"answers": proc.batch_decode(ids), "ids": [[t for t in r if t != model.config.pad_token_id]
                 for r in ids.tolist()], "v": model.num_visual_tokens,
                 "leanvl_loaded": any(k.startswith("leanvl") and sys.modules[k] is not None for k in sys.modules)}
out["image_text_to_text"] = type(AutoModelForImageTextToText.from_pretrained(
    next(iter(dirs.values())), trust_remote_code=True)).__name__
print(json.dumps(out))
"""


def _lively(model):
    """An untrained tiny VLM answers only special tokens or newlines/spaces (stripped); zero those (tied) embedding
    rows and amplify the projector so greedy answers are image-dependent runs of byte tokens."""
    with torch.no_grad():
        emb = model.llm.get_input_embeddings().weight
        emb[256:].zero_()
        emb[[10, 32]] = 0.0
        model.projector.net[2].weight.mul_(30)
    return model


def _images(tmp_path):
    from leanvl.data.synthetic import scene_for_index

    paths = []
    for i in range(len(QUESTIONS)):
        p = tmp_path / f"img{i}.png"
        scene_for_index(0, "test", i)[0].save(p)
        paths.append(str(p))
    return paths


def _reference(model, paths):
    from PIL import Image

    t = image_transform(model.cfg.image_size)
    pixels = torch.stack([t(Image.open(p).convert("RGB")) for p in paths])
    cache, logits, s = prefill(model, pixels, QUESTIONS)
    ids = greedy_decode(model, cache, logits, s, stop_ids(model.tokenizer), max_new_tokens=6)
    return {"answers": generate(model, pixels, QUESTIONS, max_new_tokens=6), "ids": ids}


def _hf_answers(dirs, paths, tmp_path):
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "PYTHONPATH": ""}
    res = subprocess.run([sys.executable, "-c", LOADER, json.dumps(dirs), json.dumps(paths), json.dumps(QUESTIONS)],
                         capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Exports for none/avgpool/quecc (via the CLI) and a merged-LoRA model, all loaded in ONE fresh interpreter."""
    import peft

    tmp = tmp_path_factory.mktemp("export")
    paths, dirs, expected = _images(tmp), {}, {}
    for comp, tokens in CASES.items():
        saved = save_vlm(_lively(make_vlm(comp, tokens)), str(tmp / f"vlm-{comp}"))
        expected[comp] = _reference(load_vlm(saved), paths)
        dirs[comp] = str(tmp / f"hf-{comp}")
        assert main(["vlm", "export", "--ckpt", saved, "--out", dirs[comp]]) == 0
    lora = _lively(make_vlm("avgpool", 4)).eval()
    lora.llm = peft.get_peft_model(lora.llm, peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    for n, p in lora.named_parameters():
        if "lora_B" in n:
            torch.nn.init.normal_(p, std=0.5)  # LoRA B starts at zero: make the adapter change the answers
    expected["lora"] = _reference(lora, paths)
    assert expected["lora"] != expected["avgpool"]  # the adapter matters
    with pytest.raises(LeanvlError, match="--merge-lora"):
        export_model(lora, str(tmp / "refused"))
    assert not os.path.exists(tmp / "refused")
    info = export_model(lora, str(tmp / "hf-lora"), merge=True)
    assert info["merged_lora_layers"] == 4
    dirs["lora"] = str(tmp / "hf-lora")
    return tmp, paths, dirs, expected, _hf_answers(dirs, paths, tmp)


def test_export_loads_without_leanvl_and_matches_greedy_answers(exported, capsys):
    tmp, paths, dirs, expected, got = exported
    for d in dirs.values():
        assert not any("leanvl." in line and "import" in line for name in os.listdir(d)
                       if name.endswith(".py") for line in open(os.path.join(d, name)))
    capsys.readouterr()
    assert main(["vlm", "ask", "--ckpt", str(tmp / "vlm-quecc"), "--image", paths[0], "--max-new-tokens", "6",
                 QUESTIONS[0]]) == 0
    assert capsys.readouterr().out.strip() == expected["quecc"]["answers"][0]
    for comp, tokens in CASES.items():
        assert got[comp]["answers"] == expected[comp]["answers"] and got[comp]["ids"] == expected[comp]["ids"], comp
        assert got[comp]["v"] == tokens and not got[comp]["leanvl_loaded"]
    assert all(len(ids) == 6 for e in expected.values() for ids in e["ids"])  # real token runs, not empty
    assert got["image_text_to_text"] == "LeanvlForConditionalGeneration"


def test_merge_lora_folds_adapters_and_keeps_answers(exported):
    _, _, _, expected, got = exported
    assert got["lora"]["answers"] == expected["lora"]["answers"] and got["lora"]["ids"] == expected["lora"]["ids"]


def test_export_refuses_bad_input(tmp_path):
    saved = save_vlm(make_vlm("avgpool", 4), str(tmp_path / "vlm"))
    with pytest.raises(LeanvlError, match="no LoRA adapters"):
        run_export(saved, str(tmp_path / "a"), merge=True)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(LeanvlError, match="not empty"):
        run_export(saved, str(tmp_path / "full"))
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    assert main(["vlm", "export", "--ckpt", str(tmp_path / "nope"), "--out", str(tmp_path / "b")]) == 2
