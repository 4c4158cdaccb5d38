"""SuperClass's soft targets from sparse labels: L1-normalised weights per caption, and their entropy."""
from __future__ import annotations

import torch


def soft_targets(weights: torch.Tensor, rows: torch.Tensor, batch: int,
                 dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(target per label entry, which of the `batch` rows have a target, mean target entropy over those rows),
    computed in `dtype`; `rows` gives the row of every entry of `weights`."""
    w = weights.to(dtype)
    row_sum = torch.zeros(batch, dtype=dtype, device=w.device).index_add_(0, rows, w)
    valid = row_sum > 0
    target = w / row_sum.clamp_min(torch.finfo(dtype).tiny)[rows]
    plogp = torch.where(target > 0, target * target.clamp_min(1e-30).log(), torch.zeros_like(target))
    ent_row = torch.zeros(batch, dtype=dtype, device=w.device).index_add_(0, rows, -plogp)
    return target, valid, (ent_row * valid).sum() / valid.sum().clamp_min(1)
