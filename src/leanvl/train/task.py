"""What the trainer may ask of a task beyond `forward(batch) -> {"loss", ...}`: a small declared protocol.

A task (any nn.Module) opts in by defining the method; the trainer checks with `isinstance`, never `hasattr`.
Rank, world size and count reducers reach a task through its constructor (the wiring's job), not from here.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import nn


@runtime_checkable
class GradCheckpointing(Protocol):
    """A task that can recompute activations in backward (`--grad-checkpointing`)."""

    def set_grad_checkpointing(self, enable: bool) -> None: ...


def apply_task_options(task: nn.Module, *, grad_checkpointing: bool) -> None:
    """Switch on what the run asks for that the task supports (tasks without the hook train as they are)."""
    if grad_checkpointing and isinstance(task, GradCheckpointing):
        task.set_grad_checkpointing(True)


@runtime_checkable
class OptimizerStepHook(Protocol):
    """A task with state to commit once per optimizer step (SuperClass's online IDF counts): called on every rank,
    after every optimizer step (a skipped non-finite one too: the skip is a device flag), so it may run collectives."""

    def on_optimizer_step(self) -> None: ...


def after_optimizer_step(task: nn.Module) -> None:
    """Call the task's `on_optimizer_step` when it has one."""
    if isinstance(task, OptimizerStepHook):
        task.on_optimizer_step()
