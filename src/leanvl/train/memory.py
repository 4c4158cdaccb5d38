"""The memory plan printed at start-up: per-rank bytes of parameters, gradients and optimizer state, and the
expected peak (activations excluded), for the chosen precision, FSDP and LoRA (= which params train) settings."""
from __future__ import annotations

from typing import Any

from torch import nn

MB = 2**20


def _numel(module: nn.Module) -> tuple[int, int]:
    """(all params, trainable params), shared tensors counted once, global (unsharded) sizes."""
    seen, total, trainable = set(), 0, 0
    for p in module.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return total, trainable


def plan_bytes(total: int, trainable: int, precision: str, world: int, fsdp: bool,
               largest_unit: int = 0) -> dict[str, float]:
    """Bytes per rank; FSDP divides the persistent state by `world` and adds two all-gathered units (compute
    dtype, current + prefetched)."""
    half = precision in ("bf16", "bf16_master")
    if precision == "bf16_master" and not fsdp:  # bf16 weights + fp32 masters; bf16 grads + fp32 master grads
        params, grads = total * 2 + trainable * 4, trainable * (2 + 4)
    elif precision == "bf16_master":  # fp32 sharded masters, fp32 sharded grads
        params, grads = total * 4, trainable * 4
    else:
        width = 2 if precision == "bf16" else 4
        params, grads = total * width, trainable * width
    optim = trainable * (4 if precision == "bf16" else 8)  # AdamW: two moments in the params' dtype
    share = world if fsdp else 1
    out = {"params": params / share, "grads": grads / share, "optimizer": optim / share}
    out["gathered"] = 2 * largest_unit * (2 if half else 4) if fsdp and world > 1 else 0.0
    out["peak"] = sum(out.values())
    return out


def memory_plan(task: nn.Module, cfg: Any, world: int, main: bool) -> dict[str, Any]:
    """The plan for `task` as the trainer set it up; rank 0 prints it. Returns it (MB) for result.json."""
    total, trainable = _numel(task)
    unit = 0
    if cfg.fsdp:
        from leanvl.train.fsdp import shard_units

        unit = max((sum(p.numel() for p in u.parameters()) for u in shard_units(task)), default=0)
    b = plan_bytes(total, trainable, cfg.precision, world, cfg.fsdp, unit)
    plan = {"params": total, "trainable_params": trainable, "precision": cfg.precision, "fsdp": bool(cfg.fsdp),
            "world_size": world, **{f"{k}_mb": round(v / MB, 2) for k, v in b.items()}}
    if main:
        print(f"leanvl: memory plan per rank ({cfg.precision}, {'FSDP x' + str(world) if cfg.fsdp else 'replicated'}, "
              f"{trainable:,} of {total:,} params train): params {plan['params_mb']:.1f} MB, grads "
              f"{plan['grads_mb']:.1f} MB, optimizer {plan['optimizer_mb']:.1f} MB, expected peak "
              f"{plan['peak_mb']:.1f} MB + activations")
    return plan
