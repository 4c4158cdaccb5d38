"""The LLaVA projector from compressed visual tokens to the LLM's embedding width."""
from __future__ import annotations

import torch
from torch import nn


class Projector(nn.Module):
    """LLaVA's 2-layer MLP projector: Linear(in -> llm) - GELU - Linear(llm -> llm)."""

    def __init__(self, in_dim: int, llm_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, llm_dim), nn.GELU(), nn.Linear(llm_dim, llm_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
