"""FSDP2 (`--fsdp`): torch's `fully_shard` per block on a 1-D device mesh, with the `--precision` mode mapped onto
FSDP's `MixedPrecisionPolicy`, plus activation checkpointing that works with and without it.

Units: every element of a `blocks` / `resblocks` / `layers` / `h` / `stages` list (timm and leanvl ViTs, open_clip
text towers, HF decoders) and every module whose class a HF model names in `_no_split_modules`; then the root.
Frozen parts (a locked encoder, a frozen LLM) are sharded the same way (their params just get no gradients).

| --precision  | sharded params (and optimizer) | compute (all-gathered) | gradient reduce-scatter |
|--------------|--------------------------------|------------------------|-------------------------|
| fp32         | fp32                           | fp32                   | fp32                    |
| amp_bf16     | fp32                           | fp32 + autocast bf16   | fp32                    |
| bf16         | bf16                           | bf16                   | bf16                    |
| bf16_master  | fp32 (= the masters)           | bf16 (param_dtype)     | fp32 (reduce_dtype)     |
"""
from __future__ import annotations

import torch
from torch import nn

from leanvl.train import distributed as dist
from leanvl.train.precision import to_bf16

UNIT_LISTS = ("blocks", "resblocks", "layers", "h", "stages")


def ensure_process_group(device: torch.device) -> None:
    """A process group for FSDP: torchrun's, or a single-process one (world size 1) when not launched by it."""
    import torch.distributed as tdist

    dist.init(device)
    if not tdist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        tdist.init_process_group(backend, store=tdist.HashStore(), rank=0, world_size=1)


def mp_policy(precision: str):
    """The MixedPrecisionPolicy of a `--precision` mode (see the module table)."""
    from torch.distributed.fsdp import MixedPrecisionPolicy

    if precision == "bf16_master":
        return MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    return MixedPrecisionPolicy()  # fp32 / amp_bf16: fp32 throughout; bf16: the params already are bf16


def shard_units(task: nn.Module) -> list[nn.Module]:
    """The modules to shard separately, deepest first (fully_shard goes bottom-up)."""
    split = set()
    for mod in task.modules():
        split.update(getattr(mod, "_no_split_modules", None) or [])
    found: dict[int, tuple[int, nn.Module]] = {}
    for name, mod in task.named_modules():
        depth = name.count(".") + 1 if name else 0
        if type(mod).__name__ in split and mod is not task:
            found[id(mod)] = (depth, mod)
        for attr in UNIT_LISTS:
            group = getattr(mod, attr, None) if isinstance(mod, nn.Module) else None
            if isinstance(group, (nn.ModuleList, nn.Sequential)) and len(group) > 1:
                for child in group:
                    if any(p.numel() for p in child.parameters()):
                        found[id(child)] = (depth + 2, child)
    return [m for _, m in sorted(found.values(), key=lambda dm: -dm[0])]


def shard_task(task: nn.Module, precision: str, device: torch.device) -> nn.Module:
    """Shard `task` (already on `device`) in place per block, then at the root; returns it (now an FSDPModule)."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    ensure_process_group(device)
    if precision == "bf16":
        to_bf16(task)
    elif precision == "bf16_master":  # buffers compute in bf16 as without FSDP; params stay fp32 (the masters)
        to_bf16(task, params=False)
    mesh = init_device_mesh(device.type, (dist.world_size(),))
    policy = mp_policy(precision)
    for unit in shard_units(task):
        fully_shard(unit, mesh=mesh, mp_policy=policy)
    fully_shard(task, mesh=mesh, mp_policy=policy)
    return task


def enable_activation_checkpointing(task: nn.Module) -> None:
    """Recompute activations in backward: the encoder's own switch and HF LLMs' `gradient_checkpointing_enable`."""
    encoder = getattr(task, "encoder", None)
    if encoder is not None and hasattr(encoder, "set_grad_checkpointing"):
        encoder.set_grad_checkpointing(True)
    llm = getattr(task, "llm", None)
    if llm is not None and hasattr(llm, "gradient_checkpointing_enable"):
        llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if hasattr(llm, "config"):
            llm.config.use_cache = False


def local_value(t: torch.Tensor) -> torch.Tensor:
    """A DTensor's full value (e.g. the grad norm clip_grad_norm_ returns under FSDP); a plain tensor as is."""
    from torch.distributed.tensor import DTensor

    return t.full_tensor() if isinstance(t, DTensor) else t
