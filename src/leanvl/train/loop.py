"""The one trainer: every objective (SuperClass, CLIP, LiT, VLM) trains through `train()`.

It owns precision, gradient accumulation, clipping, the schedule, DDP, checkpoint/resume, progress and metrics; an
objective only maps a batch to {"loss": ..., other scalars}.
"""
from __future__ import annotations

import contextlib
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn

from leanvl.errors import LeanvlError
from leanvl.train import distributed as dist
from leanvl.train import fsdp
from leanvl.train import step as steps
from leanvl.train.accumulate import cached_forward_backward, supports_feature_cache
from leanvl.train.budget import TimeBudget
from leanvl.train.checkpoint import load_checkpoint, remove_leftovers, resolve_resume, save_checkpoint
from leanvl.train.dcp import check_format, load_sharded, save_sharded
from leanvl.train.identity import check_same_run
from leanvl.train.memory import memory_plan
from leanvl.train.config import TrainConfig
from leanvl.train.evaluate import Evaluator, eval_due, run_evaluator
from leanvl.train.optim import make_optimizer, set_lr
from leanvl.train.precision import MasterWeights, to_bf16
from leanvl.train.preempt import Preempted, PreemptionFlag
from leanvl.train.report import open_reporter
from leanvl.train.run_dir import MetricsLog, RunLock, check_run_dir, init_run_dir, peak_memory
from leanvl.train.sample_log import SampleKeyLog, restored_position, samples_per_step
from leanvl.train.speed import Speedometer, count_flops
from leanvl.train.task import after_optimizer_step, apply_task_options

Batches = Callable[[int], Iterator[dict]]  # batches(samples consumed by all ranks) -> this rank's micro-batches


@dataclass
class TrainResult:
    """What a finished run reports."""

    step: int
    wall_s: float
    images_per_s: float
    peak_memory_mb: float
    peak_memory_kind: str
    last: dict[str, float] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    run_dir: str = ""
    nonfinite_skipped: int = 0
    memory_plan: dict[str, Any] = field(default_factory=dict)
    train_s: float = 0.0  # training time: the --max-seconds clock (evaluation and checkpoints excluded, resumes in)


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA when available; an unavailable device is a user error."""
    if name == "auto":
        return dist.local_cuda_device() if torch.cuda.is_available() else torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise LeanvlError(f"--device {name}: CUDA is not available on this machine")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise LeanvlError(f"--device: unknown device '{name}'") from None
    return dist.local_cuda_device(device.index) if device.type == "cuda" else device


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    """State of one run; `run()` executes it. Use `train()` rather than this class directly."""

    def __init__(self, task: nn.Module, batches: Batches, cfg: TrainConfig,
                 evaluator: Evaluator | None = None) -> None:
        self.cfg = cfg.validate()
        self.device = resolve_device(cfg.device)
        dist.init(self.device)
        self.budget = TimeBudget(cfg, self.device)  # --max-seconds (train/budget.py)
        self.evaluator = self.budget.excluding(evaluator)  # evaluation is not training time
        self.rank, self.world = dist.rank(), dist.world_size()
        self.main = self.rank == 0
        self.batches = batches
        self.task = task.to(self.device)
        self.master: MasterWeights | None = None
        if cfg.fsdp:  # FSDP2 owns precision (MixedPrecisionPolicy) and gradient reduction
            fsdp.shard_task(self.task, cfg.precision, self.device)
        elif cfg.precision == "bf16_master":  # trainable weights get fp32 masters (before rounding); frozen ones don't
            self.master = MasterWeights([p for p in self.task.parameters() if p.requires_grad])
        if cfg.precision in ("bf16", "bf16_master") and not cfg.fsdp:
            to_bf16(self.task)
        apply_task_options(task, grad_checkpointing=cfg.grad_checkpointing)
        self.model: nn.Module = self.task
        if self.world > 1 and not cfg.fsdp:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.task, device_ids=ids)
        self.params = [p for p in self.task.parameters() if p.requires_grad]
        if not self.params:
            raise LeanvlError("nothing to train: every parameter is frozen")
        swap = self.master.swap() if self.master else None
        self.optimizer = make_optimizer(self.task, cfg, swap)
        if self.master:
            self.params = self.master.master  # clipping and the finiteness check see the fp32 gradients
        self.step, self.nonfinite_skipped, self.samples = 0, 0, 0
        from leanvl.data.loader import DataStats

        self.data_stats = DataStats(max_bad_fraction=cfg.max_bad_fraction)
        self.speed = Speedometer(self.device, cfg.precision, warmup_steps=2 if cfg.compile else 1)
        self.nonfinite = steps.NonFiniteWindow(self.device, cfg.nan_policy)
        self.memory_plan = memory_plan(self.task, cfg, self.world, self.main)
        self.feature_cache = supports_feature_cache(task) and cfg.accum_freq > 1  # CLIP/SigLIP: train/accumulate.py

    # ----- setup -------------------------------------------------------------------------------------------------
    def restore(self) -> None:
        """Resume from `cfg.resume` when it names a checkpoint (latest with none found: fresh start)."""
        path = resolve_resume(self.cfg.resume, self.cfg.out)
        if path is None:
            return
        check_format(path, self.cfg.fsdp)
        if self.cfg.fsdp:
            state = load_sharded(path, self.task, self.optimizer)
        else:
            with self.checkpoint_weights():
                state = load_checkpoint(path, self.task, self.optimizer)
        try:
            self.step = int(state["step"])
            self.samples = restored_position(state, self.cfg.batch_size)
            self.nonfinite_skipped = int(state.get("nonfinite_skipped", 0))
            self.data_stats.load(state.get("data_stats", {}))
            self.nonfinite.since = self.step
            self.budget.resume(float(state.get("train_seconds", 0.0)), state.get("step_seconds"))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise LeanvlError(f"checkpoint {path}: state.json does not have the expected fields") from None
        if self.main:
            print(f"leanvl: resumed from {path} (step {self.step})")

    def checkpoint_weights(self) -> contextlib.AbstractContextManager:
        """The weights checkpoints hold: the fp32 masters under bf16_master, else the model's own."""
        return self.master.fp32_view() if self.master else contextlib.nullcontext()

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.cfg.precision == "amp_bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def device_batch(self, batch: dict) -> dict:
        """`batch` on the training device (floating tensors in bf16 under bf16 / bf16_master)."""
        bf16 = self.cfg.precision in ("bf16", "bf16_master")
        return steps.to_device(batch, self.device, torch.bfloat16 if bf16 else None)

    # ----- one optimizer step ------------------------------------------------------------------------------------
    def next_micro_batches(self, stream: Iterator[dict]) -> list[dict]:
        """The `accum_freq` micro-batches of this step, accounted in the data statistics."""
        micro = []
        for _ in range(self.cfg.accum_freq):
            try:
                batch = next(stream)
            except StopIteration:
                raise LeanvlError("the data source ran out of samples before the last step") from None
            self.data_stats.update(batch)
            micro.append(batch)
        self.data_stats.check_step(micro, self.step + 1)  # a step with no usable sample is a DataError
        self.data_stats.check()
        return micro

    def forward_backward(self, micro: list[dict]) -> tuple[steps.Logs, int]:
        """Accumulate gradients over the micro-batches: (detached 0-dim device scalars, samples); no host sync."""
        float_dtype = torch.bfloat16 if self.cfg.precision in ("bf16", "bf16_master") else None
        return steps.forward_backward(self.model, micro, self.device, float_dtype, self.autocast)

    def optimizer_step(self, logs: steps.Logs) -> torch.Tensor:
        """Clip, decide finiteness on the device, step; returns the device flag (1.0: the step was skipped)."""
        set_lr(self.optimizer, self.budget.lr(self.step))
        if self.master:
            self.master.grads_up()
        clip = self.cfg.grad_clip if self.cfg.grad_clip > 0 else float("inf")
        norm = fsdp.local_value(torch.nn.utils.clip_grad_norm_(self.params, clip))
        skip = steps.skip_flag(logs, norm, self.world, self.device)
        steps.guarded_step(self.optimizer, skip)  # a skipped step leaves weights, moments and step count as they were
        after_optimizer_step(self.task)  # every step, skipped too: SuperClass commits the IDF counts of the data seen
        self.optimizer.zero_grad(set_to_none=True)
        if self.master:
            self.master.copy_down()
        logs["grad_norm"] = norm.detach().float()
        self.nonfinite.add(skip)
        return skip

    def mean_over_ranks(self, logs: steps.Logs) -> steps.Logs:
        """Average the logged scalars over ranks on the device (identity for one process)."""
        return steps.mean_over_ranks(logs, self.world)

    def flush_nonfinite(self) -> None:
        """Count the steps skipped since the last flush (one read; log and checkpoint steps only)."""
        self.nonfinite_skipped += self.nonfinite.flush(self.step)

    def log_values(self, logs: steps.Logs, evaluated: bool) -> dict[str, float]:
        """The step's logs as floats (the one read of a log step), with lr, speed, skips and eval results."""
        values = steps.to_floats(self.mean_over_ranks(logs))
        values.update(lr=self.optimizer.param_groups[0]["lr"], **self.speed.scalars())
        skipped = self.nonfinite.take_unlogged()
        if skipped:
            values["skipped_nonfinite"] = float(skipped)
        if evaluated:
            values.update(run_evaluator(self.evaluator, self.task, self.step))
        return values

    # ----- the run -----------------------------------------------------------------------------------------------
    def save(self) -> None:
        self.flush_nonfinite()  # --nan-policy stop raises here: no checkpoint after a non-finite step
        self.budget.pause()  # checkpoint writing is not training time
        extra = {"samples": self.samples, "nonfinite_skipped": self.nonfinite_skipped,
                 "data_stats": self.data_stats.as_dict(), "world_size": self.world,
                 "train_seconds": self.budget.elapsed(), "step_seconds": self.budget.step_s}
        if self.cfg.fsdp:  # collective: every rank writes its shards
            save_sharded(self.cfg.out, self.step, self.task, self.optimizer, extra, self.cfg.keep)
        elif self.main:
            with self.checkpoint_weights():
                save_checkpoint(self.cfg.out, self.step, self.task, self.optimizer, extra, self.cfg.keep)
        dist.barrier()
        self.budget.start()

    def preempt_requested(self, flag: PreemptionFlag | None, synced: bool = True) -> bool:
        """True on every rank when any rank received SIGTERM/SIGUSR1; distributed, asked at log steps only (`synced`),
        where one tiny all-reduce and its read join the log step's sync."""
        asked = flag is not None and flag.signal is not None
        if self.world > 1:
            if not synced:
                return False
            asked = bool(dist.all_reduce_sum(torch.tensor([float(asked)], device=self.device)).item() > 0)
        return asked

    def run(self, flag: PreemptionFlag | None = None) -> TrainResult:
        cfg = self.cfg
        log = MetricsLog(cfg.out, self.main)
        log.truncate_after(self.step)
        keys = SampleKeyLog(cfg.out, cfg.log_sample_keys, self.main, self.world)
        keys.truncate_after(self.step)
        stream = self.batches(self.samples)  # samples consumed by all ranks so far
        bar = self.speed.progress(cfg.steps, self.step, enabled=cfg.progress and self.main)
        last: dict[str, float] = {}
        compiled, final = False, self.step >= cfg.steps or self.budget.exhausted()  # a resume may find it spent
        self.report = report = open_reporter(cfg, self.main, self.step + 1)  # --report-to (train/report.py)
        self.budget.start()
        while not final:
            micro = self.next_micro_batches(stream)
            keys.write(self.step + 1, micro)
            self.samples += samples_per_step(cfg.batch_size, cfg.accum_freq, self.world)
            self.speed.start_step()
            with count_flops(enabled=self.speed.flops_per_sample is None) as flops:
                if self.feature_cache:  # a15: returns the detached-0-dim-device-tensor contract of train/step.py
                    logs, n = cached_forward_backward(self.model, self.task, micro, self.device_batch, self.autocast)
                else:
                    logs, n = self.forward_backward(micro)
            self.speed.record_flops(flops, n)
            self.optimizer_step(logs)
            self.step += 1
            self.speed.end_step(n * self.world)
            if cfg.compile and not compiled:  # compile after the (eager, FLOP-counted) first step
                self.task.compile()
                compiled = True
            final = self.step >= cfg.steps or self.budget.exhausted()
            bar.update(1)
            evaluated = self.evaluator is not None and eval_due(self.step, cfg.eval_every, final)
            logged = self.step % cfg.log_every == 0 or final or evaluated
            if logged:  # the log step: the one place values are read back from the device
                self.flush_nonfinite()
                last = self.log_values(logs, evaluated)
                bar.set_postfix(loss=f"{last.get('loss', float('nan')):.4f}", lr=f"{last['lr']:.2e}",
                                samples_s=f"{last.get('samples_per_s', 0):.1f}", refresh=False)
                log.write(self.step, last, self.data_stats.as_dict())
                report.log(self.step, last, self.data_stats.as_dict())
            if (cfg.save_every and self.step % cfg.save_every == 0) or final:
                self.save()
            elif self.preempt_requested(flag, synced=logged):
                self.save()
                bar.close()
                raise Preempted(f"preempted by {flag.signal if flag and flag.signal else 'a signal'} at step "
                                f"{self.step}: checkpoint saved; continue with --resume latest")
        self.budget.pause()
        bar.close()
        self.data_stats.check(final=True)  # the bad-fraction limit holds for every run, however short
        mem, kind = peak_memory(self.device)
        return TrainResult(step=self.step, wall_s=self.speed.wall_s(), images_per_s=self.speed.overall_rate(),
                           peak_memory_mb=mem, peak_memory_kind=kind, last=last, data=self.data_stats.as_dict(),
                           run_dir=cfg.out, nonfinite_skipped=self.nonfinite_skipped, memory_plan=self.memory_plan,
                           train_s=self.budget.elapsed())


def train(task: nn.Module, batches: Batches, cfg: TrainConfig, evaluator: Evaluator | None = None,
          before_run: Callable[[], None] | None = None) -> TrainResult:
    """Train `task` on micro-batches from `batches(start)` as `cfg` says; resumes and checkpoints on the way;
    `evaluator(task, step)` runs every `cfg.eval_every` steps (see leanvl.train.evaluate).

    Nothing is written into the run directory before the config validated and the checkpoint to resume from
    loaded; `before_run` (main process only) then writes what the caller keeps beside the run (e.g. the VLM spec).
    The run directory is locked for the run's life; SIGTERM/SIGUSR1 save a checkpoint and raise `Preempted`."""
    seed_everything(cfg.seed)
    cfg.validate()
    dist.init(resolve_device(cfg.device))
    lock = trainer = None
    try:
        check_run_dir(cfg)  # every rank looks before rank 0 writes
        check_same_run(cfg)
        lock = RunLock(cfg.out).acquire() if dist.is_main() else None
        dist.barrier()
        trainer = Trainer(task, batches, cfg, evaluator)
        trainer.restore()  # reads only: a failed resume leaves the run as it was
        if dist.is_main():
            remove_leftovers(cfg.out)
            init_run_dir(cfg)
            if before_run is not None:
                before_run()
        dist.barrier()
        started = time.time()
        with PreemptionFlag() as flag:
            result = trainer.run(flag)
        result.wall_s = result.wall_s or time.time() - started
        return result
    finally:
        if trainer is not None and hasattr(trainer, "report"):  # flush TensorBoard, finish W&B, also on errors
            trainer.report.close()
        if lock is not None:
            lock.release()
        dist.shutdown()  # the process group ends with the run, also on error
