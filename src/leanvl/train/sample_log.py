"""Data position in samples consumed (elastic across batch / accumulation / world changes) and RUN/samples.jsonl.

The trainer's data position is the number of raw samples all ranks consumed together; one step consumes
batch_size x accum_freq x world_size. `--log-sample-keys` writes one line per step, {"step", "keys"}, with the keys
of every rank's samples in raw-position order (gathered onto rank 0).
"""
from __future__ import annotations

import json
import os
from typing import Any

import torch

SAMPLES = "samples.jsonl"


def samples_per_step(batch_size: int, accum_freq: int, world: int) -> int:
    """Raw samples one optimizer step consumes over all ranks."""
    return batch_size * accum_freq * world


def restored_position(state: dict[str, Any], batch_size: int) -> int:
    """Samples consumed of a checkpoint; old checkpoints stored per-rank `microbatches` and `world_size`."""
    if "samples" in state:
        return int(state["samples"])
    return int(state.get("microbatches", 0)) * int(state.get("world_size", 1)) * batch_size


class SampleKeyLog:
    """Appends the sample keys of each step to RUN/samples.jsonl (rank 0 writes; every rank contributes)."""

    def __init__(self, out: str, enabled: bool, main: bool, world: int) -> None:
        self.path = os.path.join(out, SAMPLES)
        self.enabled, self.main, self.world = enabled, main, world

    def truncate_after(self, step: int) -> None:
        """Drop lines after `step` (a resumed run writes them again)."""
        if not (self.enabled and self.main and os.path.exists(self.path)):
            return
        with open(self.path) as f:
            kept = [ln for ln in f if ln.strip() and json.loads(ln)["step"] <= step]
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.writelines(kept)
        os.replace(tmp, self.path)

    def write(self, step: int, micro: list[dict]) -> None:
        """Record the (raw index, key) pairs of this step's micro-batches from all ranks."""
        if not self.enabled:
            return
        pairs = [(int(i), k) for b in micro for i, k in zip(b["index"].tolist(), b.get("key", []))]
        if self.world > 1:
            gathered: list[Any] = [None] * self.world
            torch.distributed.all_gather_object(gathered, pairs)
            pairs = [p for part in gathered for p in part]
        if self.main:
            with open(self.path, "a") as f:
                f.write(json.dumps({"step": step, "keys": [k for _, k in sorted(pairs)]}) + "\n")
