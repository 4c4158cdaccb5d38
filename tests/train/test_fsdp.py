"""FSDP2 + DCP: 2 processes equal 1, kill -9 + resume is bit-identical, an interrupted sharded write is harmless,
the process group ends with the run, every rank gets its own CUDA device."""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from leanvl.train import dcp as dcp_mod
from leanvl.train.checkpoint import checkpoint_dirs, verify_manifest
from leanvl.train.dcp import load_weights, weights_path
from leanvl.train.loop import resolve_device, train
from tests.train.fsdp_worker import config, make_block_task
from tests.train.helpers import fake_batches

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
       "PYTHONPATH": os.pathsep.join([os.path.join(ROOT, "src"), ROOT, os.environ.get("PYTHONPATH", "")])}
STEPS = 12


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(out, *extra):
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}",
            os.path.join(ROOT, "tests", "train", "fsdp_worker.py"), str(out), str(STEPS),
            "4", "--fsdp", *extra]


def final_weights(out):
    from tests.train.fsdp_worker import make_block_task as fresh

    task = fresh()
    missing, unexpected = load_weights(weights_path(checkpoint_dirs(str(out))[-1]), task)
    assert not missing and not unexpected
    return task.state_dict()


@pytest.fixture(scope="module")
def fsdp_run(tmp_path_factory):
    """An uninterrupted 2-process --fsdp run (batch 4 per rank, checkpoint every step)."""
    out = tmp_path_factory.mktemp("fsdp") / "straight"
    proc = subprocess.run(torchrun(out), capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_two_process_fsdp_equals_one_process_and_resumes_in_one(fsdp_run, tmp_path):
    one = make_block_task()
    train(one, fake_batches(8), config(str(tmp_path / "one"), STEPS, 8, fsdp=False, resume=False))
    two = final_weights(fsdp_run)
    for key, value in one.state_dict().items():
        torch.testing.assert_close(two[key], value, rtol=0, atol=1e-5, msg=key)
    assert two["idf_docs"].item() == one.state_dict()["idf_docs"].item() == 8 * STEPS
    last = checkpoint_dirs(str(fsdp_run))[-1]
    shards = sorted(os.listdir(os.path.join(last, "shards")))
    assert len(shards) == 2 and all(s.endswith(".safetensors") for s in shards)  # one per rank, no pickle
    listed = json.load(open(os.path.join(last, "manifest.json")))["files"]  # both ranks' files, hashed
    assert sorted(listed) == ["rng/rank-00000.json", "rng/rank-00000.safetensors", "rng/rank-00001.json",
                              "rng/rank-00001.safetensors", *(f"shards/{n}" for n in shards), "state.json"]
    assert verify_manifest(last) is None and not [n for n in os.listdir(last) if n.startswith("manifest.json.")]
    # the 2-process sharded checkpoint resumes in 1 process (DCP reshards on load) and continues as 1 process does
    shutil.copytree(fsdp_run, tmp_path / "shrunk")
    more = config(str(tmp_path / "shrunk"), STEPS + 2, 8, fsdp=True, resume=True)
    assert train(make_block_task(), fake_batches(8), more).step == STEPS + 2
    ref = make_block_task()
    train(ref, fake_batches(8), config(str(tmp_path / "one"), STEPS + 2, 8, fsdp=False, resume=True))
    grown = final_weights(tmp_path / "shrunk")
    for key, value in ref.state_dict().items():
        torch.testing.assert_close(grown[key], value, rtol=0, atol=1e-5, msg=key)
    state = json.load(open(os.path.join(checkpoint_dirs(str(tmp_path / "shrunk"))[-1], "state.json")))
    assert state["samples"] == 8 * (STEPS + 2) and state["world_size"] == 1


def _workers(agent_pid):
    """PIDs of the torchrun agent's worker processes."""
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == agent_pid:
                        pids.append(int(name))
            except (OSError, IndexError, ValueError):
                pass
    return pids


def _latest(out):
    found = checkpoint_dirs(str(out))
    return int(os.path.basename(found[-1])[5:]) if found else 0


def _kill_at(out, step):
    """Launch `--resume latest` under torchrun and SIGKILL the agent and its workers once checkpoint `step` exists."""
    proc = subprocess.Popen(torchrun(out, "--resume"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None and _latest(out) < step:
            time.sleep(0.02)
    finally:
        for pid in _workers(proc.pid):
            os.kill(pid, signal.SIGKILL)
        proc.kill()
        proc.wait()


def test_fsdp_kill9_three_times_then_resume_is_bit_identical(fsdp_run, tmp_path):
    out = tmp_path / "killed"
    for step in sorted(random.Random(11).sample(range(2, STEPS - 1), 3)):
        _kill_at(out, step)
    assert 2 <= _latest(out) < STEPS  # it was killed before the end
    done = subprocess.run(torchrun(out, "--resume"), capture_output=True, text=True, env=ENV, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    a, b = final_weights(fsdp_run), final_weights(out)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    steps = [json.loads(line)["step"] for line in open(out / "metrics.jsonl")]
    assert steps == list(range(1, STEPS + 1))


def test_dcp_write_killed_midway_keeps_previous_checkpoint(tmp_path, monkeypatch):
    straight = tmp_path / "straight"
    train(make_block_task(dropout=True), fake_batches(8), config(str(straight), 4, 8, fsdp=True, resume=False))
    real = dcp_mod._write_rng
    calls = {"n": 0}

    def dying(folder, rank):  # 2nd checkpoint: its shards are on disk (one cut short), then the process "dies"
        calls["n"] += 1
        if calls["n"] == 2:
            shard = os.path.join(os.path.dirname(folder), "shards")
            name = os.path.join(shard, sorted(os.listdir(shard))[0])
            with open(name, "r+b") as f:
                f.truncate(os.path.getsize(name) // 2)
            raise KeyboardInterrupt("killed during a sharded checkpoint write")
        return real(folder, rank)

    monkeypatch.setattr(dcp_mod, "_write_rng", dying)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(make_block_task(dropout=True), fake_batches(8), config(str(run), 4, 8, fsdp=True, resume=False))
    monkeypatch.setattr(dcp_mod, "_write_rng", real)
    assert [os.path.basename(p) for p in checkpoint_dirs(str(run))] == ["step-00000001"]
    assert not torch.distributed.is_initialized()  # the process group was destroyed on the error too
    first = make_block_task()
    assert load_weights(weights_path(checkpoint_dirs(str(run))[0]), first) == ([], [])
    result = train(make_block_task(dropout=True), fake_batches(8), config(str(run), 4, 8, fsdp=True, resume=True))
    assert result.step == 4
    a, b = final_weights(straight), final_weights(run)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # RNG (dropout) restored too
    assert result.memory_plan["fsdp"] and result.memory_plan["trainable_params"] == 1628
    # a truncated shard fails the manifest: readers refuse it in one line, --resume falls back to the newest valid one
    newest = checkpoint_dirs(str(run))[-1]
    shard = os.path.join(newest, "shards", sorted(os.listdir(os.path.join(newest, "shards")))[0])
    with open(shard, "r+b") as f:
        f.truncate(os.path.getsize(shard) - 8)
    assert "bytes, the manifest says" in verify_manifest(newest)
    from leanvl.errors import LeanvlError

    with pytest.raises(LeanvlError, match="damaged sharded checkpoint"):
        dcp_mod.load_any_weights(make_block_task(), weights_path(newest))
    again = train(make_block_task(dropout=True), fake_batches(8), config(str(run), 4, 8, fsdp=True, resume=True))
    assert again.step == 4 and verify_manifest(checkpoint_dirs(str(run))[-1]) is None
    b = final_weights(run)
    assert all(torch.equal(a[k], b[k]) for k in a)  # step 3 -> 4 redone, bit-identical


def test_each_rank_gets_cuda_local_rank(monkeypatch):
    chosen = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", lambda i: chosen.append(i))
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert resolve_device("auto") == torch.device("cuda", 1) and chosen == [1]
    assert resolve_device("cuda") == torch.device("cuda", 1) and chosen == [1, 1]
    monkeypatch.setenv("LOCAL_RANK", "2")
    from leanvl.errors import LeanvlError

    with pytest.raises(LeanvlError, match="LOCAL_RANK 2"):
        resolve_device("auto")


def test_sharded_checkpoint_is_refused_without_fsdp_and_a_changed_seed_is_refused(tmp_path):
    from leanvl.errors import LeanvlError

    out = str(tmp_path / "run")
    train(make_block_task(), fake_batches(8), config(out, 2, 8, fsdp=True, resume=False))
    with pytest.raises(LeanvlError, match="sharded .written with --fsdp"):
        train(make_block_task(), fake_batches(8), config(out, 3, 8, fsdp=False, resume=True))
    changed = config(out, 3, 8, fsdp=True, resume=True)
    changed.seed = 4
    with pytest.raises(LeanvlError, match="different run"):
        train(make_block_task(), fake_batches(8), changed)
