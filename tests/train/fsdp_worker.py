"""A light torchrun worker (torch + the trainer only): SuperClass over a tiny block encoder with dropout, on the
deterministic in-memory stream of tests.train.helpers.
Usage: fsdp_worker.py OUT STEPS BATCH [--fsdp] [--resume] [--dropout]."""
import sys

import torch

from leanvl.objectives.superclass import SuperClass
from leanvl.train.config import TrainConfig
from leanvl.train.loop import train
from tests.train.helpers import V, fake_batches


class BlockEncoder(torch.nn.Module):
    """Patch embedding + 2 MLP blocks with dropout (FSDP shards each block, RNG matters on resume)."""

    def __init__(self, width: int = 16, dropout: float = 0.0) -> None:
        super().__init__()
        self.width, self.grid, self.name = width, (2, 2), "tiny-blocks"
        self.embed = torch.nn.Conv2d(3, width, 4, stride=4)
        self.blocks = torch.nn.ModuleList(torch.nn.Sequential(torch.nn.LayerNorm(width), torch.nn.Linear(width, width),
                                                              torch.nn.GELU(), torch.nn.Dropout(dropout))
                                          for _ in range(2))

    def forward_pooled(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x).flatten(2).transpose(1, 2)
        for block in self.blocks:
            h = h + block(h)
        return h.mean(1)


def rank_batches(batch: int):
    """`batches(start)` of this rank: micro-batches rank, rank + world, ... of the one global stream."""
    from leanvl.train import distributed as dist

    def batches(start: int):  # start: samples consumed by all ranks (the trainer's position)
        rank, world, g = dist.rank(), dist.world_size(), start // batch  # g: global micro-batches consumed
        while True:
            yield next(fake_batches(batch)((g + rank) * batch))
            g += world

    return batches


def make_block_task(dropout: bool = False) -> SuperClass:
    """With dropout, exact resume needs every rank's RNG state back; without, 2 ranks can equal 1 process."""
    torch.manual_seed(0)
    from leanvl.train import distributed as dist

    reduce = dist.all_reduce_sum if dist.world_size() > 1 else None  # IDF counts summed over ranks
    return SuperClass(BlockEncoder(dropout=0.2 if dropout else 0.0), vocab_size=V, idf="online",
                      reduce_counts=reduce)


def config(out: str, steps: int, batch: int, fsdp: bool, resume: bool) -> TrainConfig:
    return TrainConfig(out=out, steps=steps, batch_size=batch, lr=1e-2, warmup=2, device="cpu", log_every=1,
                       save_every=1, keep=2, progress=False, fsdp=fsdp, resume="latest" if resume else "", seed=3)


if __name__ == "__main__":
    out, steps, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    train(make_block_task("--dropout" in sys.argv), rank_batches(batch), config(out, steps, batch, "--fsdp" in sys.argv,
                                                         "--resume" in sys.argv))
