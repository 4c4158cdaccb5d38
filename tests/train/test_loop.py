import json
import os

import pytest
import torch

from safetensors.torch import load_file

from leanvl.errors import DataError, LeanvlError
from leanvl.train.checkpoint import checkpoint_dirs, resolve_resume
from leanvl.train.config import TrainConfig
from leanvl.train.loop import train
from tests.train.helpers import fake_batches, make_task


def cfg(tmp_path, name, **kw):
    base = dict(out=str(tmp_path / name), steps=4, batch_size=8, lr=1e-2, warmup=1, progress=False, log_every=1)
    base.update(kw)
    return TrainConfig(**base)


def weights(task):
    return {k: v.clone() for k, v in task.state_dict().items()}


def test_accumulation_equals_large_batch(tmp_path):
    big, small = make_task(idf="none"), make_task(idf="none")
    train(big, fake_batches(32), cfg(tmp_path, "big", batch_size=32, steps=3))
    train(small, fake_batches(8), cfg(tmp_path, "acc", batch_size=8, accum_freq=4, steps=3))
    for (k, a), b in zip(big.state_dict().items(), small.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=k)


def test_resume_is_bit_identical(tmp_path):
    straight = make_task(idf="online", dropout=True)
    train(straight, fake_batches(8), cfg(tmp_path, "straight", steps=6))
    resumed = make_task(idf="online", dropout=True)
    with pytest.raises(KeyboardInterrupt):  # killed while fetching the data of step 4
        train(resumed, fake_batches(8, stop_at=3), cfg(tmp_path, "resumed", steps=6, save_every=3))
    assert [os.path.basename(p) for p in checkpoint_dirs(str(tmp_path / "resumed"))] == ["step-00000003"]
    fresh = make_task(idf="online", dropout=True)  # a new process would rebuild the model from scratch
    result = train(fresh, fake_batches(8), cfg(tmp_path, "resumed", steps=6, save_every=3, resume="latest"))
    assert result.step == 6
    for (k, a), b in zip(straight.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), k
    lines = [json.loads(x) for x in open(tmp_path / "resumed" / "metrics.jsonl")]
    assert [x["step"] for x in lines] == [1, 2, 3, 4, 5, 6]
    ref = [json.loads(x) for x in open(tmp_path / "straight" / "metrics.jsonl")]
    assert [x["loss"] for x in lines] == [x["loss"] for x in ref]


def test_existing_run_is_never_overwritten_by_accident(tmp_path):
    train(make_task(), fake_batches(8), cfg(tmp_path, "run", steps=2))
    before = open(tmp_path / "run" / "metrics.jsonl").read()
    with pytest.raises(LeanvlError, match="already holds a run"):
        train(make_task(), fake_batches(8), cfg(tmp_path, "run", steps=2))
    assert open(tmp_path / "run" / "metrics.jsonl").read() == before
    train(make_task(), fake_batches(8), cfg(tmp_path, "run", steps=3, overwrite=True))
    assert len(open(tmp_path / "run" / "metrics.jsonl").readlines()) == 3


def test_resume_latest_without_checkpoint_starts_fresh_and_keep_prunes(tmp_path):
    result = train(make_task(), fake_batches(8), cfg(tmp_path, "r", steps=5, save_every=1, keep=2, resume="latest"))
    assert result.step == 5
    names = [os.path.basename(p) for p in checkpoint_dirs(str(tmp_path / "r"))]
    assert names == ["step-00000004", "step-00000005"]
    os.makedirs(tmp_path / "r" / "checkpoints" / ".tmp-step-00000009-1")  # an interrupted write
    assert resolve_resume("latest", str(tmp_path / "r")).endswith("step-00000005")
    saved = json.load(open(tmp_path / "r" / "config.json"))
    assert saved["steps"] == 5 and saved["batch_size"] == 8


def test_nonfinite_loss_stops_keeping_last_checkpoint_or_is_skipped(tmp_path):
    with pytest.raises(LeanvlError, match="non-finite"):
        train(make_task(), fake_batches(8, poison_at=3), cfg(tmp_path, "nan", steps=6, save_every=2))
    assert [os.path.basename(p) for p in checkpoint_dirs(str(tmp_path / "nan"))] == ["step-00000002"]
    task = make_task()
    result = train(task, fake_batches(8, poison_at=3), cfg(tmp_path, "skip", steps=6, nan_policy="skip"))
    assert result.nonfinite_skipped == 1 and result.step == 6
    assert all(torch.isfinite(p).all() for p in task.parameters())


@pytest.mark.parametrize("field,value", [("steps", 0), ("precision", "fp8"), ("lr", -1.0), ("nan_policy", "x")])
def test_bad_config_values_are_user_errors(tmp_path, field, value):
    with pytest.raises(LeanvlError):
        cfg(tmp_path, "bad", **{field: value}).validate()


def test_precisions_run(tmp_path):
    for precision in ("bf16", "amp_bf16", "bf16_master"):
        result = train(make_task(), fake_batches(8), cfg(tmp_path, precision, steps=2, precision=precision))
        assert result.step == 2 and result.last["loss"] == result.last["loss"]


def test_bf16_master_keeps_fp32_masters_and_small_updates(tmp_path):
    """bf16 weights compute; fp32 masters take updates far below bf16 resolution (pure bf16 rounds them away)."""
    runs = {}
    for precision in ("bf16", "bf16_master"):
        task = make_task(idf="none")
        before = {k: v.clone() for k, v in task.state_dict().items()}
        result = train(task, fake_batches(8), cfg(tmp_path, precision, steps=3, lr=1e-6, warmup=0,
                                                  weight_decay=0.0, precision=precision))
        assert result.step == 3
        assert all(p.dtype == torch.bfloat16 for p in task.parameters())
        saved = load_file(os.path.join(checkpoint_dirs(str(tmp_path / precision))[-1], "model.safetensors"))
        runs[precision] = (before, saved)
    before, saved = runs["bf16_master"]
    w0, w = before["head.fc.weight"], saved["head.fc.weight"]
    assert w.dtype == torch.float32  # the checkpoint holds the masters
    assert 0 < (w - w0).abs().max() < 1e-4  # ~3 steps x lr 1e-6: real, tiny updates
    assert (w != w0).float().mean() > 0.9  # ... kept for almost every weight
    before, saved = runs["bf16"]
    w0, w = before["head.fc.weight"].to(torch.bfloat16), saved["head.fc.weight"]
    assert w.dtype == torch.bfloat16
    assert (w != w0).float().mean() < 0.1  # pure bf16 rounds almost all of them away


def test_bf16_master_resumes_exactly_and_runs_on_the_rounded_masters(tmp_path):
    straight = make_task(idf="online", dropout=True)
    train(straight, fake_batches(8), cfg(tmp_path, "straight", steps=6, precision="bf16_master", save_every=3))
    final = load_file(os.path.join(checkpoint_dirs(str(tmp_path / "straight"))[-1], "model.safetensors"))
    resumed = make_task(idf="online", dropout=True)
    with pytest.raises(KeyboardInterrupt):
        train(resumed, fake_batches(8, stop_at=3), cfg(tmp_path, "resumed", steps=6, save_every=3,
                                                       precision="bf16_master"))
    fresh = make_task(idf="online", dropout=True)
    train(fresh, fake_batches(8), cfg(tmp_path, "resumed", steps=6, save_every=3, resume="latest",
                                      precision="bf16_master"))
    again = load_file(os.path.join(checkpoint_dirs(str(tmp_path / "resumed"))[-1], "model.safetensors"))
    assert final.keys() == again.keys()
    for k in final:
        assert torch.equal(final[k], again[k]), k
    # the bf16 weights in use are the masters rounded
    for (k, p) in straight.named_parameters():
        assert torch.equal(p.detach(), final[k].to(torch.bfloat16)), k


def test_bad_fraction_is_checked_at_the_end_of_a_short_run(tmp_path):
    """Fewer than DataStats.min_raw samples: the limit still holds once the run ends (the checkpoint is kept)."""
    base = fake_batches(8)

    def lossy(start):  # every micro-batch: 8 usable samples of 10 raw (20% bad, limit 10%)
        for batch in base(start):
            yield {**batch, "skipped": {"undecodable_image": 2}, "raw_count": 10}

    with pytest.raises(DataError, match=r"8 of 40 samples \(20.0%\).*undecodable_image=8"):
        train(make_task(), lossy, cfg(tmp_path, "run"))
    assert checkpoint_dirs(str(tmp_path / "run"))  # the finished run's checkpoint survives
