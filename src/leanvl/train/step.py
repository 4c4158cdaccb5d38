"""One optimizer step that never reads a value back to the host (issue #17, "no host sync in the step").

Contract (docs/CONTRACTS.md "Trainer"): a forward-backward function returns `(logs, n)` where `logs` maps a name to a
DETACHED 0-dim float32 tensor on the training device (the sample-weighted mean over the step's micro-batches) and `n`
is the number of samples. Nothing becomes a Python number inside a step: the finiteness decision is a device tensor
handed to fused AdamW as `found_inf` (as `torch.amp.GradScaler` does), which skips the update and the step count on the
device; under DDP/FSDP the flag is all-reduced on the device. The trainer reads everything once per log step
(`to_floats`), where `NonFiniteWindow.flush` also counts the skipped steps (`--nan-policy stop` raises there).
"""
from __future__ import annotations

import contextlib
from typing import Callable

import torch
from torch import nn

from leanvl.errors import LeanvlError
from leanvl.train import distributed as dist

Logs = dict[str, torch.Tensor]


def batch_size_of(batch: dict) -> int:
    """Number of samples in a batch dict."""
    if "index" in batch:
        return len(batch["index"])
    return next(v.shape[0] for v in batch.values() if isinstance(v, torch.Tensor))


def to_device(batch: dict, device: torch.device, float_dtype: torch.dtype | None) -> dict:
    """Move the batch's tensors to `device` (floating tensors cast to `float_dtype` when given)."""
    out = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            value = value.to(device, non_blocking=True)
            if float_dtype is not None and value.is_floating_point():
                value = value.to(float_dtype)
        out[key] = value
    return out


def add_scalars(logs: Logs, out: dict, weight: float, device: torch.device) -> None:
    """Add `weight` x every one-element tensor of a task's output to `logs` (detached, float32, on `device`)."""
    for key, value in out.items():
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            v = value.detach().reshape(()).to(device=device, dtype=torch.float32, non_blocking=True)
            v = v if weight == 1.0 else v * weight
            logs[key] = logs[key] + v if key in logs else v


def forward_backward(model: nn.Module, micro: list[dict], device: torch.device, float_dtype: torch.dtype | None,
                     autocast: Callable[[], contextlib.AbstractContextManager]) -> tuple[Logs, int]:
    """Accumulate gradients over the micro-batches, each weighted by its share of the step's samples; DDP reduces
    gradients on the last non-empty one only."""
    sizes = [batch_size_of(b) for b in micro]
    total = sum(sizes)
    logs: Logs = {}
    live = [i for i, n in enumerate(sizes) if n > 0]
    ddp = isinstance(model, nn.parallel.DistributedDataParallel)
    for j, i in enumerate(live):
        batch = to_device(micro[i], device, float_dtype)
        sync = j == len(live) - 1 or not ddp
        with (contextlib.nullcontext() if sync else model.no_sync()), autocast():
            out = model(batch)
            loss = out["loss"].float()
            (loss if sizes[i] == total else loss * (sizes[i] / total)).backward()
        add_scalars(logs, out, sizes[i] / total, device)
    return logs, total


def skip_flag(logs: Logs, norm: torch.Tensor, world: int, device: torch.device) -> torch.Tensor:
    """0-dim float32 on `device`: 1.0 when the loss or the gradient norm is non-finite on ANY rank, else 0.0."""
    loss = logs.get("loss")
    if loss is None:  # no sample in the step: nothing to step on
        return torch.ones((), device=device)
    # loss + norm is finite iff both are (or the sum overflows float32, a broken step anyway): 3 small kernels
    bad = torch.isfinite(loss + norm.detach()).logical_not_().float()
    if world > 1:  # on the device, no .item(): every rank gets the same decision
        bad = (dist.all_reduce_sum(bad.reshape(1)) > 0).float().reshape(())
    return bad


def guarded_step(optimizer: torch.optim.Optimizer, skip: torch.Tensor) -> None:
    """`optimizer.step()` that leaves parameters, moments and step count untouched where `skip` is 1 (fused AdamW
    reads `found_inf` on the device, as under GradScaler; the foreach/for-loop AdamW refuses it loudly)."""
    optimizer.found_inf = skip
    optimizer.step()


def mean_over_ranks(logs: Logs, world: int) -> Logs:
    """The logged scalars averaged over ranks with one device all-reduce (identity for one process)."""
    if world == 1 or not logs:
        return logs
    keys = sorted(logs)
    t = torch.stack([logs[k].float() for k in keys])
    dist.all_reduce_sum(t)
    return dict(zip(keys, (t / world).unbind()))


def to_floats(logs: Logs) -> dict[str, float]:
    """The logs as Python floats: ONE read from the device (log steps only)."""
    if not logs:
        return {}
    keys = list(logs)
    return dict(zip(keys, torch.stack([logs[k].float().reshape(()) for k in keys]).tolist()))


class NonFiniteWindow:
    """Skipped (non-finite) steps counted on the device since the last flush; `flush` reads the count (one sync)."""

    def __init__(self, device: torch.device, policy: str) -> None:
        self.policy = policy
        self.count = torch.zeros((), device=device)
        self.since = 0  # last step already flushed
        self.unlogged = 0  # skipped steps flushed but not yet shown in a metrics line

    def add(self, skip: torch.Tensor) -> None:
        self.count.add_(skip)

    def flush(self, step: int) -> int:
        """Skipped steps in (last flush, `step`]; under `--nan-policy stop` a LeanvlError when there was one."""
        n = int(self.count.item())
        self.count.zero_()
        first, self.since = self.since + 1, step
        if n and self.policy == "stop":
            where = f"at step {step}" if first == step else f"within steps {first}-{step}"
            raise LeanvlError(f"non-finite loss or gradient {where} (checked at log and checkpoint steps); stopped "
                              f"(last good checkpoint kept; --nan-policy skip skips such steps)")
        self.unlogged += n
        return n

    def take_unlogged(self) -> int:
        n, self.unlogged = self.unlogged, 0
        return n
