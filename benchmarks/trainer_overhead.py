"""Trainer overhead: `leanvl.train.loop.train` against a bare hand-written loop, same model, data and optimizer.

Both sides train SuperClass on a small plain-torch ViT from the same in-memory micro-batches (the dict layout of
tests/train/helpers.py: image, label_ids, label_offsets, index, skipped, raw_count), fp32, AdamW with the trainer's
hyper-parameters (fused AdamW on both sides), global-norm clipping. Default `--mode steps`: the two loops alternate
STEP BY STEP in one process (each time the trainer asks for a batch, the bare loop takes one step first), so load
drift on a shared machine hits both alike; the trainer's step is the time from handing it a batch to its next
request, so it holds everything the loop does per step (forward, backward, clip, finiteness check, optimizer,
logging, data accounting). `--mode runs` alternates whole runs instead (noisier on a busy machine). The first
`--warmup` steps of every run (the trainer counts FLOPs in step 1) are dropped; medians are compared.

  python benchmarks/trainer_overhead.py                 # prints both step times and the overhead percentage
  python benchmarks/trainer_overhead.py --smoke         # a few steps, checks the script runs
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator

import numpy as np
import torch

from leanvl.objectives.superclass import SuperClass
from leanvl.train.config import TrainConfig
from leanvl.train.loop import train

VOCAB = 1000
CLOCKS = {"cpu": time.thread_time, "wall": time.perf_counter}
_clock = [time.thread_time]


def clock() -> float:
    """The timer every measurement uses (`--clock`): this thread's CPU time by default, so that time spent waiting
    for a core on a shared machine is not counted (torch runs on this one thread: --threads 1)."""
    return _clock[0]()


def make_batches(n: int, batch: int, size: int) -> list[dict]:
    """`n` fixed micro-batches: random images, 3-8 sorted label ids per sample."""
    g = torch.Generator().manual_seed(0)
    out = []
    for b in range(n):
        labels = [torch.randperm(VOCAB - 1, generator=g)[: 3 + (i % 6)].sort().values + 1 for i in range(batch)]
        offsets = torch.tensor(np.cumsum([0] + [len(x) for x in labels]))
        out.append({"image": torch.randn(batch, 3, size, size, generator=g), "label_ids": torch.cat(labels),
                    "label_offsets": offsets, "index": torch.arange(b * batch, (b + 1) * batch), "skipped": {},
                    "raw_count": batch})
    return out


def timed(batches: list[dict], stamps: list[float]) -> Callable[[int], Iterator[dict]]:
    """`batches(start)` cycling over `batches`, appending clock() at every request to `stamps`."""

    def gen(start: int) -> Iterator[dict]:
        i = start
        while True:
            stamps.append(clock())
            yield batches[i % len(batches)]
            i += 1

    return gen


class SmallViT(torch.nn.Module):
    """A 4-layer width-128 ViT over 4x4 patches (plain torch, so the benchmark does not wait for timm's import)."""

    def __init__(self, size: int, width: int = 128, depth: int = 4) -> None:
        super().__init__()
        self.width, self.grid, self.name = width, (size // 4, size // 4), "bench-small-vit"
        self.patch = torch.nn.Conv2d(3, width, 4, stride=4)
        self.pos = torch.nn.Parameter(torch.zeros(1, (size // 4) ** 2, width))
        layer = torch.nn.TransformerEncoderLayer(width, 4, 4 * width, dropout=0.0, activation="gelu",
                                                 batch_first=True, norm_first=True)
        self.blocks = torch.nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)

    def forward_pooled(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.patch(x).flatten(2).transpose(1, 2) + self.pos).mean(1)


def make_task(size: int) -> SuperClass:
    torch.manual_seed(0)
    return SuperClass(SmallViT(size), vocab_size=VOCAB, idf="online")


def run_trainer(cfg: TrainConfig, batches: list[dict], size: int) -> list[float]:
    stamps: list[float] = []
    train(make_task(size), timed(batches, stamps), cfg)
    return list(np.diff(stamps))


class BareLoop:
    """The loop a user would write by hand: forward, backward, clip, AdamW step, zero_grad (fused AdamW, the
    implementation the trainer uses, so that the difference is the trainer's own work)."""

    def __init__(self, cfg: TrainConfig, size: int) -> None:
        self.cfg, self.task = cfg, make_task(size)
        self.opt = torch.optim.AdamW(self.task.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps,
                                     weight_decay=cfg.weight_decay, fused=True)

    def step(self, batch: dict) -> float:
        """One step; returns its duration in seconds."""
        t0 = clock()
        loss = self.task(batch)["loss"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.task.parameters(), self.cfg.grad_clip)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return clock() - t0


def run_bare(cfg: TrainConfig, batches: list[dict], size: int) -> list[float]:
    bare = BareLoop(cfg, size)
    return [bare.step(batches[i % len(batches)]) for i in range(cfg.steps)]


def run_interleaved(cfg: TrainConfig, batches: list[dict], size: int) -> tuple[list[float], list[float]]:
    """Trainer and bare loop alternating STEP BY STEP in one process (so both see the same machine load): every
    time the trainer asks for its next batch, the bare loop first takes one step. The trainer's step is the time
    from handing it a batch to its next request."""
    bare, ours, theirs, handed = BareLoop(cfg, size), [], [], [0.0]

    def gen(start: int) -> Iterator[dict]:
        i = start
        while True:
            if handed[0]:
                ours.append(clock() - handed[0])
            theirs.append(bare.step(batches[i % len(batches)]))
            handed[0] = clock()
            yield batches[i % len(batches)]
            i += 1

    train(make_task(size), gen, cfg)
    return ours, theirs[: len(ours)]


def measure(args: argparse.Namespace, batches: list[dict], tmp: str) -> tuple[list[float], list[float]]:
    """Step times (trainer, bare) over `args.rounds` runs, warm-up steps dropped."""
    ours, bare = [], []
    for r in range(args.rounds):
        cfg = TrainConfig(out=f"{tmp}/run{r}", steps=args.steps, batch_size=args.batch, lr=1e-3, warmup=0,
                          progress=False, device="cpu")
        if args.mode == "steps":
            a, b = run_interleaved(cfg, batches, args.size)
            ours, bare = ours + a[args.warmup:], bare + b[args.warmup:]
            continue
        if r % 2:  # alternate which side runs first, so a drift in machine load favours neither
            bare += run_bare(cfg, batches, args.size)[args.warmup:]
        ours += run_trainer(cfg, batches, args.size)[args.warmup:]
        if not r % 2:
            bare += run_bare(cfg, batches, args.size)[args.warmup:]
    return ours, bare


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=40, help="steps per run")
    ap.add_argument("--rounds", type=int, default=3, help="trainer/bare run pairs")
    ap.add_argument("--warmup", type=int, default=3, help="steps dropped at the start of every run")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=32, help="image side")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--mode", choices=("steps", "runs"), default="steps",
                    help="steps: trainer and bare loop alternate step by step in one process (default); "
                         "runs: whole runs alternate")
    ap.add_argument("--clock", choices=tuple(CLOCKS), default="cpu",
                    help="cpu: this thread's CPU time (default; needs --threads 1); wall: perf_counter")
    ap.add_argument("--smoke", action="store_true", help="tiny run: checks the script works")
    ap.add_argument("--json", default="", help="also write the figures to this file")
    args = ap.parse_args()
    if args.smoke:
        args.steps, args.rounds, args.warmup, args.batch = 6, 1, 1, 4
    torch.set_num_threads(args.threads)
    _clock[0] = CLOCKS[args.clock]
    batches = make_batches(8, args.batch, args.size)
    with tempfile.TemporaryDirectory() as tmp:
        ours, bare = measure(args, batches, tmp)
    t_ours, t_bare = statistics.median(ours), statistics.median(bare)
    paired = [a / b for a, b in zip(ours, bare)] if args.mode == "steps" else []
    result = {"trainer_step_ms": 1e3 * t_ours, "bare_step_ms": 1e3 * t_bare,
              "overhead_pct": 100.0 * (t_ours / t_bare - 1.0), "steps_timed_each": len(ours), "mode": args.mode,
              "clock": args.clock, "paired_median_pct": 100.0 * (statistics.median(paired) - 1.0) if paired else None,
              "batch": args.batch, "size": args.size, "threads": args.threads,
              "model": "SmallViT(width 128, depth 4, patch 4)"}
    print(f"trainer  {result['trainer_step_ms']:.2f} ms/step (median of {len(ours)})")
    print(f"bare     {result['bare_step_ms']:.2f} ms/step (median of {len(bare)})")
    print(f"overhead {result['overhead_pct']:+.1f}% (ratio of medians)" + (
        f", {result['paired_median_pct']:+.1f}% (median of per-step ratios)" if paired else ""))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
