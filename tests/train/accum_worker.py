"""A light torchrun worker for the feature-cache accumulation tests (torch + open_clip's text tower + the trainer):
CLIP over a tiny encoder and a 16-token micro text tower on a deterministic in-memory caption stream.
Usage: accum_worker.py OUT BATCH ACCUM."""
import os
import sys

import torch

from leanvl.objectives.clip import Contrastive
from leanvl.objectives.text_tower import TEXT_CONFIGS
from leanvl.train.config import TrainConfig
from leanvl.train.loop import train
from tests.conftest import TinyEncoder

WORDS = ["red", "blue", "green", "circle", "square", "small", "large", "cat", "dog", "tree"]
TEXT = "test-text-micro"  # a narrow 16-token text tower keeps the exact-equality tests fast on a CPU
if TEXT not in TEXT_CONFIGS:
    TEXT_CONFIGS.register(TEXT, {"embed_dim": 32, "text_cfg": {"context_length": 16, "vocab_size": 49408,
                                                                "width": 32, "heads": 2, "layers": 1}})


def caption(i: int) -> str:
    return f"a {WORDS[i % 10]} {WORDS[(i * 3 + 1) % 10]} {WORDS[(i * 7 + 2) % 10]} number {i}"


def batch(lo: int, hi: int) -> dict:
    """Samples lo..hi-1 of the stream (each a pure function of its index)."""
    images = [torch.randn(3, 8, 8, generator=torch.Generator().manual_seed(i)) for i in range(lo, hi)]
    return {"image": torch.stack(images), "caption": [caption(i) for i in range(lo, hi)],
            "index": torch.arange(lo, hi), "skipped": {}, "raw_count": hi - lo}


def make(cls=Contrastive, rank: int = 0, world: int = 1):
    torch.manual_seed(0)
    return cls(TinyEncoder(), TEXT, rank=rank, world_size=world)


def rank_batches(size: int, rank: int = 0, world: int = 1):
    """`batches(start)` of this rank: micro-batches rank, rank + world, ... of the one global stream."""
    def batches(start: int):  # start: samples consumed by all ranks
        g = start // size
        while True:
            yield batch((g + rank) * size, (g + rank + 1) * size)
            g += world

    return batches


def config(out: str, size: int, accum: int) -> TrainConfig:
    return TrainConfig(out=out, steps=2, batch_size=size, accum_freq=accum, lr=1e-2, device="cpu", log_every=1,
                       progress=False)


if __name__ == "__main__":
    out, size, accum = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    train(make(Contrastive, rank, world), rank_batches(size, rank, world), config(out, size, accum))
