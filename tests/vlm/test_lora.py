"""LoRA (peft) for the VLM's LLM: only adapters + compressor + projector train, checkpoints hold the adapters,
readers rebuild them, merging them answers the same; a 2-process --fsdp VLM equals one process."""
import json
import os
import subprocess
import sys

import pytest
import torch

from leanvl.cli import main
from leanvl.train.checkpoint import checkpoint_dirs
from leanvl.vlm.generate import generate
from leanvl.vlm.io import build_vlm, load_vlm, save_vlm
from leanvl.vlm.lora import merge_lora
from leanvl.vlm.model import VLMConfig
from tests.train.helpers import torchrun_threads
from tests.train.test_fsdp import free_port

COMMON = ["vlm", "train", "--llm", "tiny", "--compressor", "quecc", "--tokens", "4", "--multi-layers", "2,3",
          "--steps", "3", "--no-progress", "--seed", "1", "--freeze", "encoder", "--lora", "4", "--lr", "1e-2"]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
       "PYTHONPATH": os.pathsep.join([os.path.join(ROOT, "src"), os.environ.get("PYTHONPATH", "")])}


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    """One process, `--lora 4`, 2 micro-batches of 2 per step (the grouping 2 ranks x batch 2 have)."""
    run = str(tmp_path_factory.mktemp("lora") / "one")
    with torchrun_threads():  # as the 2-process run's workers: same rounding
        assert main(COMMON + ["--batch-size", "2", "--accum-freq", "2", "--out", run]) == 0
    return run


def test_lora_trains_adapters_compressor_projector_and_reloads_answering_identically(lora_run, tmp_path, capsys):
    run = lora_run
    counts = json.load(open(os.path.join(run, "result.json")))["trainable"]
    assert counts["encoder"] == 0 and counts["llm"] == counts["lora"] > 0
    assert counts["compressor"] > 0 and counts["projector"] > 0
    assert counts["total"] == counts["lora"] + counts["compressor"] + counts["projector"]
    model = load_vlm(run)
    sd = model.state_dict()
    b_keys = [k for k in sd if "lora_B" in k]
    assert b_keys and any(sd[k].abs().sum() > 0 for k in b_keys)  # adapters trained (B starts at 0)
    fresh = build_vlm(VLMConfig(llm="tiny", encoder="leanvl_convnet", compressor="quecc", tokens=4,
                                multi_layers=[2, 3]), seed=1).state_dict()
    base = "llm.model.layers.0.self_attn.q_proj"
    assert torch.equal(sd[f"{base}.base_layer.weight"], fresh[f"{base}.weight"])  # the base LLM stayed frozen
    images = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    questions = ["What color is the star?", "How many shapes are there?", "Is there a blue circle?"]
    with torch.no_grad():
        answers = generate(model, images, questions, max_new_tokens=4)
        again = generate(load_vlm(run), images, questions, max_new_tokens=4)
        merged_dir = save_vlm(merge_lora(load_vlm(run)), str(tmp_path / "merged"))
        merged = load_vlm(merged_dir)
        assert not any("lora_" in k for k in merged.state_dict())
        assert generate(merged, images, questions, max_new_tokens=4) == answers == again
    # --init is strict: LoRA weights do not fit a VLM without adapters (one line, exit 2)
    capsys.readouterr()
    bad = COMMON[:-4] + ["--lr", "1e-2", "--batch-size", "4", "--init", run, "--out", str(tmp_path / "init")]
    assert main(bad) == 2
    err = capsys.readouterr().err.strip()
    assert "--init" in err and "unexpected" in err and err.count("\n") == 0


def test_lora_on_a_frozen_llm_is_refused(tmp_path, capsys):
    assert main(COMMON + ["--freeze", "encoder,llm", "--out", str(tmp_path / "r")]) == 2
    assert "LLM is frozen" in capsys.readouterr().err


def test_fsdp_vlm_two_processes_equal_one_process(tmp_path):
    full = COMMON[:-4] + ["--lr", "1e-3"]  # the whole LLM trains (sharded per decoder layer), encoder frozen
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    with torchrun_threads():
        assert main(full + ["--batch-size", "2", "--accum-freq", "2", "--out", one]) == 0
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                           f"--master_port={free_port()}", "-m", "leanvl.cli", *full, "--batch-size", "2", "--fsdp",
                           "--out", two], capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert os.path.isdir(os.path.join(checkpoint_dirs(two)[-1], "shards"))
    a, b = load_vlm(one).state_dict(), load_vlm(two).state_dict()  # vlm readers consolidate the shards
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=1e-5, msg=key)


def test_fsdp_lora_two_processes_equal_one_process(lora_run, tmp_path):
    """--lora 4 --fsdp (frozen base and adapters sharded per decoder layer) under 2 processes at lr 1e-2."""
    two = str(tmp_path / "two")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                           f"--master_port={free_port()}", "-m", "leanvl.cli", *COMMON, "--batch-size", "2", "--fsdp",
                           "--out", two], capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = load_vlm(lora_run).state_dict(), load_vlm(two).state_dict()
    assert a.keys() == b.keys() and any("lora_B" in k and a[k].abs().sum() > 0 for k in a)
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=1e-5, msg=key)
