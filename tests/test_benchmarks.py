"""The CPU benchmark scripts run: benchmarks/trainer_overhead.py times both loops on a few steps."""
from __future__ import annotations

import importlib.util
import os

from leanvl.train.config import TrainConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "benchmarks", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_trainer_overhead_times_both_loops(tmp_path):
    bench = _load("trainer_overhead")
    batches = bench.make_batches(2, 4, 32)
    cfg = TrainConfig(out=str(tmp_path / "run"), steps=3, batch_size=4, lr=1e-3, warmup=0, progress=False,
                      device="cpu")
    ours, bare = bench.run_interleaved(cfg, batches, 32)
    assert len(ours) == len(bare) == 2 and min(ours + bare) > 0  # one interval per step but the last
    assert os.path.isfile(tmp_path / "run" / "metrics.jsonl")  # the trainer really ran
