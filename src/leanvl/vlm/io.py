"""Build, save and reload VLMs without pickle and without the original LLM/encoder sources.

A VLM spec directory holds `vlm.json` (VLMConfig), `llm/config.json` (the LLM architecture) and `tokenizer/`
(tokenizer files incl. chat template). Training writes it to `RUN/vlm/`; the trainer's checkpoints
`RUN/checkpoints/step-*/model.safetensors` hold every weight. `save_vlm(model, DIR)` writes spec + weights into one
directory. `load_vlm(PATH)` accepts any of: a run directory (newest checkpoint), a step directory, a saved DIR.
"""
from __future__ import annotations

import json
import os
from typing import Any

import torch
from safetensors.torch import save_model

from leanvl.errors import LeanvlError
from leanvl.vlm.lora import restore_lora
from leanvl.vlm.llm import llm_from_saved, load_llm, save_llm_spec
from leanvl.vlm.model import VLM, VLMConfig, encoder_for

SPEC_DIR = "vlm"
CONFIG = "vlm.json"
WEIGHTS = "model.safetensors"


def build_vlm(cfg: VLMConfig, *, encoder_pretrained: str | None = None, seed: int = 0) -> VLM:
    """A fresh VLM from names: LLM (built-in / smollm2-135m / local dir), encoder (name, export dir, timm...)."""
    from leanvl.models.encoders import create_encoder

    if cfg.image_size < 8:
        raise LeanvlError(f"--image-size must be >= 8, got {cfg.image_size}")
    llm = load_llm(cfg.llm, seed=seed)
    torch.manual_seed(seed)
    encoder = create_encoder(cfg.encoder, image_size=cfg.image_size, pretrained=encoder_pretrained)
    cfg.encoder_config = encoder.config() if hasattr(encoder, "config") else {"name": cfg.encoder}
    cfg.image_size = int(getattr(encoder, "image_size", cfg.image_size))
    return VLM(cfg, encoder, llm.model, llm.tokenizer)


def save_spec(model: VLM, spec_dir: str) -> None:
    """Write vlm.json + the LLM's config + tokenizer into `spec_dir`."""
    from leanvl.vlm.llm import LoadedLLM

    os.makedirs(spec_dir, exist_ok=True)
    save_llm_spec(LoadedLLM(model.llm, model.tokenizer, model.cfg.llm, ""), os.path.join(spec_dir, "llm"),
                  os.path.join(spec_dir, "tokenizer"))
    with open(os.path.join(spec_dir, CONFIG), "w") as f:
        json.dump(model.cfg.to_dict(), f, indent=2)


def save_vlm(model: VLM, out_dir: str) -> str:
    """Spec + all weights (safetensors, shared tensors stored once) in `out_dir`."""
    save_spec(model, out_dir)
    save_model(model, os.path.join(out_dir, WEIGHTS))
    return out_dir


def _spec_from_dir(spec_dir: str) -> VLM:
    """A VLM with the saved architecture and random weights."""
    with open(os.path.join(spec_dir, CONFIG)) as f:
        raw = json.load(f)
    cfg = VLMConfig(**raw)
    llm = llm_from_saved(os.path.join(spec_dir, "llm"), os.path.join(spec_dir, "tokenizer"))
    model = VLM(cfg, encoder_for(cfg), llm.model, llm.tokenizer)
    restore_lora(model)
    return model


def resolve_checkpoint(path: str) -> tuple[str, str]:
    """(spec dir, weights file) for a run dir, a step dir, or a saved VLM dir; LeanvlError when neither."""
    from leanvl.train.checkpoint import newest_valid, verify_manifest
    from leanvl.train.dcp import is_sharded, weights_path

    if not os.path.isdir(path):
        raise LeanvlError(f"--ckpt {path}: no such directory")
    if os.path.isfile(os.path.join(path, CONFIG)) and os.path.isfile(os.path.join(path, WEIGHTS)):
        return path, os.path.join(path, WEIGHTS)
    if os.path.isfile(os.path.join(path, SPEC_DIR, CONFIG)):
        found = newest_valid(path)
        if not found:
            raise LeanvlError(f"--ckpt {path}: the run has no valid checkpoint")
        return os.path.join(path, SPEC_DIR), weights_path(found)
    run = os.path.dirname(os.path.dirname(os.path.abspath(path)))
    if (os.path.isfile(os.path.join(path, WEIGHTS)) or is_sharded(path)) and \
            os.path.isfile(os.path.join(run, SPEC_DIR, CONFIG)):
        problem = verify_manifest(path)
        if problem:
            raise LeanvlError(f"--ckpt {path}: damaged checkpoint ({problem})")
        return os.path.join(run, SPEC_DIR), weights_path(path)
    raise LeanvlError(f"--ckpt {path}: not a VLM run, step or saved directory (no {CONFIG} found)")


def load_vlm(path: str, device: str | torch.device = "cpu") -> VLM:
    """Rebuild a trained VLM for inference (eval mode) from `path` (see module docstring)."""
    spec_dir, weights = resolve_checkpoint(path)
    from leanvl.train.dcp import load_any_weights

    model = _spec_from_dir(spec_dir)
    missing, unexpected = load_any_weights(model, weights)
    missing = [k for k in missing if not _is_tied(model, k)]
    if missing or unexpected:
        raise LeanvlError(f"{weights}: weights do not match the saved VLM (missing {len(missing)}, "
                          f"unexpected {len(unexpected)} keys)")
    return model.to(device).eval()


def _is_tied(model: VLM, key: str) -> bool:
    """A key whose tensor is shared with another (e.g. tied lm_head) and so stored once."""
    sd: dict[str, Any] = model.state_dict()
    t = sd.get(key)
    return t is not None and any(k != key and v.data_ptr() == t.data_ptr() for k, v in sd.items())
