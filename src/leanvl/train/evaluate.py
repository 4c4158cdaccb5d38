"""The trainer's evaluator hook: `evaluator(task, step) -> dict[str, float]` every `eval_every` steps (and after
the last), on every rank, task in eval mode under torch.no_grad; results come back prefixed `eval/` with the
evaluation wall time as `eval_s` (never counted in samples/s)."""
from __future__ import annotations

import time
from typing import Callable

import torch
from torch import nn

from leanvl.train import distributed as dist

Evaluator = Callable[[nn.Module, int], dict]


def eval_due(step: int, eval_every: int, final: bool) -> bool:
    """Whether the evaluator runs after optimizer step `step` (`final`: the run's last step)."""
    return bool(eval_every) and (step % eval_every == 0 or final)


def run_evaluator(evaluator: Evaluator, task: nn.Module, step: int) -> dict[str, float]:
    """Call `evaluator` on `task` (eval mode, no grad; train mode restored); {'eval/<key>': value, 'eval_s': s}."""
    was_training = task.training
    started = time.perf_counter()
    task.eval()
    try:
        with torch.no_grad():
            results = evaluator(task, step) or {}
    finally:
        task.train(was_training)
    dist.barrier()  # ranks that finished first wait here rather than in the next step's collectives
    out = {f"eval/{k}": float(v) for k, v in results.items()}
    out["eval_s"] = time.perf_counter() - started
    return out
