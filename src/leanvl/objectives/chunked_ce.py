"""Classifier head + soft-target cross-entropy fused and chunked: no B x V tensor is kept for backward.

Loss (same as `superclass.softmax_ce_sparse` on `h @ W^T + b`): with normalised targets t at (row r, id c),

    loss = 1/n * sum_(r,c) t_rc * (lse_r - z_rc),   lse_r = logsumexp_j z_rj,   z_rc = h_r . W_c + b_c

so the forward needs only each row's log-sum-exp (computed `chunk` rows at a time) and the label logits (gathered
dot products). The backward recomputes each chunk's logits: dz = (p_r * [r valid] - t_r) / n, with p_r = exp(z_r -
lse_r), giving dh, dW, db chunk by chunk plus the sparse -t part. Peak extra memory: one chunk x V block instead of
B x V logits, their fp32 log-softmax and both gradients. Cost: the head matmul runs once more (recompute).
"""
from __future__ import annotations

import torch
from torch import nn

from leanvl.objectives.targets import soft_targets


class _ChunkedHeadCE(torch.autograd.Function):
    """autograd for (h, weight, bias) -> loss; see the module docstring."""

    @staticmethod
    def forward(ctx, h, weight, bias, rows, ids, target, n_valid, chunk):  # type: ignore[override]
        dt = _compute_dtype(h)
        hc, wc, bc, acc = h.to(dt), weight.to(dt), bias.to(dt), target.dtype
        lse = torch.empty(h.shape[0], dtype=acc, device=h.device)
        z = torch.zeros_like(target)
        for s in range(0, h.shape[0], chunk):
            logits = torch.addmm(bc, hc[s : s + chunk], wc.t()).to(acc)
            lse[s : s + chunk] = logits.logsumexp(-1)
            local, inside = _in_chunk(rows, s, logits.shape[0])
            z += torch.where(inside, logits[local, ids], 0.0)
        loss = (target * (lse[rows] - z)).sum() / n_valid
        ctx.save_for_backward(h, weight, bias, rows, ids, target, lse, n_valid)
        ctx.chunk, ctx.dt = chunk, dt
        return loss

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        h, weight, bias, rows, ids, target, lse, n_valid = ctx.saved_tensors
        dt, chunk = ctx.dt, ctx.chunk
        hc, wc, bc, acc = h.to(dt), weight.to(dt), bias.to(dt), target.dtype
        scale = grad.to(acc) / n_valid
        valid = torch.zeros(h.shape[0], dtype=acc, device=h.device).index_add_(0, rows, target) > 0
        dh = torch.empty(h.shape, dtype=acc, device=h.device)
        dw = torch.zeros(weight.shape, dtype=acc, device=h.device)
        db = torch.zeros(bias.shape, dtype=acc, device=h.device)
        for s in range(0, h.shape[0], chunk):
            dz = torch.addmm(bc, hc[s : s + chunk], wc.t()).to(acc).sub_(lse[s : s + chunk, None]).exp_()
            dz.mul_(valid[s : s + chunk, None].to(acc))  # softmax, on rows that have a target
            local, inside = _in_chunk(rows, s, dz.shape[0])
            dz.index_put_((local, ids), torch.where(inside, -target, 0.0), accumulate=True)
            dz.mul_(scale)
            dh[s : s + chunk] = (dz.to(dt) @ wc).to(acc)
            if dt == acc:
                dw.addmm_(dz.t(), hc[s : s + chunk])
            else:  # bf16 product, accumulated in fp32
                dw += dz.t().to(dt) @ hc[s : s + chunk]
            db += dz.sum(0)
        return dh.to(h.dtype), dw.to(weight.dtype), db.to(bias.dtype), None, None, None, None, None


def _in_chunk(rows: torch.Tensor, start: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row index of every label entry inside the chunk [start, start + size) (clamped), and which entries are in it."""
    local = rows - start
    inside = (local >= 0) & (local < size)
    return local.clamp(0, size - 1), inside


def _compute_dtype(h: torch.Tensor) -> torch.dtype:
    """The matmul dtype: autocast's when it is on for h's device, else h's own."""
    if torch.is_autocast_enabled(h.device.type):
        return torch.get_autocast_dtype(h.device.type)
    return h.dtype


def chunked_head_ce(h: torch.Tensor, fc: nn.Linear, ids: torch.Tensor, rows: torch.Tensor, weights: torch.Tensor,
                    chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, target entropy) of `softmax_ce_sparse(fc(h), ids, rows, weights)`, without B x V activations."""
    target, valid, entropy = soft_targets(weights, rows, h.shape[0], torch.float64)
    acc = torch.float64 if h.dtype == torch.float64 else torch.float32  # accumulation dtype (float64 for checks)
    n_valid = valid.sum().clamp_min(1).to(acc)
    loss = _ChunkedHeadCE.apply(h, fc.weight, fc.bias, rows, ids, target.to(acc), n_valid, chunk)
    return loss, entropy.to(acc)
