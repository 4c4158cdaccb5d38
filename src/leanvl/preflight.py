"""Cheap checks of command-line values, run before any model is built, checkpoint loaded or data read.

Each check raises LeanvlError naming the flag and the bad value (one line, exit 2 at the CLI boundary) and costs
microseconds to milliseconds: names are looked up in registries, paths are stat-ed, nothing is constructed.
"""
from __future__ import annotations

import json
import math
import os
from typing import Any

from leanvl.errors import LeanvlError
from leanvl.train.config import MAX_BATCH

SEED_LIMIT = 2**32  # numpy's seed range


def number(value: float, flag: str, *, lo: float | None = None, hi: float | None = None,
           lo_open: bool = False) -> float:
    """`value` when it is finite and within [lo, hi] ((lo, hi] with `lo_open`); LeanvlError otherwise."""
    if not math.isfinite(value):
        raise LeanvlError(f"{flag} must be a finite number, got {value}")
    if lo is not None and (value <= lo if lo_open else value < lo):
        raise LeanvlError(f"{flag} must be {'>' if lo_open else '>='} {lo:g}, got {value:g}")
    if hi is not None and value > hi:
        raise LeanvlError(f"{flag} must be <= {hi:g}, got {value:g}")
    return value


def count(value: int, flag: str, lo: int = 1, hi: int | None = None) -> int:
    """`value` when lo <= value (<= hi); LeanvlError otherwise."""
    if value < lo:
        raise LeanvlError(f"{flag} must be >= {lo}, got {value}")
    if hi is not None and value > hi:
        raise LeanvlError(f"{flag} must be <= {hi}, got {value}")
    return value


def seed(value: int, flag: str = "--seed") -> int:
    """A seed numpy accepts: 0 <= seed < 2**32."""
    if not 0 <= value < SEED_LIMIT:
        raise LeanvlError(f"{flag} must be in [0, 2**32), got {value}")
    return value


def device(name: str, flag: str = "--device") -> None:
    """LeanvlError unless `name` is auto or a torch device this machine has (CUDA asked for without CUDA)."""
    from leanvl.train.loop import resolve_device

    try:
        resolve_device(name)
    except LeanvlError as exc:
        raise LeanvlError(str(exc).replace("--device", flag, 1)) from None


def existing(path: str, flag: str, *, kind: str = "any") -> str:
    """`path` when it exists (kind 'file' or 'dir': and is one); LeanvlError otherwise."""
    if not os.path.exists(path):
        raise LeanvlError(f"{flag} {path}: no such file or directory")
    if kind == "file" and not os.path.isfile(path):
        raise LeanvlError(f"{flag} {path}: not a file")
    if kind == "dir" and not os.path.isdir(path):
        raise LeanvlError(f"{flag} {path}: not a directory")
    return path


def encoder_name(name: str, flag: str) -> None:
    """LeanvlError unless `name` is a leanvl built-in, `open_clip:NAME`, a `leanvl export` directory or a timm
    model name (timm is asked only for names that are none of the others)."""
    from leanvl.models.encoders import ENCODERS, OTHER_ENCODERS

    if name in ENCODERS or name.startswith(("open_clip:", "hf-hub:")):
        return
    if os.path.isdir(name):
        if not os.path.isfile(os.path.join(name, "encoder.json")):
            raise LeanvlError(f"{flag} {name}: not a `leanvl export` directory (no encoder.json)")
        return
    if os.path.exists(name) or os.sep in name:
        raise LeanvlError(f"{flag} {name}: not an encoder name or a `leanvl export` directory")
    try:
        import timm
    except ImportError:
        return  # the builder says timm is missing
    if not timm.is_model(name):
        raise ENCODERS.unknown(name, also=OTHER_ENCODERS)


def llm_name(name: str, flag: str = "--llm") -> None:
    """LeanvlError unless `name` is a built-in LLM or a local Hugging Face model directory (with config.json)."""
    from leanvl.vlm.llm import LLMS, LOCAL_LLM

    if name in LLMS:
        return
    if not os.path.isdir(name):
        raise LLMS.unknown(name, also=LOCAL_LLM, flag=flag)
    if not os.path.isfile(os.path.join(name, "config.json")):
        raise LeanvlError(f"{flag} {name}: not a Hugging Face model directory (no config.json)")


def weights_file(path: str, flag: str) -> None:
    """'' (none) or an existing file; LeanvlError otherwise ('hub' is not a file: callers allow it first)."""
    if path:
        existing(path, flag, kind="file")


def cache_dir(path: str, flag: str = "--data-cache") -> None:
    """'' (the default cache) or a directory that exists writable or can be created."""
    if path:
        from leanvl.paths import check_dir_creatable

        check_dir_creatable(path, flag)


def batch(value: int, flag: str = "--batch-size") -> int:
    """A micro-batch size in [1, 2**20]."""
    return count(value, flag, 1, MAX_BATCH)


def resume(tcfg: Any, kind: str) -> None:
    """`--resume` resolved (reads only) before the model is built: a missing or damaged checkpoint, or one from a
    run of another kind (`kind`: the 'pretrain' or 'vlm' section its run's config.json must have), is refused."""
    from leanvl.train.checkpoint import resolve_resume

    path = resolve_resume(tcfg.resume, tcfg.out)
    if path is None:
        return
    run = os.path.dirname(os.path.dirname(os.path.abspath(path)))  # RUN/checkpoints/step-N
    try:
        with open(os.path.join(run, "config.json")) as f:
            extra = json.load(f).get("extra")
    except (OSError, ValueError, AttributeError):
        return  # no run config beside the checkpoint: the loader decides
    if isinstance(extra, dict) and extra and kind not in extra:
        other = next((k for k in ("pretrain", "vlm") if k in extra), "another kind of")
        raise LeanvlError(f"--resume {tcfg.resume}: a checkpoint of a {other} run, not of a {kind} run")


MAX_ITEMS = 1_000_000  # scenes / questions per evaluation: synthetic data is endless, so more would never end
MAX_NEW_TOKENS = 8192


def items(value: int, flag: str, lo: int = 1) -> int:
    """A number of evaluation scenes or questions in [lo, 1e6]."""
    return count(value, flag, lo, MAX_ITEMS)


def data_spec(spec: str, flag: str = "--data", *, kind: str = "any") -> None:
    """LeanvlError when `spec` names one local path (no pattern, mixture or URL) that does not exist ('synthetic'
    and patterns are the data readers' business); `kind` 'dir' also requires a directory (ImageFolder roots)."""
    if spec == "synthetic" or spec.startswith("synthetic:"):
        return
    if any(c in spec for c in "{*?[") or "::" in spec or "://" in spec or spec.startswith("pipe:"):
        return
    existing(os.path.expanduser(spec.partition("#")[0]), flag, kind=kind)


def text_model(name: str) -> None:
    """LeanvlError unless `name` is a text tower config (leanvl's own are looked up without importing open_clip)."""
    from leanvl.objectives.text_tower import TEXT_CONFIGS, text_config

    if name in TEXT_CONFIGS:
        return
    if os.sep in name or os.path.exists(name):  # open_clip config names are plain words
        raise TEXT_CONFIGS.unknown(name, also="an open_clip model config with a text tower (open_clip.list_models())")
    text_config(name)
