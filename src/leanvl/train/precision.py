"""bf16 weights with fp32 master weights: the model computes in bf16, the optimizer steps fp32 copies.

`--precision bf16_master`. Autocast (`amp_bf16`) keeps fp32 weights and casts them to bf16 inside every matmul,
forward and backward; pure `bf16` drops the casts but rounds every update to bf16 (updates below 2^-8 of a weight
are lost). Here the casts are gone AND the update is exact: after backward the bf16 gradients are copied into the
fp32 masters, clipping and AdamW run on the masters (AdamW state is fp32 too), and the new masters are copied down
into the bf16 weights. Checkpoints store the fp32 masters, so resume is bit-exact and exports keep full precision.
With `--accum-freq` > 1 the micro-batches' gradients are summed in bf16 (in the parameters' `.grad`, where DDP
all-reduces them) before the copy up, as with FSDP's bf16 reduce dtype.
Measured on one H100 (benchmarks/RESULTS.md): ViT-B/16 SuperClass step +7.6% img/s over amp_bf16.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


class MasterWeights:
    """fp32 master copies of a model's trainable parameters; build it before `to_bf16` rounds the model."""

    def __init__(self, params: list[nn.Parameter]) -> None:
        self.params = params
        self.master = [nn.Parameter(p.detach().float().clone()) for p in params]

    def swap(self) -> dict[int, nn.Parameter]:
        """model parameter id -> its master, for building the optimizer's parameter groups."""
        return {id(p): m for p, m in zip(self.params, self.master)}

    def grads_up(self) -> None:
        """Copy the model's bf16 gradients into the masters' fp32 gradients (None stays None)."""
        dst, src = [], []
        for p, m in zip(self.params, self.master):
            if p.grad is None:
                m.grad = None
                continue
            if m.grad is None:
                m.grad = torch.empty_like(m)
            dst.append(m.grad)
            src.append(p.grad)
        if dst:
            torch._foreach_copy_(dst, src)
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def copy_down(self) -> None:
        """Round the masters into the model's bf16 weights."""
        torch._foreach_copy_([p.data for p in self.params], [m.data for m in self.master])

    @contextlib.contextmanager
    def fp32_view(self) -> Iterator[None]:
        """Inside: the model's parameters ARE the fp32 masters (to save or load a checkpoint); after: bf16 again,
        rounded from the (possibly just loaded) masters."""
        low = [p.data for p in self.params]
        for p, m in zip(self.params, self.master):
            p.data = m.data
        try:
            yield
        finally:
            for p, data in zip(self.params, low):
                p.data = data
            self.copy_down()


def to_bf16(module: nn.Module, params: bool = True) -> None:
    """Cast every parameter (unless `params=False`) and float32 buffer (e.g. BatchNorm running statistics) to bf16,
    in place; float64 buffers (exact counters such as SuperClass's IDF document frequencies) keep their precision."""
    for p in module.parameters() if params else ():
        p.data = p.data.to(torch.bfloat16)
    for mod in module.modules():
        for name, buf in mod._buffers.items():
            if buf is not None and buf.dtype == torch.float32:
                mod._buffers[name] = buf.to(torch.bfloat16)
