"""Registry of training objectives: name -> builder(encoder, options, world) returning the task nn.Module."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from leanvl.objective_options import OBJECTIVE_OPTIONS
from leanvl.registry import Registry

OBJECTIVES: Registry[Callable[..., nn.Module]] = Registry("objective", flag="--objective")


@dataclass(frozen=True)
class World:
    """This process's place in a data-parallel run, handed to objectives by the wiring (never read from train/)."""

    rank: int = 0
    size: int = 1
    all_reduce_sum: Callable[[torch.Tensor], torch.Tensor] | None = None  # sums a tensor over ranks in place


def register_objective(name: str, options: type | None = None) -> Callable:
    """Decorator: register `builder(encoder, options, world) -> nn.Module` under `name` (and its options class)."""
    if options is not None:
        OBJECTIVE_OPTIONS.register(name, options)
    return OBJECTIVES.register(name)


def build_objective(name: str, encoder: nn.Module, cfg: Any = None, world: World = World()) -> nn.Module:
    """The objective `name` around the built `encoder`; `cfg` is its options (None: the defaults)."""
    builder = OBJECTIVES.get(name)
    if cfg is None:
        cfg = OBJECTIVE_OPTIONS.create(name)
    return builder(encoder, cfg, world)
