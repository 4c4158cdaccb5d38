"""Atomic, pickle-free checkpoints: one directory per step, written under a temp name and renamed into place.

Layout of `RUN/checkpoints/step-00000100/`: model.safetensors (all params and buffers), optim.safetensors (optimizer
tensors and RNG states), state.json (step, optimizer hyper-parameters, Python/NumPy RNG, data position, extras).
"""
from __future__ import annotations

import json
import os
import random
import re
import shutil
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, load_model, save_file, save_model

from leanvl.errors import LeanvlError

CKPT_DIR = "checkpoints"
_NAME = re.compile(r"^step-(\d{8})$")


def checkpoint_dirs(run_dir: str) -> list[str]:
    """Complete checkpoints of a run, oldest first (temp dirs of interrupted writes are ignored)."""
    root = os.path.join(run_dir, CKPT_DIR)
    if not os.path.isdir(root):
        return []
    names = sorted(n for n in os.listdir(root) if _NAME.match(n)
                   and os.path.isfile(os.path.join(root, n, "state.json")))
    return [os.path.join(root, n) for n in names]


def resolve_resume(resume: str, run_dir: str) -> str | None:
    """Checkpoint directory for `--resume latest|PATH`; None when 'latest' finds none (start fresh)."""
    if not resume:
        return None
    if resume == "latest":
        found = checkpoint_dirs(run_dir)
        return found[-1] if found else None
    if os.path.isfile(os.path.join(resume, "state.json")):
        return resume
    found = checkpoint_dirs(resume)
    if found:
        return found[-1]
    raise LeanvlError(f"--resume {resume}: no checkpoint there (expected a step-NNNNNNNN directory or a run directory)")


def _rng_state() -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state()
    meta = {"python": [version, list(internal), gauss],
            "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])]}
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    return meta, tensors


def _set_rng_state(meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    version, internal, gauss = meta["python"]
    random.setstate((version, tuple(internal), gauss))
    n = meta["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict]]:
    sd = optimizer.state_dict()
    tensors = {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            t = value if isinstance(value, torch.Tensor) else torch.tensor(value)
            tensors[f"optim.{idx}.{key}"] = t.detach().contiguous().cpu()
    return tensors, sd["param_groups"]


def _optimizer_state(tensors: dict[str, torch.Tensor], groups: list[dict]) -> dict:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, idx, key = name.split(".", 2)
            state.setdefault(int(idx), {})[key] = value
    return {"state": state, "param_groups": groups}


def save_checkpoint(run_dir: str, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    extra: dict[str, Any], keep: int) -> str:
    """Write checkpoint `step` atomically, then delete all but the newest `keep`; returns its directory."""
    root = os.path.join(run_dir, CKPT_DIR)
    os.makedirs(root, exist_ok=True)
    final = os.path.join(root, f"step-{step:08d}")
    tmp = os.path.join(root, f".tmp-step-{step:08d}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    save_model(model, os.path.join(tmp, "model.safetensors"))
    opt_tensors, groups = _optimizer_tensors(optimizer)
    rng_meta, rng_tensors = _rng_state()
    save_file({**opt_tensors, **rng_tensors}, os.path.join(tmp, "optim.safetensors"))
    state = {"step": step, "param_groups": groups, "rng": rng_meta, **extra}
    with open(os.path.join(tmp, "state.json"), "w") as f:
        json.dump(state, f)
        f.flush()
        os.fsync(f.fileno())
    if os.path.exists(final):  # re-saving the same step (e.g. after a resume): replace the old copy last
        old = final + f".old-{os.getpid()}"
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    for stale in checkpoint_dirs(run_dir)[:-keep]:
        shutil.rmtree(stale, ignore_errors=True)
    return final


def load_checkpoint(path: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None) -> dict[str, Any]:
    """Restore weights, optimizer and RNG states from checkpoint `path`; returns its state.json contents."""
    try:
        with open(os.path.join(path, "state.json")) as f:
            state = json.load(f)
        missing, unexpected = load_model(model, os.path.join(path, "model.safetensors"), strict=False)
        tensors = load_file(os.path.join(path, "optim.safetensors"))
    except (OSError, ValueError, json.JSONDecodeError) as exc:
        raise LeanvlError(f"checkpoint {path} is unreadable: {str(exc).splitlines()[0][:160]}") from None
    if missing or unexpected:
        raise LeanvlError(f"checkpoint {path} does not match this model "
                          f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})")
    if optimizer is not None:
        optimizer.load_state_dict(_optimizer_state(tensors, state["param_groups"]))
    _set_rng_state(state["rng"], tensors)
    return state
