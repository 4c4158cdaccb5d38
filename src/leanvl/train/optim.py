"""AdamW with the usual decay split, and the cosine-with-linear-warmup schedule as a pure function of the step."""
from __future__ import annotations

import math

import torch
from torch import nn

from leanvl.train.config import TrainConfig


def param_groups(model: nn.Module, weight_decay: float, swap: dict[int, nn.Parameter] | None = None) -> list[dict]:
    """Trainable params split into decayed (matrices, kernels) and not decayed (biases, norm gains, scalars);
    `swap` replaces a parameter (by id) with the tensor the optimizer should step instead (fp32 masters)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        is_gain = p.ndim <= 1 or name.endswith(".bias") or "norm" in name.lower() or "logit_scale" in name
        (no_decay if is_gain else decay).append(swap.get(id(p), p) if swap else p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, cfg: TrainConfig,
                   swap: dict[int, nn.Parameter] | None = None) -> torch.optim.AdamW:
    """Fused AdamW (CUDA and CPU) over the trainable parameters, or their `swap` stand-ins; fused because it takes
    the trainer's device-side skip flag as `found_inf` (leanvl.train.step.guarded_step)."""
    groups = param_groups(model, cfg.weight_decay, swap)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, fused=True)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate for optimizer step `step` (0-based): linear warmup, then cosine to min_lr."""
    if cfg.warmup and step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    span = max(1, cfg.steps - cfg.warmup)
    progress = min(1.0, (step - cfg.warmup) / span)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1.0 + math.cos(math.pi * progress))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr
