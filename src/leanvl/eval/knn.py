"""Weighted k-NN classification on frozen features (cosine similarity, votes weighted exp(sim / T), as in DINO)."""
from __future__ import annotations

import torch
from torch import nn


def knn_accuracy(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                 k: int = 20, temperature: float = 0.07) -> float:
    """Top-1 accuracy of a k-NN classifier fit on (train_x, train_y) and scored on (test_x, test_y)."""
    a = nn.functional.normalize(train_x.float(), dim=-1)
    b = nn.functional.normalize(test_x.float(), dim=-1)
    k = min(k, len(a))
    sims, idx = (b @ a.T).topk(k, dim=1)
    classes = int(max(train_y.max(), test_y.max())) + 1
    votes = torch.zeros(len(b), classes).scatter_add_(1, train_y[idx], (sims / temperature).exp())
    return float((votes.argmax(1) == test_y).double().mean())
