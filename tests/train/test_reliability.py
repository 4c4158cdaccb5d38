"""Reliability mechanisms: checkpoint integrity + fallback, validate-before-write, run lock, preemption, one error
boundary. Each test provokes the fault the way a user or a cluster would."""
import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from leanvl.cli import main
from leanvl.errors import LeanvlError
from leanvl.train import checkpoint as ckpt_mod
from leanvl.train.checkpoint import checkpoint_dirs, resolve_resume, verify_manifest
from leanvl.train.config import TrainConfig
from leanvl.train.loop import train
from leanvl.train.preempt import PREEMPTED_EXIT_CODE
from leanvl.train.run_dir import RunLock
from tests.train.helpers import fake_batches, make_task
from tests.train.test_faults import ENV, PRETRAIN


def tiny_run(out, steps=4, **kw):
    base = dict(out=out, steps=steps, batch_size=4, lr=1e-2, warmup=1, progress=False, log_every=1, save_every=1,
                keep=5)
    base.update(kw)
    return train(make_task(), fake_batches(4), TrainConfig(**base))


def digest(run_dir):
    """Hash of every file of a run directory (names and bytes)."""
    h = hashlib.sha256()
    for root, _, files in sorted(os.walk(run_dir)):
        for name in sorted(files):
            path = os.path.join(root, name)
            h.update(path.encode())
            with open(path, "rb") as f:
                h.update(f.read())
    return h.hexdigest()


def test_checkpoint_has_a_manifest_and_a_truncated_newest_falls_back(tmp_path, capsys):
    out = str(tmp_path / "run")
    tiny_run(out, steps=3)
    newest = checkpoint_dirs(out)[-1]
    assert verify_manifest(newest) is None
    weights = os.path.join(newest, "model.safetensors")
    with open(weights, "r+b") as f:
        f.truncate(os.path.getsize(weights) // 2)
    assert "bytes" in verify_manifest(newest)
    assert resolve_resume("latest", out) == checkpoint_dirs(out)[-2]
    assert "skipping damaged checkpoint" in capsys.readouterr().err
    with pytest.raises(LeanvlError, match="damaged checkpoint"):
        resolve_resume(newest, out)  # named explicitly: refused, not replaced
    tiny_run(out, steps=4, resume="latest")  # resumes from step 2 and finishes
    assert verify_manifest(checkpoint_dirs(out)[-1]) is None


@pytest.mark.parametrize("garbage", [b"\xff" * 8 + b"{not json", (2 ** 62).to_bytes(8, "little") + b"{}"])
def test_malformed_safetensors_header_is_one_line(tmp_path, garbage):
    out = str(tmp_path / "run")
    tiny_run(out, steps=1)
    path = os.path.join(checkpoint_dirs(out)[-1], "model.safetensors")
    with open(path, "wb") as f:
        f.write(garbage)
    os.remove(os.path.join(checkpoint_dirs(out)[-1], ckpt_mod.MANIFEST))  # as an old, manifest-less checkpoint
    with pytest.raises(LeanvlError, match="unreadable"):
        ckpt_mod.load_checkpoint(checkpoint_dirs(out)[-1], make_task(), None)


def test_wrong_shaped_state_json_is_one_line(tmp_path):
    out = str(tmp_path / "run")
    tiny_run(out, steps=1)
    d = checkpoint_dirs(out)[-1]
    with open(os.path.join(d, "state.json"), "w") as f:
        json.dump([1, 2, 3], f)
    os.remove(os.path.join(d, ckpt_mod.MANIFEST))
    with pytest.raises(LeanvlError, match="state.json"):
        tiny_run(out, steps=2, resume="latest")


def test_disk_full_is_one_line_and_leaves_no_temp_dir(tmp_path, monkeypatch):
    out = str(tmp_path / "run")
    tiny_run(out, steps=1)
    before = digest(os.path.join(out, "checkpoints"))

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt_mod, "save_file", full)
    with pytest.raises(LeanvlError, match=r"disk full .* needs about [\d.]+ MB"):
        tiny_run(out, steps=2, resume="latest")
    assert [n for n in os.listdir(os.path.join(out, "checkpoints")) if n.startswith(".tmp")] == []
    assert verify_manifest(checkpoint_dirs(out)[-1]) is None and checkpoint_dirs(out)[-1].endswith("01")
    assert digest(os.path.join(out, "checkpoints")) == before


def test_leftover_temp_dirs_are_removed_at_the_next_start(tmp_path):
    out = str(tmp_path / "run")
    tiny_run(out, steps=1)
    stale = os.path.join(out, "checkpoints", ".tmp-step-00000002-99999")
    os.makedirs(stale)
    tiny_run(out, steps=2, resume="latest")
    assert not os.path.exists(stale)


def test_failed_resume_leaves_the_run_byte_identical(tmp_path):
    out = str(tmp_path / "run")
    base = ["pretrain", "--model", "leanvl_convnet", "--image-size", "32", "--batch-size", "4", "--steps", "1",
            "--no-progress", "--out", out]
    assert main(base) == 0
    before = digest(out)
    assert main(base + ["--resume", "latest", "--model", "leanvl_convnet_wide", "--steps", "2"]) == 2
    assert main(base + ["--resume", str(tmp_path / "nonexistent")]) == 2
    assert digest(out) == before


def test_resume_appends_to_the_config_history(tmp_path):
    out = str(tmp_path / "run")
    tiny_run(out, steps=1)
    tiny_run(out, steps=2, resume="latest")
    saved = json.load(open(os.path.join(out, "config.json")))
    assert saved["steps"] == 2
    assert saved["history"][-1]["changed"]["steps"] == [1, 2]


@pytest.mark.parametrize("flag,value", [("beta1", 1.5), ("beta2", -0.1), ("eps", 0.0), ("lr", float("inf")),
                                        ("weight_decay", float("nan")), ("min_lr", -1.0)])
def test_optimizer_values_are_validated_before_anything_is_written(tmp_path, flag, value):
    with pytest.raises(LeanvlError, match=flag.replace("_", "-")):
        TrainConfig(out=str(tmp_path / "x"), **{flag: value}).validate()


def test_second_writer_is_refused_naming_the_holder(tmp_path):
    out = str(tmp_path / "run")
    os.makedirs(out)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from leanvl.train.run_dir import RunLock; "
                               f"lock = RunLock({out!r}).acquire(); print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LeanvlError, match=rf"in use by pid {holder.pid} on host"):
            RunLock(out).acquire()
    finally:
        holder.kill()
        holder.wait()
    RunLock(out).acquire().release()  # the killed holder's lock file no longer blocks


def test_sigterm_saves_then_resume_is_bit_identical(tmp_path):
    common = ["--steps", "30", "--seed", "5", "--save-every", "0", "--data", "synthetic"]
    straight, preempted = str(tmp_path / "straight"), str(tmp_path / "preempted")
    assert subprocess.run(PRETRAIN + common + ["--out", straight], env=ENV, capture_output=True).returncode == 0
    proc = subprocess.Popen(PRETRAIN + common + ["--out", preempted], env=ENV, stderr=subprocess.PIPE, text=True,
                            stdout=subprocess.DEVNULL)
    metrics = os.path.join(preempted, "metrics.jsonl")
    deadline = time.time() + 120
    while time.time() < deadline and not (os.path.exists(metrics) and len(open(metrics).readlines()) >= 3):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == PREEMPTED_EXIT_CODE, err
    assert "preempted by SIGTERM" in err and len(err.strip().splitlines()) == 1
    stopped = int(os.path.basename(checkpoint_dirs(preempted)[-1])[5:])
    assert 3 <= stopped < 30
    done = subprocess.run(PRETRAIN + common + ["--out", preempted, "--resume", "latest"], env=ENV,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    a = load_file(os.path.join(checkpoint_dirs(straight)[-1], "model.safetensors"))
    b = load_file(os.path.join(checkpoint_dirs(preempted)[-1], "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_unwritable_output_and_refused_pickle_are_one_line(tmp_path, capsys):
    evil = tmp_path / "evil.pt"
    torch.save({"x": object()}, evil)
    code = main(["pretrain", "--model", "vit_tiny_patch16_224", "--pretrained", str(evil), "--steps", "1",
                 "--out", str(tmp_path / "r"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("leanvl: error:") and "Traceback" not in err
