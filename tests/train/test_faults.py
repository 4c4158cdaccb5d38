"""Fault tolerance: kill -9 + resume is bit-exact, corrupt data is counted, interrupted checkpoint writes are harmless."""
import io
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
import webdataset as wds
from safetensors.torch import load_file

from leanvl.data.synthetic import scene_for_index
from leanvl.train import checkpoint as ckpt_mod
from leanvl.train.checkpoint import checkpoint_dirs
from leanvl.train.loop import train
from tests.train.helpers import fake_batches, make_task
from tests.train.test_loop import cfg

PRETRAIN = [sys.executable, "-m", "leanvl.cli", "pretrain", "--model", "leanvl_convnet", "--image-size", "32",
            "--batch-size", "8", "--no-progress", "--log-every", "1", "--warmup", "2"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def run(args, **kw):
    return subprocess.run(PRETRAIN + args, capture_output=True, text=True, env=ENV, timeout=300, **kw)


def latest_step(out):
    found = checkpoint_dirs(out)
    return int(os.path.basename(found[-1])[5:]) if found else 0


def kill_at(args, out, step):
    """Start a run and SIGKILL it once checkpoint `step` exists (or it ends)."""
    proc = subprocess.Popen(PRETRAIN + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    deadline = time.time() + 240
    while proc.poll() is None and latest_step(out) < step and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_kill9_three_times_then_resume_is_bit_identical(tmp_path):
    common = ["--steps", "12", "--save-every", "1", "--seed", "3"]
    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
    assert run(common + ["--out", straight]).returncode == 0
    for step in sorted(random.Random(7).sample(range(2, 11), 3)):
        kill_at(common + ["--out", resumed, "--resume", "latest"], resumed, step)
    done = run(common + ["--out", resumed, "--resume", "latest"])
    assert done.returncode == 0, done.stderr
    a = load_file(os.path.join(straight, "checkpoints", "step-00000012", "model.safetensors"))
    b = load_file(os.path.join(resumed, "checkpoints", "step-00000012", "model.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    steps = [json.loads(line)["step"] for line in open(os.path.join(resumed, "metrics.jsonl"))]
    assert steps == list(range(1, 13))


def _png(i: int) -> bytes:
    image, _, _ = scene_for_index(0, "train", i, size=32)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def write_shards(root, n_good: int, bad: dict[str, int], truncate: bool) -> str:
    """Good synthetic samples interleaved with bad ones, over 2 shards; optionally cut the last member short."""
    items = [{"__key__": f"g{i:05d}", "png": _png(i), "txt": f"caption number {i}".encode()} for i in range(n_good)]
    bad_items = ([{"__key__": f"u{i}", "jpg": b"\xff\xd8 broken", "txt": b"broken"} for i in range(bad["undecodable"])]
                 + [{"__key__": f"e{i}", "png": _png(i), "txt": b"   "} for i in range(bad["empty"])]
                 + [{"__key__": f"m{i}", "png": _png(i)} for i in range(bad["missing_caption"])])
    for j, item in enumerate(bad_items):
        items.insert((j * 37 + 5) % len(items), item)
    if truncate:
        items.append({"__key__": "zcut", "png": _png(0) * 4, "txt": b"cut"})
    half = len(items) // 2
    for n, part in enumerate((items[:half], items[half:])):
        with wds.TarWriter(str(root / f"s-{n}.tar"), encoder=False) as w:
            for item in part:
                w.write(item)
    if truncate:
        data = (root / "s-1.tar").read_bytes()
        (root / "s-1.tar").write_bytes(data[: data.index(b"zcut.png") + 512 + 300])
    return str(root / "s-{0..1}.tar")


def test_five_percent_bad_samples_are_skipped_and_reported_exactly(tmp_path):
    bad = {"undecodable": 8, "empty": 6, "missing_caption": 1}
    spec = write_shards(tmp_path, 384, bad, truncate=True)  # 384 + 15 + 1 truncated = 400 raw = 1 epoch
    out = tmp_path / "run"
    done = run(["--data", spec, "--steps", "50", "--batch-size", "8", "--out", str(out)])
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["skipped_by_reason"] == {"undecodable_image": 8, "empty_caption": 6, "missing_caption": 1,
                                            "truncated_tar": 1}
    assert summary["skipped"] == 16
    last = json.loads(open(out / "metrics.jsonl").readlines()[-1])
    assert last["data_raw"] == 400 and last["data_skipped"] == 16


def test_sixty_percent_bad_stops_with_exit_2_and_keeps_last_good_checkpoint(tmp_path):
    out = tmp_path / "run"
    assert run(["--data", "synthetic", "--steps", "4", "--save-every", "2", "--out", str(out)]).returncode == 0
    before = {p: open(os.path.join(p, "model.safetensors"), "rb").read() for p in checkpoint_dirs(str(out))}
    spec = write_shards(tmp_path, 40, {"undecodable": 40, "empty": 20, "missing_caption": 0}, truncate=False)
    failed = run(["--data", spec, "--steps", "30", "--out", str(out), "--resume", "latest"])
    assert failed.returncode == 2
    assert failed.stderr.strip().count("\n") == 0 and "leanvl: error:" in failed.stderr
    assert "Traceback" not in failed.stderr
    after = {p: open(os.path.join(p, "model.safetensors"), "rb").read() for p in checkpoint_dirs(str(out))}
    assert after == before


def test_kill_during_checkpoint_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    straight = make_task()
    train(straight, fake_batches(8), cfg(tmp_path, "straight", steps=6, save_every=2))
    real_save = ckpt_mod.save_file
    calls = {"n": 0}

    def dying_save(tensors, path, *a, **k):  # the optimizer file of the 2nd checkpoint: "killed" mid-write
        calls["n"] += 1
        if calls["n"] == 2:
            with open(path, "wb") as f:
                f.write(b"partial")
            raise KeyboardInterrupt("killed during checkpoint write")
        return real_save(tensors, path, *a, **k)

    monkeypatch.setattr(ckpt_mod, "save_file", dying_save)
    with pytest.raises(KeyboardInterrupt):
        train(make_task(), fake_batches(8), cfg(tmp_path, "run", steps=6, save_every=2))
    monkeypatch.setattr(ckpt_mod, "save_file", real_save)
    assert [os.path.basename(p) for p in checkpoint_dirs(str(tmp_path / "run"))] == ["step-00000002"]
    resumed = make_task()
    result = train(resumed, fake_batches(8), cfg(tmp_path, "run", steps=6, save_every=2, resume="latest"))
    assert result.step == 6
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k


def test_vlm_train_runs_under_torchrun_and_only_rank0_reports(tmp_path):
    out = tmp_path / "vlm"
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29649",
                           "-m", "leanvl.cli", "vlm", "train", "--llm", "tiny", "--compressor", "quecc", "--tokens",
                           "4", "--multi-layers", "2,3", "--steps", "2", "--batch-size", "4", "--out", str(out),
                           "--no-progress"], capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count('"step": 2') == 1
    assert [os.path.basename(p) for p in checkpoint_dirs(str(out))] == ["step-00000002"]
