"""k-shot classification: logistic regression on k frozen pooled features per class, mean and std over seeds."""
from __future__ import annotations

import os
import statistics
from typing import Any

import torch
from torch import nn

from leanvl.errors import LeanvlError
from leanvl.eval.linear import accuracy, fit_logistic, single_thread

# One fixed penalty (on standardised features): a held-out split of k examples per class is too small to choose
# one reliably, and near-zero penalties on (nearly) separable shots only make L-BFGS run long.
FEWSHOT_L2 = 1e-2


def kshot_indices(labels: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """Indices of `k` random examples of every class in `labels` (LeanvlError when a class has fewer)."""
    if k < 1:
        raise LeanvlError(f"--k must be >= 1, got {k}")
    gen = torch.Generator().manual_seed(seed)
    chosen = []
    for c in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == c).flatten()
        if len(idx) < k:
            raise LeanvlError(f"--k {k} is larger than the smallest class ({len(idx)} examples); lower --k or "
                              f"give more training examples")
        chosen.append(idx[torch.randperm(len(idx), generator=gen)[:k]])
    return torch.cat(chosen)


def fewshot_scores(xtr: torch.Tensor, ytr: torch.Tensor, xte: torch.Tensor, yte: torch.Tensor, k: int = 10,
                   seeds: int = 3, l2: float = FEWSHOT_L2) -> dict[str, Any]:
    """Top-1 on (xte, yte) of logistic regressions fit on k examples per class (penalty `l2`), for seeds
    0..seeds-1: mean, sample std, per seed."""
    if seeds < 1:
        raise LeanvlError(f"--seeds must be >= 1, got {seeds}")
    scores = []
    with single_thread():
        for seed in range(seeds):
            idx = kshot_indices(ytr, k, seed)
            probe = fit_logistic(xtr[idx], ytr[idx], l2, num_classes=int(ytr.max()) + 1)
            scores.append(accuracy(probe, xte, yte))
    std = statistics.stdev(scores) if len(scores) > 1 else 0.0
    return {"mean": statistics.fmean(scores), "std": std, "per_seed": scores}


def _labels(attrs: list[dict], keep, label, index: dict[str, int] | None = None):
    rows = [i for i, a in enumerate(attrs) if keep(a) and (index is None or label(a) in index)]
    if index is None:
        index = {c: j for j, c in enumerate(sorted({label(attrs[i]) for i in rows}))}
    return rows, torch.tensor([index[label(attrs[i])] for i in rows], dtype=torch.long), index


def fewshot_synthetic(encoder: nn.Module, image_size: int, k: int = 10, seeds: int = 3, n_train: int = 2000,
                      n_test: int = 1000, seed: int = 0, device: str = "cpu") -> dict[str, Any]:
    """k-shot top-1 per synthetic task (shots drawn from split 'val', scored on 'test'); `top1` = mean of means."""
    from leanvl.eval.probe import SYNTHETIC_TASKS, _batched, extract_features, synthetic_split

    feats = {}
    for split, n in (("val", n_train), ("test", n_test)):
        images, attrs = synthetic_split(split, n, image_size, seed)
        feats[split] = (extract_features(encoder, _batched(images), device), attrs)
    (xtr, atr), (xte, ate) = feats["val"], feats["test"]
    out: dict[str, Any] = {"k": k, "seeds": seeds}
    for task, (keep, label) in SYNTHETIC_TASKS.items():
        rtr, ytr, index = _labels(atr, keep, label)
        rte, yte, _ = _labels(ate, keep, label, index)
        out[task] = fewshot_scores(xtr[rtr], ytr, xte[rte], yte, k=k, seeds=seeds)
    tasks = list(SYNTHETIC_TASKS)
    out["top1"] = statistics.fmean(out[t]["mean"] for t in tasks)
    out["top1_std"] = statistics.fmean(out[t]["std"] for t in tasks)
    return out


def fewshot_imagefolder(encoder: nn.Module, root: str, image_size: int, k: int = 10, seeds: int = 3,
                        device: str = "cpu") -> dict[str, Any]:
    """k-shot top-1 on an ImageFolder root with `train/` (shots) and `val/` (scored)."""
    from torchvision.datasets import ImageFolder

    from leanvl.data.transforms import EvalTransform
    from leanvl.eval.probe import extract_features

    for part in ("train", "val"):
        if not os.path.isdir(os.path.join(root, part)):
            raise LeanvlError(f"--data {root}: expected an ImageFolder root with train/ and val/ (missing {part}/)")
    sets = {p: ImageFolder(os.path.join(root, p), transform=EvalTransform(image_size)) for p in ("train", "val")}
    if sets["train"].classes != sets["val"].classes:
        raise LeanvlError(f"--data {root}: train/ and val/ have different class folders")
    xy = {}
    for part, ds in sets.items():
        loader = torch.utils.data.DataLoader(ds, batch_size=128)
        xy[part] = (extract_features(encoder, (x for x, _ in loader), device), torch.tensor(ds.targets))
    result = fewshot_scores(*xy["train"], *xy["val"], k=k, seeds=seeds)
    return {"k": k, "seeds": seeds, "top1": result["mean"], "top1_std": result["std"],
            "per_seed": result["per_seed"], "classes": len(sets["train"].classes)}
