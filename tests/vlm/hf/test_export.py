"""`leanvl vlm export` -> transformers AutoModelForCausalLM/AutoProcessor (trust_remote_code, leanvl not importable)
gives the same greedy answers as leanvl's own generate / `vlm ask`."""
import contextlib
import io
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
from leanvl.vlm.hf.export import run_export
from leanvl.vlm.io import load_vlm, save_vlm
from tests.vlm.helpers import make_vlm

QUESTIONS = ["What color is the star?", "How many shapes are there?", "What word is written in the image?"]
CASES = {"none": 64, "avgpool": 4, "quecc": 4}
SIGLIP = "vit_base_patch16_siglip_224"

# Loads every export in a fresh interpreter where `import leanvl` fails, answers QUESTIONS on the images.
LOADER = r"""
import json, sys
sys.modules["leanvl"] = None
import torch
from PIL import Image
from transformers import AutoModelForCausalLM, AutoModelForImageTextToText, AutoProcessor
dirs, images = json.loads(sys.argv[1]), [Image.open(p) for p in json.loads(sys.argv[2])]
questions, out = json.loads(sys.argv[3]), {}


def llava(d):
    # transformers' own Llava classes (no remote code), prompts from the tokenizer's chat template
    from transformers import LlavaForConditionalGeneration
    model = LlavaForConditionalGeneration.from_pretrained(d).eval()
    proc = AutoProcessor.from_pretrained(d, backend="pil")
    prompts = [proc.tokenizer.apply_chat_template([{"role": "user", "content": "<image>\n" + q}], tokenize=False,
                                                  add_generation_prompt=True) for q in questions]
    inputs = proc(images=images, text=prompts, return_tensors="pt", padding=True)
    with torch.no_grad():
        new = model.generate(**inputs, max_new_tokens=6)[:, inputs["input_ids"].shape[1]:]
    gen = model.generation_config
    return {"answers": [a.strip() for a in proc.batch_decode(new, skip_special_tokens=True)],
            "ids": [[t for t in r if t not in (gen.pad_token_id, gen.eos_token_id)] for r in new.tolist()],
            "image_tokens": int((inputs["input_ids"] == model.config.image_token_id).sum()),
            "padding_side": proc.tokenizer.padding_side, "class": type(model).__name__}


for name, d in dirs.items():
    if name == "llava":
        out[name] = llava(d)
        continue
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


def _lora_run(tmp, init: str) -> str:
    """A real LoRA run: `vlm train --lora 4` for 2 steps on top of the lively avgpool VLM (so answers are
    non-empty)."""
    run = str(tmp / "lora-run")
    assert main(["vlm", "train", "--llm", "tiny", "--compressor", "avgpool", "--tokens", "4", "--steps", "2",
                 "--batch-size", "4", "--no-progress", "--seed", "1", "--freeze", "encoder", "--lora", "4",
                 "--lr", "1e-2", "--init", init, "--out", run]) == 0
    return run


def _cli(argv: list[str]) -> tuple[int, str, str]:
    """`leanvl ARGV` in-process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


def _ask(ckpt: str, paths) -> list[str]:
    """`leanvl vlm ask` answers, one question per call (as a user runs it)."""
    return [_cli(["vlm", "ask", "--ckpt", ckpt, "--image", p, "--max-new-tokens", "6", q])[1].strip()
            for q, p in zip(QUESTIONS, paths)]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Exports for none/avgpool/quecc and a `vlm train --lora 4` run merged with --merge-lora (all via the CLI),
    all loaded in ONE fresh interpreter."""
    tmp = tmp_path_factory.mktemp("export")
    paths, dirs, expected = _images(tmp), {}, {}
    for comp, tokens in CASES.items():
        saved = save_vlm(_lively(make_vlm(comp, tokens)), str(tmp / f"vlm-{comp}"))
        expected[comp] = _reference(load_vlm(saved), paths)
        dirs[comp] = str(tmp / f"hf-{comp}")
        assert main(["vlm", "export", "--ckpt", saved, "--out", dirs[comp]]) == 0
    run = _lora_run(tmp, str(tmp / "vlm-avgpool"))
    expected["lora"] = {**_reference(load_vlm(run), paths), "ask": _ask(run, paths)}
    assert expected["lora"]["answers"] != expected["avgpool"]["answers"]  # the trained adapters matter
    rc, _, err = _cli(["vlm", "export", "--ckpt", run, "--out", str(tmp / "refused")])
    assert rc == 2 and "--merge-lora" in err and not os.path.exists(tmp / "refused")
    dirs["lora"] = str(tmp / "hf-lora")
    rc, out, _ = _cli(["vlm", "export", "--ckpt", run, "--out", dirs["lora"], "--merge-lora"])
    assert rc == 0 and json.loads(out)["merged_lora_layers"] == 14  # 7 targets x 2 decoder layers
    assert json.load(open(os.path.join(dirs["lora"], "config.json")))["vlm"]["lora"] == {}
    _llava_export(tmp, paths, dirs, expected)
    return tmp, paths, dirs, expected, _hf_answers(dirs, paths, tmp)


def siglip_vlm(feature_layer=-1):
    """Tiny LLM + timm's SigLIP ViT (no class token) shrunk to 2 blocks of width 64, compressor none."""
    from leanvl.models.encoders import create_encoder
    from leanvl.vlm.llm import load_llm
    from leanvl.vlm.model import VLM, VLMConfig

    llm = load_llm("tiny", seed=0)
    torch.manual_seed(0)
    enc = create_encoder(SIGLIP, image_size=64, build_kwargs=dict(patch_size=8, embed_dim=64, depth=2, num_heads=2))
    cfg = VLMConfig(llm="tiny", encoder=SIGLIP, image_size=64, compressor="none", tokens=64,
                    feature_layer=feature_layer, encoder_config=enc.config())
    return VLM(cfg, enc, llm.model, llm.tokenizer).eval()


def _llava_export(tmp, paths, dirs, expected) -> None:
    """`vlm export --format llava` of a SigLIP-tower VLM (added to dirs under 'llava'); an avgpool one is refused."""
    saved = save_vlm(_lively(siglip_vlm()), str(tmp / "vlm-llava"))
    expected["llava"] = {**_reference(load_vlm(saved), paths), "ask": _ask(saved, paths[:1])}
    dirs["llava"] = str(tmp / "hf-llava")
    rc, out, err = _cli(["vlm", "export", "--ckpt", saved, "--out", dirs["llava"], "--format", "llava"])
    assert rc == 0 and json.loads(out)["architecture"] == "LlavaForConditionalGeneration", err
    assert not any(name.endswith(".py") for name in os.listdir(dirs["llava"]))      # no remote code
    rc, _, err = _cli(["vlm", "export", "--ckpt", str(tmp / "vlm-avgpool"), "--out", str(tmp / "no"),
                       "--format", "llava"])
    assert rc == 2 and "compressor 'avgpool' has no LLaVA counterpart" in err and err.count("\n") == 1
    assert not os.path.exists(tmp / "no")


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


def test_merge_lora_export_of_a_trained_lora_run_answers_like_vlm_ask(exported):
    _, _, _, expected, got = exported
    assert got["lora"]["answers"] == expected["lora"]["ask"] == expected["lora"]["answers"]
    assert got["lora"]["ids"] == expected["lora"]["ids"] and all(len(a) > 0 for a in expected["lora"]["ask"])


def test_merge_lora_unloads_a_peft_model_wrapper():
    import peft

    from leanvl.vlm.hf.export import merge_lora

    model = make_vlm("avgpool", 4)
    plain = set(model.state_dict())
    model.llm = peft.get_peft_model(model.llm, peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    assert merge_lora(model) == 4 and set(model.state_dict()) == plain and model.cfg.lora == {}


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


def test_llava_export_loads_in_transformers_and_answers_like_vlm_ask(exported):
    _, _, _, expected, got = exported
    got, want = got["llava"], expected["llava"]
    assert got["class"] == "LlavaForConditionalGeneration" and got["image_tokens"] == 3 * 64
    assert got["padding_side"] == "left"
    assert got["ids"] == want["ids"] and got["answers"] == want["answers"] and got["answers"][:1] == want["ask"]
    assert all(len(ids) == 6 for ids in got["ids"]) and len(set(map(tuple, got["ids"]))) > 1   # image-dependent


@pytest.mark.parametrize("encoder,changes,message", [
    ("leanvl_convnet", {}, "encoder 'leanvl_convnet' is not a ViT"),
    ("leanvl_vit_tiny", {"feature_layer": -1}, "'leanvl_vit_tiny' is not SigLIP-style"),
    (SIGLIP, {"multi_layers": [1]}, "multi-layer features"),
    (SIGLIP, {"feature_layer": None}, "final normalised tokens"),
])
def test_llava_refuses_what_does_not_map(encoder, changes, message):
    from types import SimpleNamespace

    from leanvl.models.encoders import create_encoder
    from leanvl.vlm.hf.llava import llava_refusal
    from leanvl.vlm.model import VLMConfig

    kw = dict(patch_size=8, embed_dim=64, depth=2, num_heads=2) if encoder == SIGLIP else {}
    enc = create_encoder(encoder, image_size=64, build_kwargs=kw)
    cfg = VLMConfig(llm="tiny", encoder=encoder, compressor="none", tokens=64, **{"feature_layer": -1, **changes})
    reason = llava_refusal(SimpleNamespace(cfg=cfg, encoder=enc))
    assert message in reason and "\n" not in reason
