"""Atomic, pickle-free checkpoints: one directory per step, written under a temp name and renamed into place.

Layout of `RUN/checkpoints/step-00000100/`: model.safetensors (all params and buffers), optim.safetensors (optimizer
tensors and RNG states), state.json (step, optimizer hyper-parameters, Python/NumPy RNG, data position, extras).
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import re
import shutil
import sys
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, load_model, save_file, save_model

from leanvl.errors import LeanvlError

CKPT_DIR = "checkpoints"
MANIFEST = "manifest.json"
_NAME = re.compile(r"^step-(\d{8})$")
_LEFTOVER = re.compile(r"^step-\d{8}\.old-\d+$|^\.tmp-step-")


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def manifest_entries(directory: str, names: list[str]) -> dict[str, dict[str, Any]]:
    """Size and SHA-256 of each named file (paths relative to DIR, '/'-separated)."""
    return {n: {"bytes": os.path.getsize(os.path.join(directory, n)), "sha256": _sha256(os.path.join(directory, n))}
            for n in names}


def write_manifest(directory: str, entries: dict[str, dict[str, Any]] | None = None) -> None:
    """Record every file's size and SHA-256 in DIR/manifest.json (written last, fsync'ed); `entries` (from
    `manifest_entries`, possibly nested paths) replaces the default of DIR's top-level files."""
    if entries is None:
        files = sorted(n for n in os.listdir(directory)
                       if n != MANIFEST and os.path.isfile(os.path.join(directory, n)))
        entries = manifest_entries(directory, files)
    with open(os.path.join(directory, MANIFEST), "w") as f:
        json.dump({"version": 1, "files": dict(sorted(entries.items()))}, f, indent=1)
        f.flush()
        os.fsync(f.fileno())


def verify_manifest(directory: str) -> str | None:
    """None when every file of DIR's manifest has its recorded size and checksum, else the first problem (one
    line). A checkpoint written before manifests existed (none there) only needs its state.json."""
    path = os.path.join(directory, MANIFEST)
    if not os.path.isfile(path):
        return None if os.path.isfile(os.path.join(directory, "state.json")) else "state.json is missing"
    try:
        with open(path) as f:
            files = json.load(f)["files"]
        items = [(str(n), int(e["bytes"]), str(e["sha256"])) for n, e in files.items()]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return f"{MANIFEST} is unreadable"
    for name, size, digest in items:
        file = os.path.join(directory, name)
        if not os.path.isfile(file):
            return f"{name} is missing"
        if os.path.getsize(file) != size:
            return f"{name} has {os.path.getsize(file)} bytes, the manifest says {size}"
        if _sha256(file) != digest:
            return f"{name} fails its checksum"
    return None


def remove_leftovers(run_dir: str) -> list[str]:
    """Delete temp/old directories left by interrupted checkpoint writes (call with the run lock held)."""
    root = os.path.join(run_dir, CKPT_DIR)
    gone = [os.path.join(root, n) for n in (os.listdir(root) if os.path.isdir(root) else []) if _LEFTOVER.match(n)]
    for path in gone:
        shutil.rmtree(path, ignore_errors=True)
    return gone


def checkpoint_dirs(run_dir: str) -> list[str]:
    """Complete checkpoints of a run, oldest first (temp dirs of interrupted writes are ignored)."""
    root = os.path.join(run_dir, CKPT_DIR)
    if not os.path.isdir(root):
        return []
    names = sorted(n for n in os.listdir(root) if _NAME.match(n)
                   and os.path.isfile(os.path.join(root, n, "state.json")))
    return [os.path.join(root, n) for n in names]


def newest_valid(run_dir: str, warn: bool = True) -> str | None:
    """The newest checkpoint of a run that passes its manifest; skipped ones get a one-line warning on stderr."""
    for path in reversed(checkpoint_dirs(run_dir)):
        problem = verify_manifest(path)
        if problem is None:
            return path
        if warn:
            print(f"leanvl: warning: skipping damaged checkpoint {path} ({problem})", file=sys.stderr)
    return None


def resolve_resume(resume: str, run_dir: str) -> str | None:
    """Checkpoint directory for `--resume latest|PATH`: the newest valid one of the run; None when 'latest' finds
    none (start fresh). A PATH naming one checkpoint that fails its manifest is an error."""
    if not resume:
        return None
    if resume == "latest":
        found = newest_valid(run_dir)
        if found is None and checkpoint_dirs(run_dir):
            raise LeanvlError(f"--resume latest: every checkpoint in {run_dir} is damaged; "
                              f"pass --overwrite to start again")
        return found
    if os.path.isfile(os.path.join(resume, "state.json")):
        problem = verify_manifest(resume)
        if problem:
            raise LeanvlError(f"--resume {resume}: damaged checkpoint ({problem})")
        return resume
    found = newest_valid(resume)
    if found:
        return found
    raise LeanvlError(f"--resume {resume}: no valid checkpoint there (expected a step-NNNNNNNN directory or a run "
                      f"directory)")


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
    final = os.path.join(root, f"step-{step:08d}")
    tmp = os.path.join(root, f".tmp-step-{step:08d}-{os.getpid()}")
    try:
        os.makedirs(root, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        _write_files(tmp, step, model, optimizer, extra)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _write_error(exc, root, model, optimizer) from None
    return commit_checkpoint(tmp, final, run_dir, keep)


def commit_checkpoint(tmp: str, final: str, run_dir: str, keep: int) -> str:
    """Rename a fully written temp checkpoint into place (a re-saved step replaces its old copy last), then delete
    all but the newest `keep` checkpoints; returns `final`. Shared by single-file and sharded checkpoints."""
    if os.path.exists(final):
        old = final + f".old-{os.getpid()}"
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    for stale in checkpoint_dirs(run_dir)[:-keep]:
        shutil.rmtree(stale, ignore_errors=True)
    return final


def _write_files(tmp: str, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 extra: dict[str, Any]) -> None:
    save_model(model, os.path.join(tmp, "model.safetensors"))
    opt_tensors, groups = _optimizer_tensors(optimizer)
    rng_meta, rng_tensors = _rng_state()
    save_file({**opt_tensors, **rng_tensors}, os.path.join(tmp, "optim.safetensors"))
    state = {"step": step, "param_groups": groups, "rng": rng_meta, **extra}
    with open(os.path.join(tmp, "state.json"), "w") as f:
        json.dump(state, f)
        f.flush()
        os.fsync(f.fileno())
    write_manifest(tmp)


def _write_error(exc: OSError, root: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> LeanvlError:
    """One line for a failed checkpoint write; disk full names the bytes a checkpoint needs."""
    if exc.errno == errno.ENOSPC:
        need = sum(t.numel() * t.element_size() for t in model.state_dict().values())
        need += sum(t.numel() * t.element_size() for s in optimizer.state.values() for t in s.values()
                    if isinstance(t, torch.Tensor))
        free = shutil.disk_usage(root).free if os.path.isdir(root) else 0
        return LeanvlError(f"disk full while writing a checkpoint in {root}: it needs about {need / 1e6:.1f} MB, "
                           f"{free / 1e6:.1f} MB free (the previous checkpoint is intact)")
    return LeanvlError(f"cannot write a checkpoint in {root}: {exc.strerror or exc} (the previous checkpoint is "
                       f"intact)")


def load_checkpoint(path: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None) -> dict[str, Any]:
    """Restore weights, optimizer and RNG states from checkpoint `path`; returns its state.json contents."""
    try:
        with open(os.path.join(path, "state.json")) as f:
            state = json.load(f)
        missing, unexpected = load_model(model, os.path.join(path, "model.safetensors"), strict=False)
        tensors = load_file(os.path.join(path, "optim.safetensors"))
    except RuntimeError as exc:  # shapes that do not fit this model
        raise LeanvlError(f"checkpoint {path} does not match this model: {str(exc).splitlines()[0][:160]}") from None
    except Exception as exc:  # noqa: BLE001  (safetensors' own error, OSError, bad JSON: all a damaged file)
        raise LeanvlError(f"checkpoint {path} is unreadable: {str(exc).splitlines()[0][:160]}") from None
    if missing or unexpected:
        raise LeanvlError(f"checkpoint {path} does not match this model "
                          f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})")
    try:
        if optimizer is not None:
            optimizer.load_state_dict(_optimizer_state(tensors, state["param_groups"]))
        _set_rng_state(state["rng"], tensors)
    except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as exc:
        raise LeanvlError(f"checkpoint {path}: state.json or optimizer state does not fit this run "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''})") from None
    return state


def load_weights(model: torch.nn.Module, path: str) -> tuple[list[str], list[str]]:
    """safetensors `load_model(strict=False)` with every damaged-file error as one LeanvlError line; returns
    (missing, unexpected) keys for the caller to judge."""
    try:
        return load_model(model, path, strict=False)
    except (RuntimeError, AssertionError) as exc:
        raise LeanvlError(f"{path}: weights do not fit this model ({str(exc).splitlines()[0][:160]})") from None
    except Exception as exc:  # noqa: BLE001  (safetensors' own error type, OSError: a damaged or missing file)
        raise LeanvlError(f"{path}: unreadable weights ({str(exc).splitlines()[0][:160]})") from None
