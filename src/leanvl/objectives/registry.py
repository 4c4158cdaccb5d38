"""Registry of training objectives: name -> builder(cfg) returning an nn.Module with forward(batch) -> dict."""
from __future__ import annotations

from typing import Any, Callable

from torch import nn

from leanvl.registry import Registry

OBJECTIVES: Registry[Callable[..., nn.Module]] = Registry("objective", flag="--objective")


def register_objective(name: str) -> Callable:
    """Decorator: register `builder(cfg) -> nn.Module` under `name` (cfg: a PretrainConfig)."""
    return OBJECTIVES.register(name)


def build_objective(name: str, cfg: Any) -> nn.Module:
    """Instantiate the objective `name` for the pre-training config `cfg`."""
    return OBJECTIVES.create(name, cfg)
