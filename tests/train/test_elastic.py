"""Data position in samples consumed: kill -9 + resume on shards with 2 workers is bit-identical, and resumes with
another batch size / accumulation continue at the first sample not consumed (RUN/samples.jsonl shows it)."""
import json
import os
import subprocess
import sys

import torch
from safetensors.torch import load_file

from leanvl.cli import main
from leanvl.data.shards import write_shards
from tests.data.data_helpers import synth_samples
from tests.train.helpers import torchrun_threads
from tests.train.test_faults import PRETRAIN, kill_at
from tests.train.test_faults import run as sub_run

BASE = PRETRAIN[PRETRAIN.index("pretrain"):]


def run(args):
    """pretrain in this process (the kill -9 run is the only subprocess): the exit code."""
    with torchrun_threads():
        return main(BASE + args)


def _keys(out):
    return [json.loads(line) for line in open(os.path.join(out, "samples.jsonl"))]


def _weights(out, step):
    return load_file(os.path.join(out, "checkpoints", f"step-{step:08d}", "model.safetensors"))


def test_kill9_with_workers_and_elastic_resume_on_shards(tmp_path):
    write_shards(synth_samples(64), str(tmp_path / "shards"), shard_size=16)
    data = ["--data", str(tmp_path / "shards" / "shard-{000000..000003}.tar"), "--seed", "2", "--log-sample-keys"]
    a = ["--batch-size", "4", "--accum-freq", "2"]
    straight, killed, elastic = (str(tmp_path / n) for n in ("straight", "killed", "elastic"))
    assert sub_run(data + a + ["--steps", "6", "--out", straight]).returncode == 0
    ref = _keys(straight)
    assert [r["step"] for r in ref] == [1, 2, 3, 4, 5, 6] and all(len(r["keys"]) == 8 for r in ref)
    # kill -9 under 2 loader workers, then resume: bit-identical weights and the same samples
    common = data + a + ["--steps", "6", "--num-workers", "2", "--save-every", "1", "--out", killed]
    kill_at(common + ["--resume", "latest"], killed, 3)
    assert sub_run(common + ["--resume", "latest"]).returncode == 0
    wa, wb = _weights(straight, 6), _weights(killed, 6)
    assert all(torch.equal(wa[k], wb[k]) for k in wa) and _keys(killed) == ref
    # batch 8 x accum 1 for 3 steps (3 workers), resumed as batch 4 x accum 2: the same global batch, same sequence
    first = sub_run(data + ["--batch-size", "8", "--steps", "3", "--num-workers", "3", "--out", elastic])
    assert first.returncode == 0, first.stderr
    assert sub_run(data + a + ["--steps", "6", "--out", elastic, "--resume", "latest"]).returncode == 0
    assert _keys(elastic) == ref


def test_batch_8_resumed_at_batch_16_sees_every_sample_once(tmp_path):
    write_shards(synth_samples(48), str(tmp_path / "shards"), shard_size=12)
    data = ["--data", str(tmp_path / "shards" / "shard-{000000..000003}.tar"), "--log-sample-keys",
            "--out", str(tmp_path / "run")]
    assert run(data + ["--batch-size", "8", "--steps", "2"]) == 0
    assert run(data + ["--batch-size", "16", "--steps", "3", "--resume", "latest"]) == 0
    keys = [k for row in _keys(str(tmp_path / "run")) for k in row["keys"]]
    assert len(keys) == 8 + 8 + 16 == len(set(keys))
    state = json.load(open(os.path.join(tmp_path, "run", "checkpoints", "step-00000003", "state.json")))
    assert state["samples"] == 32


def test_old_checkpoints_resume_at_their_sample_position():
    from leanvl.train.sample_log import restored_position

    assert restored_position({"microbatches": 6, "world_size": 2}, 8) == 96  # 6 per rank x 2 ranks x batch 8
    assert restored_position({"samples": 40, "microbatches": 1, "world_size": 4}, 8) == 40


def _torchrun(args):
    from tests.train.test_fsdp import ENV, free_port

    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}",
           "-m", "leanvl.cli", *BASE, *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)


def test_two_processes_resumed_as_one_with_accum_2_match_the_uninterrupted_run(tmp_path):
    """2 processes x accum 1 resumed as 1 process x accum 2 (DDP, single-file checkpoints): the sample sequence is
    the uninterrupted run's (every key once) and the weights are within 1e-5, SuperClass's online IDF included."""
    common = ["--model", "leanvl_vit_tiny", "--image-size", "32", "--seed", "1", "--log-sample-keys",
              "--save-every", "2"]
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    assert run(common + ["--batch-size", "8", "--steps", "4", "--out", one]) == 0
    first = _torchrun(common + ["--batch-size", "4", "--steps", "2", "--out", two])
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout.count('"step": 2') == 1  # only rank 0 reports
    a, b = _weights(one, 2), _weights(two, 2)
    for key in a:  # 2 processes equal 1 with the same global batch
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=1e-5, msg=key)
    assert a["idf_docs"].item() == b["idf_docs"].item() == 16 and torch.equal(a["idf_df"], b["idf_df"])
    assert run(common + ["--batch-size", "4", "--accum-freq", "2", "--steps", "4", "--out", two,
                         "--resume", "latest"]) == 0
    keys = [k for row in _keys(one) for k in row["keys"]]
    assert _keys(two) == _keys(one) and len(keys) == 4 * 8 == len(set(keys))
    a, b = _weights(one, 4), _weights(two, 4)
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=1e-5, msg=key)
    assert torch.equal(a["idf_df"], b["idf_df"])
