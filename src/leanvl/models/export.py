"""Encoder export/import: safetensors weights + a JSON config. Loading never unpickles arbitrary objects."""
from __future__ import annotations

import json
import os

import torch
from safetensors.torch import save_file

from leanvl.models.encoders import load_encoder
from leanvl.models.weights import CONFIG, WEIGHTS, load_state_file

__all__ = ["CONFIG", "WEIGHTS", "load_encoder", "load_state_file", "save_encoder"]


def save_encoder(encoder: torch.nn.Module, out_dir: str) -> str:
    """Write `encoder` (a leanvl Encoder) to `out_dir` as model.safetensors + encoder.json; returns out_dir."""
    os.makedirs(out_dir, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in encoder.backbone.state_dict().items()}
    tmp = os.path.join(out_dir, WEIGHTS + ".tmp")
    save_file(state, tmp)
    os.replace(tmp, os.path.join(out_dir, WEIGHTS))
    with open(os.path.join(out_dir, CONFIG), "w") as f:
        json.dump(encoder.config(), f, indent=2)
    return out_dir
