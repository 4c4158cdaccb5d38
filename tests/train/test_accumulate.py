"""Feature-cache accumulation: 4 micro-batches x 8 give the loss and gradients of one batch of 32 (CLIP, SigLIP)."""
import contextlib
import os
import subprocess
import sys

import pytest
import torch

from leanvl.objectives.clip import Contrastive
from leanvl.objectives.siglip import SigLIP
from leanvl.train.accumulate import FeatureCacheTask, cached_forward_backward
from leanvl.train.loop import train
from tests.train.accum_worker import batch, config, make, rank_batches
from tests.train.test_fsdp import ENV, ROOT, free_port


@pytest.mark.parametrize("cls", [Contrastive, SigLIP])
def test_cached_accumulation_equals_full_batch(cls):
    full, acc = make(cls), make(cls)
    assert isinstance(acc, FeatureCacheTask)
    loss = full(batch(0, 32))["loss"]
    loss.backward()
    out, n = cached_forward_backward(acc, acc, [batch(8 * j, 8 * j + 8) for j in range(4)], dict,
                                     contextlib.nullcontext)
    assert n == 32 and all(v.ndim == 0 and not v.requires_grad for v in out.values())  # the step.py contract
    torch.testing.assert_close(out["loss"], loss.detach(), rtol=0, atol=1e-5)
    for (name, a), b in zip(full.named_parameters(), acc.parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=0, atol=1e-5, msg=name)
    plain = make(cls)  # plain accumulation (own negatives only) is measurably different
    sum(plain(batch(8 * j, 8 * j + 8))["loss"] / 4 for j in range(4)).backward()
    assert (plain.image_proj.weight.grad - full.image_proj.weight.grad).abs().max() > 1e-4


def test_trainer_uses_the_cache_under_accum_freq(tmp_path):
    big, small = make(SigLIP), make(SigLIP)
    r1 = train(big, rank_batches(16), config(str(tmp_path / "big"), 16, 1))
    r2 = train(small, rank_batches(4), config(str(tmp_path / "acc"), 4, 4))
    assert r1.last["loss"] == pytest.approx(r2.last["loss"], abs=1e-5)
    for (k, a), b in zip(big.state_dict().items(), small.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=k)


def test_cached_accumulation_under_ddp_equals_one_process(tmp_path):
    """2 ranks x accum 2 x 4 (CLIP, local loss + gathered features) == 1 process, one batch of 16 (plain
    accumulation would score groups of 4)."""
    from safetensors.torch import load_file

    one = make()
    train(one, rank_batches(16), config(str(tmp_path / "one"), 16, 1))
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                          f"--master_port={free_port()}", os.path.join(ROOT, "tests", "train", "accum_worker.py"),
                          str(tmp_path / "two"), "4", "2"], capture_output=True, text=True, env=ENV, timeout=300)
    assert two.returncode == 0, two.stderr[-2000:]
    b = load_file(str(tmp_path / "two" / "checkpoints" / "step-00000002" / "model.safetensors"))
    for k, a in one.state_dict().items():
        torch.testing.assert_close(a, b[k], rtol=1e-4, atol=1e-5, msg=k)
