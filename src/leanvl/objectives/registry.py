"""Registry of training objectives: name -> builder(cfg) returning an nn.Module with forward(batch) -> dict."""
from __future__ import annotations

from typing import Any, Callable

from torch import nn

from leanvl.errors import LeanvlError

OBJECTIVES: dict[str, Callable[..., nn.Module]] = {}


def register_objective(name: str) -> Callable:
    """Decorator: register `builder(cfg) -> nn.Module` under `name` (cfg: a PretrainConfig)."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        OBJECTIVES[name] = fn
        return fn

    return wrap


def build_objective(name: str, cfg: Any) -> nn.Module:
    """Instantiate the objective `name` for the pre-training config `cfg`."""
    if name not in OBJECTIVES:
        raise LeanvlError(f"unknown objective '{name}' (choose from {', '.join(sorted(OBJECTIVES))})")
    return OBJECTIVES[name](cfg)
