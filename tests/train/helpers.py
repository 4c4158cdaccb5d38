"""Deterministic in-memory data for trainer tests: sample i is a pure function of i."""
import contextlib
import os

import numpy as np
import torch

from leanvl.objectives.superclass import SuperClass

V = 12


def sample(i: int):
    g = torch.Generator().manual_seed(1000 + i)
    image = torch.randn(3, 8, 8, generator=g)
    labels = sorted({(i * 7) % V, (i * 3 + 1) % V, 5})
    return image, labels


def fake_batches(batch_size: int, poison_at: int | None = None, stop_at: int | None = None):
    """`batches(start)` over micro-batches of `batch_size`; optionally NaN images at / an exception at micro-batch k."""

    def batches(start: int):  # start counts samples
        b = start // batch_size
        while True:
            if stop_at is not None and b >= stop_at:
                raise KeyboardInterrupt("simulated kill")
            idx = list(range(b * batch_size, (b + 1) * batch_size))
            items = [sample(i) for i in idx]
            image = torch.stack([im for im, _ in items])
            if poison_at is not None and b == poison_at:
                image = image * float("nan")
            ids = torch.tensor([i for _, lab in items for i in lab])
            offsets = torch.tensor(np.cumsum([0] + [len(lab) for _, lab in items]))
            yield {"image": image, "label_ids": ids, "label_offsets": offsets, "index": torch.tensor(idx),
                   "skipped": {}, "raw_count": batch_size}
            b += 1

    return batches


class DropoutEncoder(torch.nn.Module):
    """Tiny encoder with dropout, so that resume must restore RNG state to be exact."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.width, self.grid, self.name = width, (2, 2), "tiny-dropout"
        self.conv = torch.nn.Conv2d(3, width, 4, stride=4)
        self.drop = torch.nn.Dropout(0.3)
        self.mix = torch.nn.Linear(width, width)

    def forward_pooled(self, x: torch.Tensor) -> torch.Tensor:
        return self.mix(self.drop(self.conv(x).flatten(2).transpose(1, 2))).mean(1)


def make_task(idf: str = "online", dropout: bool = False) -> SuperClass:
    torch.manual_seed(0)
    if dropout:
        enc = DropoutEncoder()
    else:
        from tests.conftest import TinyEncoder

        enc = TinyEncoder()
    return SuperClass(enc, vocab_size=V, idf=idf)


@contextlib.contextmanager
def torchrun_threads():
    """Run in-process with the intra-op thread count torchrun workers get (OMP_NUM_THREADS=1; tests/conftest.py sets
    2): CPU kernels then sum in the same order, so an in-process reference and the workers round alike (otherwise
    Adam amplifies the rounding on near-zero gradients, e.g. LoRA's A right after B leaves 0, beyond 1e-5)."""
    before = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1") or 1))
    try:
        yield
    finally:
        torch.set_num_threads(before)
