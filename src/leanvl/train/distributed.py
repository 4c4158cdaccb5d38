"""torch.distributed helpers: one process per device, launched by torchrun (gloo on CPU, nccl on GPU)."""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world_size() -> int:
    """Number of processes (1 when not launched by torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's global rank (0 when not distributed)."""
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """True on the process that writes checkpoints and logs."""
    return rank() == 0


def local_rank() -> int:
    """This process's rank on its node (torchrun's LOCAL_RANK; 0 when not distributed)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def local_cuda_device(index: int | None = None) -> torch.device:
    """`cuda:LOCAL_RANK` (or `cuda:index` when given), made this process's current CUDA device."""
    index = local_rank() if index is None else index
    count = torch.cuda.device_count()
    if index >= count:
        from leanvl.errors import LeanvlError

        raise LeanvlError(f"process with LOCAL_RANK {local_rank()} wants cuda:{index} but this node has {count} "
                          f"GPU(s); start at most {count} processes per node (torchrun --nproc_per_node)")
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def init(device: torch.device) -> None:
    """Join the process group torchrun set up (no-op for a single process)."""
    if world_size() > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum `t` over all ranks in place (no-op for a single process); returns t."""
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def barrier() -> None:
    """Wait for every rank (no-op for a single process)."""
    if dist.is_initialized():
        dist.barrier()



def shutdown() -> None:
    """Leave the process group (the trainer calls it when a run ends, also on error)."""
    if dist.is_initialized():
        dist.destroy_process_group()
