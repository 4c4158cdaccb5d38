"""Encoder export/import: safetensors weights + a JSON config. Loading never unpickles arbitrary objects."""
from __future__ import annotations

import json
import os

import torch
from safetensors.torch import load_file, save_file

from leanvl.errors import LeanvlError

WEIGHTS = "model.safetensors"  # backbone keys exactly as the timm model names them
CONFIG = "encoder.json"


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


def load_state_file(path: str) -> dict[str, torch.Tensor]:
    """Tensors from a safetensors file, or from a torch file with `weights_only=True` (pickled code is refused)."""
    if path.endswith(".safetensors"):
        try:
            return load_file(path)
        except Exception as exc:  # noqa: BLE001 — safetensors' own error type or OSError: a damaged file
            raise LeanvlError(f"{path}: unreadable safetensors file ({str(exc).splitlines()[0][:160]})") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 — any unpickling refusal becomes one clear line
        raise LeanvlError(f"{path}: refused to load (not plain tensors; leanvl never unpickles arbitrary "
                          f"objects): {str(exc).splitlines()[0][:160]}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise LeanvlError(f"{path}: expected a flat dict of tensors")
    return state


def load_encoder(path: str):
    """Rebuild an encoder exported by `leanvl export` (a directory with encoder.json + model.safetensors)."""
    from leanvl.models.encoders import create_encoder

    cfg_path = os.path.join(path, CONFIG)
    if not os.path.isfile(cfg_path):
        raise LeanvlError(f"{path}: not a leanvl encoder export (missing {CONFIG})")
    with open(cfg_path) as f:
        cfg = json.load(f)
    weights = os.path.join(path, WEIGHTS)
    if not os.path.isfile(weights):
        raise LeanvlError(f"{path}: missing {WEIGHTS}")
    encoder = create_encoder(cfg["name"], image_size=cfg["image_size"], build_kwargs=cfg.get("build_kwargs"))
    missing, unexpected = encoder.backbone.load_state_dict(load_state_file(weights), strict=False)
    if missing or unexpected:
        raise LeanvlError(f"{path}: weights do not match '{cfg['name']}' "
                          f"(missing {len(missing)}, unexpected {len(unexpected)} keys)")
    return encoder
