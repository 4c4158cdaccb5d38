"""The run directory: safe creation (never clobbers a run by accident), resolved config, metrics.jsonl."""
from __future__ import annotations

import fcntl
import json
import os
import resource
import shutil
import socket
import sys
import time
from typing import IO, Any

import torch

from leanvl.errors import LeanvlError
from leanvl.paths import check_dir_creatable, ensure_writable_dir
from leanvl.train.checkpoint import CKPT_DIR

METRICS = "metrics.jsonl"
CONFIG = "config.json"
LOCK = ".lock"


def _has_run(out: str) -> bool:
    return any(os.path.exists(os.path.join(out, n)) for n in (CONFIG, METRICS, CKPT_DIR))


def write_json_atomic(path: str, obj: Any) -> None:
    """Write JSON to `path` via a temp file + rename."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, default=str)
    os.replace(tmp, path)


def remove_entries(out: str, names: tuple[str, ...]) -> None:
    """Delete the listed files/directories inside `out` (those that exist)."""
    for name in names:
        target = os.path.join(out, name)
        if os.path.isdir(target):
            shutil.rmtree(target)
        elif os.path.exists(target):
            os.remove(target)


def check_run_dir(cfg: Any) -> None:
    """Refuse an existing run unless resuming or `--overwrite` (reads only: every rank calls it before any writes)."""
    out = cfg.out
    if os.path.exists(out) and not os.path.isdir(out):
        raise LeanvlError(f"--out {out}: exists and is not a directory")
    check_dir_creatable(out, "--out")  # before any model is built
    if _has_run(out) and not cfg.resume and not cfg.overwrite:
        raise LeanvlError(f"run directory {out} already holds a run; pass --resume latest to continue it "
                          f"or --overwrite to replace it")


class RunLock:
    """An OS advisory lock (a POSIX record lock, lockf) on RUN/.lock held for a run's life by the process that writes
    the run. Unlike flock it is not inherited by forked DataLoader workers, so a killed trainer frees it at once.

    The kernel drops it when that process dies, so a lock file left by a killed run never blocks; the pid and host
    written into it only name the holder in the error a second writer gets."""

    def __init__(self, out: str) -> None:
        self.path = os.path.join(out, LOCK)
        self._file: IO[str] | None = None

    def acquire(self) -> "RunLock":
        ensure_writable_dir(os.path.dirname(self.path) or ".")
        f = open(self.path, "a+")
        try:
            fcntl.lockf(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise LeanvlError(f"run directory {os.path.dirname(self.path)} is in use by {holder}; wait for it or "
                              f"choose another --out") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on host {socket.gethostname()}")
        f.flush()
        self._file = f
        return self

    def release(self) -> None:
        if self._file is not None:
            fcntl.lockf(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def init_run_dir(cfg: Any, config: dict | None = None) -> None:
    """Create `cfg.out` (clearing an old run when `--overwrite`), check it is writable, save the config (main only).

    On resume the previous config.json is kept and the new settings are appended to its `history` list."""
    out = cfg.out
    if _has_run(out) and not cfg.resume and cfg.overwrite:
        remove_entries(out, (CKPT_DIR, METRICS, CONFIG))
    ensure_writable_dir(out)
    new = dict(config if config is not None else cfg.to_dict())
    path = os.path.join(out, CONFIG)
    old = _read_json(path) if cfg.resume else None
    if isinstance(old, dict):
        history = list(old.get("history", [])) + [{"resumed_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                                   "changed": _changed(old, new)}]
        new["history"] = history
    write_json_atomic(path, new)


def _read_json(path: str) -> Any:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _changed(old: dict, new: dict) -> dict[str, Any]:
    """Top-level (and one level nested) settings whose value differs: {key: [old, new]}."""
    out: dict[str, Any] = {}
    for key in sorted(set(old) | set(new)):
        if key == "history" or old.get(key) == new.get(key):
            continue
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out.update({f"{key}.{k}": v for k, v in _changed(a, b).items()})
        else:
            out[key] = [a, b]
    return out


class MetricsLog:
    """Appends one JSON object per log step to RUN/metrics.jsonl (main process only)."""

    def __init__(self, out: str, enabled: bool) -> None:
        self.path = os.path.join(out, METRICS)
        self.enabled = enabled

    def truncate_after(self, step: int) -> None:
        """Drop lines logged after `step` (a resumed run rewrites them identically)."""
        if not self.enabled or not os.path.exists(self.path):
            return
        with open(self.path) as f:
            kept = [line for line in f if line.strip() and json.loads(line).get("step", 0) <= step]
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.writelines(kept)
        os.replace(tmp, self.path)

    def write(self, step: int, scalars: dict[str, float], data: dict[str, Any]) -> None:
        """Append the metrics of `step`."""
        if not self.enabled:
            return
        row = {"step": step, **{k: (round(v, 6) if isinstance(v, float) else v) for k, v in scalars.items()},
               "data_raw": data.get("raw", 0), "data_skipped": data.get("skipped", 0)}
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")


def peak_memory(device: torch.device) -> tuple[float, str]:
    """Peak memory in MB: CUDA max allocated on GPU ('cuda'), else this process's peak RSS ('rss')."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (rss / 2**20 if sys.platform == "darwin" else rss / 1024), "rss"
