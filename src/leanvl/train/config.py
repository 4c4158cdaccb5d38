"""Trainer configuration (shared by every task) as a dataclass; the CLI mirrors it one-to-one."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from leanvl.cliutil import opt
from leanvl.errors import LeanvlError

PRECISIONS = ("fp32", "bf16", "amp_bf16", "bf16_master")
BUDGET_CLOCKS = ("wall", "cpu")
NAN_POLICIES = ("stop", "skip")
MAX_BATCH = 2**20  # samples per micro-batch (and micro-batches per step)
MAX_WORKERS = 1024


@dataclass
class TrainConfig:
    """How to train: optimisation, precision, checkpointing, logging. Each field's `opt` help is its `--help`."""

    out: str = opt("", "run directory (checkpoints, metrics.jsonl, config.json)")
    steps: int = opt(100, "optimizer steps")
    batch_size: int = opt(32, "samples per micro-batch (per process)")
    accum_freq: int = opt(1, "micro-batches accumulated per optimizer step")
    lr: float = opt(5e-4, "peak learning rate")
    min_lr: float = opt(0.0, "learning rate at the end of the cosine schedule")
    warmup: int = opt(0, "linear warmup steps")
    weight_decay: float = opt(0.2, "AdamW weight decay (never on biases, norm gains, scalars)")
    beta1: float = opt(0.9, "AdamW beta1")
    beta2: float = opt(0.98, "AdamW beta2")
    eps: float = opt(1e-6, "AdamW epsilon")
    grad_clip: float = opt(1.0, "max global grad norm (0 disables clipping)")
    precision: str = opt("fp32", "fp32 | bf16 | amp_bf16 (autocast) | bf16_master (bf16 weights, fp32 masters)")
    grad_checkpointing: bool = opt(False, "recompute activations in backward to save memory")
    compile: bool = opt(False, "torch.compile the model (nn.Module.compile, keeps state-dict keys)")
    seed: int = opt(0, "seed for init, data order and augmentation")
    device: str = opt("auto", "auto | cpu | cuda | cuda:N")
    save_every: int = opt(0, "checkpoint every K steps (0: only at the end)")
    keep: int = opt(2, "keep the last K checkpoints")
    log_every: int = opt(10, "write a metrics line every K steps")
    resume: str = opt("", "latest | PATH to a checkpoint directory ('' starts fresh)")
    overwrite: bool = opt(False, "replace an existing run directory")
    num_workers: int = opt(0, "data-loading worker processes")
    max_bad_fraction: float = opt(0.1, "stop when more than this share of samples is undecodable/empty")
    nan_policy: str = opt("stop", "stop | skip: what a non-finite loss does")
    progress: bool = opt(True, "show a tqdm progress bar")
    extra: dict[str, Any] = opt(factory=dict, help="objective-specific settings saved with the run")
    eval_every: int = opt(0, "run the in-loop evaluation every N steps and after the last (0 = off)")
    log_sample_keys: bool = opt(False, "write RUN/samples.jsonl: the keys of every sample each step consumed")
    fsdp: bool = opt(False, "shard params, grads and optimizer state per block (FSDP2); DCP checkpoints")
    report_to: str = opt("", "also log to: tensorboard,wandb (comma-separated; W&B offline without an API key)")
    wandb_project: str = opt("leanvl", "W&B project of --report-to wandb")
    max_seconds: float = opt(0.0, "wall-clock training budget: stop at the step boundary nearest it, cosine lr over "
                                  "time (0 = off; evaluation and checkpoints not counted)")
    max_seconds_clock: str = opt("wall", "clock of --max-seconds: wall (elapsed time) | cpu (this process's CPU time, "
                                         "all its threads: a fairer budget on a shared CPU box; not GPU time)")

    def validate(self) -> "TrainConfig":
        """Raise LeanvlError naming the first bad value."""
        positive = {"steps": self.steps, "batch_size": self.batch_size, "accum_freq": self.accum_freq,
                    "keep": self.keep, "log_every": self.log_every}
        for name, value in positive.items():
            if value < 1:
                raise LeanvlError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
        for name, hi in (("batch_size", MAX_BATCH), ("accum_freq", MAX_BATCH), ("num_workers", MAX_WORKERS)):
            if getattr(self, name) > hi:  # larger only hangs building the first batch / forking workers
                raise LeanvlError(f"--{name.replace('_', '-')} must be <= {hi}, got {getattr(self, name)}")
        for name in ("lr", "min_lr", "weight_decay", "beta1", "beta2", "eps", "grad_clip", "max_bad_fraction"):
            if not math.isfinite(getattr(self, name)):
                raise LeanvlError(f"--{name.replace('_', '-')} must be a finite number, got {getattr(self, name)}")
        if self.lr <= 0:
            raise LeanvlError(f"--lr must be > 0, got {self.lr}")
        if not 0 <= self.min_lr <= self.lr:
            raise LeanvlError(f"--min-lr must be in [0, --lr], got {self.min_lr}")
        for name in ("beta1", "beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise LeanvlError(f"--{name} must be in [0, 1), got {getattr(self, name)}")
        if self.eps <= 0:
            raise LeanvlError(f"--eps must be > 0, got {self.eps}")
        for name in ("warmup", "save_every", "num_workers"):
            if getattr(self, name) < 0:
                raise LeanvlError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if self.grad_clip < 0 or self.weight_decay < 0:
            raise LeanvlError("--grad-clip and --weight-decay must be >= 0")
        if self.precision not in PRECISIONS:
            raise LeanvlError(f"--precision must be one of {', '.join(PRECISIONS)}, got '{self.precision}'")
        if self.nan_policy not in NAN_POLICIES:
            raise LeanvlError(f"--nan-policy must be one of {', '.join(NAN_POLICIES)}, got '{self.nan_policy}'")
        if not 0.0 <= self.max_bad_fraction <= 1.0:
            raise LeanvlError(f"--max-bad-fraction must be in [0, 1], got {self.max_bad_fraction}")
        if not 0 <= self.seed < 2**32:  # numpy's seed range
            raise LeanvlError(f"--seed must be in [0, 2**32), got {self.seed}")
        if self.eval_every < 0:
            raise LeanvlError(f"--eval-every must be >= 0, got {self.eval_every}")
        if not (math.isfinite(self.max_seconds) and self.max_seconds >= 0):
            raise LeanvlError(f"--max-seconds must be a finite number >= 0, got {self.max_seconds}")
        if self.max_seconds_clock not in BUDGET_CLOCKS:
            raise LeanvlError(f"--max-seconds-clock must be one of {', '.join(BUDGET_CLOCKS)}, "
                              f"got '{self.max_seconds_clock}'")
        from leanvl.train.report import parse_report_to

        parse_report_to(self.report_to)
        if not self.wandb_project or "/" in self.wandb_project:
            raise LeanvlError(f"--wandb-project must be a W&B project name (no '/'), got {self.wandb_project!r}")
        if not self.out:
            raise LeanvlError("--out is required")
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of every field."""
        return asdict(self)
