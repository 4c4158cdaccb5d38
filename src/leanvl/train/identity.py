"""What a run IS (objective, model, data spec, seed): a resume that changes it is refused unless `--overwrite`."""
from __future__ import annotations

import json
import os
from typing import Any

from leanvl.errors import LeanvlError

# (section of config.json's "extra", key) -> flag name; section None = a TrainConfig field
IDENTITY: dict[tuple[str | None, str], str] = {
    (None, "seed"): "seed",
    ("pretrain", "objective"): "objective", ("pretrain", "model"): "model", ("pretrain", "data"): "data",
    ("pretrain", "text_model"): "text-model",
    ("vlm", "llm"): "llm", ("vlm", "encoder"): "encoder", ("vlm", "compressor"): "compressor",
    ("vlm", "tokens"): "tokens", ("vlm", "data"): "data", ("vlm", "stage"): "stage", ("vlm", "lora"): "lora",
    ("vlm", "lora_targets"): "lora-targets",
}


def run_identity(config: dict[str, Any]) -> dict[str, Any]:
    """The identity entries of a saved/resolved run config (a TrainConfig dict); absent ones are left out."""
    extra = config.get("extra") or {}
    out = {}
    for (section, key), flag in IDENTITY.items():
        holder = config if section is None else extra.get(section)
        if isinstance(holder, dict) and key in holder:
            out[flag] = holder[key]
    return out


def check_same_run(cfg: Any) -> None:
    """On `--resume`, refuse in one line when the run directory's saved identity differs from `cfg`'s
    (reads only; `--overwrite` accepts the change)."""
    path = os.path.join(cfg.out, "config.json")
    if not cfg.resume or cfg.overwrite or not os.path.isfile(path):
        return
    try:
        with open(path) as f:
            saved = run_identity(json.load(f))
    except (OSError, ValueError):
        return  # an unreadable config is the checkpoint loader's and run-dir checks' business
    now = run_identity(cfg.to_dict())
    changed = [f for f in saved if f in now and saved[f] != now[f]]
    if changed:
        what = ", ".join(f"--{f} {saved[f]!r} -> {now[f]!r}" for f in changed)
        raise LeanvlError(f"--resume: {cfg.out} is a different run ({what}); keep the settings, "
                          f"use another --out, or add --overwrite to continue it anyway")
