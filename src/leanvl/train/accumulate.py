"""Feature-cache gradient accumulation for tasks whose loss couples the samples of a batch (CLIP, SigLIP).

Plain accumulation scores each micro-batch against its own negatives only. A task that declares the
`FeatureCacheTask` protocol gets open_clip's scheme instead: a no-grad pass caches the features of every
micro-batch, then each micro-batch runs again with grad and back-propagates the loss of the FULL step's features
(its own live, the others cached), so the step's gradient equals the one of a single batch of all samples.
Shared 0-dim features (logit scale, bias) are live only in the last pass, so their gradient is counted once.
Calls go through the (DDP-wrapped) model; gradients are synchronised only on the last backward.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Protocol, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class FeatureCacheTask(Protocol):
    """`forward(batch, features_only=True)` -> features: per-sample tensors (dim 0 = samples) and shared 0-dim
    tensors; `loss_from_features(features)` -> {"loss", other scalars} of any concatenation of them."""

    def loss_from_features(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]: ...


def supports_feature_cache(task: nn.Module) -> bool:
    """Whether `--accum-freq` accumulates `task` by caching features (it declares FeatureCacheTask)."""
    return isinstance(task, FeatureCacheTask)


def combine(cached: list[dict[str, torch.Tensor]], j: int, live: dict[str, torch.Tensor],
            last: bool) -> dict[str, torch.Tensor]:
    """The full step's features: micro-batch `j` live, the others cached; shared scalars live only when `last`."""
    out = {}
    for key, value in live.items():
        if value.ndim == 0:
            out[key] = value if last else cached[j][key]
        else:
            out[key] = torch.cat([value if i == j else c[key] for i, c in enumerate(cached)])
    return out


def cached_forward_backward(model: nn.Module, task: FeatureCacheTask, micro: list[dict],
                            move: Callable[[dict], dict], autocast: Callable[[], contextlib.AbstractContextManager]
                            ) -> tuple[dict[str, torch.Tensor], int]:
    """Accumulate the gradient of the full step's loss over the host micro-batches `micro` (`move` puts one on the
    device): (the loss dict's scalars as detached 0-dim device tensors, samples in the step)."""
    batches = [move(b) for b in micro if len(b["caption"])]
    with torch.no_grad(), autocast():
        cached = [{k: v.detach() for k, v in model(b, features_only=True).items()} for b in batches]
    ddp = isinstance(model, nn.parallel.DistributedDataParallel)
    out: dict[str, torch.Tensor] = {}
    for j, batch in enumerate(batches):
        last = j == len(batches) - 1
        with (model.no_sync() if ddp and not last else contextlib.nullcontext()), autocast():
            feats = combine(cached, j, model(batch, features_only=True), last)
            out = task.loss_from_features(feats)
            out["loss"].float().backward()
    logs = {k: v.detach().reshape(()).float() for k, v in out.items() if isinstance(v, torch.Tensor) and v.numel() == 1}
    return logs, sum(len(c["image"]) for c in cached)
