"""The on-disk form of an exported encoder: file names and pickle-free tensor loading."""
from __future__ import annotations

import torch
from safetensors.torch import load_file

from leanvl.errors import LeanvlError

WEIGHTS = "model.safetensors"  # backbone keys exactly as the timm model names them
CONFIG = "encoder.json"


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
