"""The trainer reads no tensor value back to the host inside a step, apart from the log steps (issue #17).

Every Python-level way to read a value (`item`, `__float__`, `__bool__`, `__int__`, `__index__`, `tolist`, `numpy`,
`cpu`) is counted during real `train()` runs, each read charged to the step whose micro-batches were last fetched.
On CUDA each such read blocks the host until the device drains; on this CPU test they are only counted. Reads that
happen inside C++ ops (e.g. a data-dependent output size) are not visible here: `benchmarks/gpu_end_to_end.sh` runs
`torch.cuda.set_sync_debug_mode("warn")` for those.
"""
import contextlib

import pytest
import torch

from leanvl.errors import LeanvlError
from leanvl.train.config import TrainConfig
from leanvl.train.loop import train
from tests.train.helpers import fake_batches, make_task

READS = ("item", "__float__", "__bool__", "__int__", "__index__", "tolist", "numpy", "cpu")
STEPS, LOG_EVERY, POISON = 4, 2, 2  # log steps 2 and 4; micro-batch 2 (step 3) is NaN
LOG_STEPS = {2, 4}


@contextlib.contextmanager
def counting_reads(clock):
    """Patch the value-reading Tensor methods; yields the list of (step, method) of every read."""
    reads = []
    originals = {name: getattr(torch.Tensor, name) for name in READS}

    def wrap(name, fn):
        def counted(self, *args, **kwargs):
            reads.append((clock(), name))
            return fn(self, *args, **kwargs)
        return counted

    for name, fn in originals.items():
        setattr(torch.Tensor, name, wrap(name, fn))
    try:
        yield reads
    finally:
        for name, fn in originals.items():
            setattr(torch.Tensor, name, fn)


def clocked(batches):
    """`batches(start)` that tells which step is running: the number of micro-batches requested so far."""
    fetched = [0]

    def gen(start):
        for batch in batches(start):
            fetched[0] += 1
            yield batch

    return gen, lambda: fetched[0]


def captioned(batches):
    """The SuperClass test batches with captions added, for CLIP (no tensor read: positions counted here)."""
    def gen(start):
        i = start
        for batch in batches(start):
            batch["caption"] = [f"a photo of thing {j % 7}" for j in range(i, i + 4)]
            i += 4
            yield batch
    return gen


def clip_task():
    from leanvl.objectives.clip import Contrastive
    from tests.conftest import TinyEncoder

    torch.manual_seed(0)
    task = Contrastive(TinyEncoder(), "leanvl-text-tiny")
    task.text.tower.token_embedding.requires_grad_(False)  # 6.3M of its 6.7M parameters: keeps the test fast
    return task


@pytest.mark.parametrize("objective", ["superclass", "clip"])
@pytest.mark.parametrize("policy", ["skip", "stop"])
def test_no_value_reads_inside_non_log_steps(tmp_path, objective, policy):
    data = fake_batches(4, poison_at=POISON)
    task = make_task() if objective == "superclass" else clip_task()
    data = data if objective == "superclass" else captioned(data)
    batches, clock = clocked(data)
    cfg = TrainConfig(out=str(tmp_path / "run"), steps=STEPS, batch_size=4, lr=1e-2, warmup=1, progress=False,
                      log_every=LOG_EVERY, nan_policy=policy, device="cpu")
    with counting_reads(clock) as reads:
        if policy == "stop":
            with pytest.raises(LeanvlError, match="within steps 3-4"):
                train(task, batches, cfg)
        else:
            result = train(task, batches, cfg)
    in_steps = [(step, name) for step, name in reads if 1 <= step <= STEPS and step not in LOG_STEPS]
    assert in_steps == [], f"value reads inside non-log steps: {in_steps}"
    assert any(step in LOG_STEPS for step, _ in reads)  # the counter does see the log steps' reads
    if policy == "skip":
        assert result.nonfinite_skipped == 1 and result.step == STEPS
        assert torch.isfinite(torch.tensor(result.last["loss"]))
