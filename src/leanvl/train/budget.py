"""`--max-seconds`: a wall-clock training budget. Training stops at the step boundary nearest the budget (it stops
once less than half a typical step is left), and the cosine schedule runs over the budget's time instead of
`--steps` (warmup stays in steps). Elapsed training time is kept in checkpoints so a resumed run spends only what
is left (with the running step-time estimate, so that a resume of a finished run trains nothing more); evaluation
and checkpoint writing are not counted. `--max-seconds-clock cpu` counts this process's CPU
time (time.process_time, all threads) instead of elapsed time, so that runs on a shared CPU box get equal compute
whatever the load beside them."""
from __future__ import annotations

import time
from typing import Any, Callable

import torch

from leanvl.train import distributed as dist
from leanvl.train.config import TrainConfig
from leanvl.train.optim import lr_at


class TimeBudget:
    """Training time spent so far against `cfg.max_seconds` (0: no budget, only `cfg.steps` counts)."""

    def __init__(self, cfg: TrainConfig, device: torch.device) -> None:
        self.cfg, self.device = cfg, device
        self.clock = time.process_time if cfg.max_seconds_clock == "cpu" else time.perf_counter
        self.spent = 0.0
        self.since: float | None = None
        self.step_s: float | None = None  # running estimate of one step's time
        self.last_check: float | None = None

    def resume(self, spent: float, step_s: float | None = None) -> None:
        """Continue a run that already trained `spent` seconds, whose steps took about `step_s` seconds (kept in
        the checkpoint, so a resumed run makes the same stop decision as the run that wrote it)."""
        self.spent = float(spent)
        self.step_s = None if step_s is None else float(step_s)

    def start(self) -> None:
        """(Re)start the clock: training time counts from here."""
        self.since = self.clock()

    def pause(self) -> None:
        """Stop the clock (before an evaluation, a checkpoint, or at the end)."""
        if self.since is not None:
            self.spent += self.clock() - self.since
            self.since = None

    def excluding(self, fn: Callable[..., Any] | None) -> Callable[..., Any] | None:
        """`fn` with the clock stopped while it runs (None stays None)."""
        if fn is None:
            return None

        def paused(*args: Any, **kwargs: Any) -> Any:
            running = self.since is not None
            self.pause()
            try:
                return fn(*args, **kwargs)
            finally:
                if running:
                    self.start()

        return paused

    def elapsed(self) -> float:
        """Training seconds spent so far (resumed attempts included)."""
        return self.spent + (self.clock() - self.since if self.since is not None else 0.0)

    def exhausted(self) -> bool:
        """True once the budget is spent; call once per step. Distributed: all ranks stop when any is over."""
        if not self.cfg.max_seconds:
            return False
        now = self.elapsed()
        if self.last_check is not None:
            dt = now - self.last_check
            self.step_s = dt if self.step_s is None else 0.7 * self.step_s + 0.3 * dt
        self.last_check = now
        over = self.cfg.max_seconds - now <= 0.5 * (self.step_s or 0.0)
        if dist.world_size() == 1:
            return over
        flag = torch.tensor([1.0 if over else 0.0], device=self.device)
        return bool(dist.all_reduce_sum(flag).item() > 0)

    def lr(self, step: int) -> float:
        """The learning rate of optimizer step `step` (0-based): over time under a budget, else over steps."""
        cfg = self.cfg
        if not cfg.max_seconds or step < cfg.warmup:
            return lr_at(step, cfg)
        fraction = min(1.0, self.elapsed() / cfg.max_seconds)
        return lr_at(cfg.warmup + fraction * max(1, cfg.steps - cfg.warmup), cfg)  # type: ignore[arg-type]
