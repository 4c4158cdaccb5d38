"""`leanvl vlm export`: a VLM run/checkpoint -> a transformers `trust_remote_code` directory.

The directory holds config.json (model_type `leanvl`, auto_map for AutoConfig / AutoModel /
AutoModelForCausalLM / AutoModelForImageTextToText / AutoProcessor), model.safetensors (every weight under `vlm.`
with leanvl's names), the modelling code (see `leanvl.vlm.hf.vendor`), the tokenizer with its chat template, and
processor_config.json (image size, whether the compressor needs the question).
"""
from __future__ import annotations

import json
import os
from typing import Any

import torch
from torch import nn

from leanvl.errors import LeanvlError
from leanvl.vlm.hf.files import check_out_dir, write_atomically
from leanvl.vlm.hf.vendor import write_code

ARCH = "LeanvlForConditionalGeneration"
AUTO_MAP = {"AutoConfig": "configuration_leanvl.LeanvlConfig",
            "AutoModel": f"modeling_leanvl.{ARCH}",
            "AutoModelForCausalLM": f"modeling_leanvl.{ARCH}",
            "AutoModelForImageTextToText": f"modeling_leanvl.{ARCH}",
            "AutoProcessor": "processing_leanvl.LeanvlProcessor"}


def _lora_layers(model: Any) -> list:
    """The VLM's peft LoRA layers ([] without peft installed: then there can be none)."""
    try:
        from leanvl.vlm.lora import lora_layers
        return lora_layers(model)
    except ImportError:
        return []


def merge_lora(model: Any) -> int:
    """Merge the VLM's LoRA adapters into its weights in place (`leanvl.vlm.lora.merge_lora`, which also clears
    `cfg.lora` so the exported config describes a plain LLM); returns how many LoRA layers were merged."""
    from leanvl.vlm.lora import merge_lora as merge

    count = len(_lora_layers(model))
    if count:
        merge(model)
    return count


def prepare_lora(model: Any, merge: bool) -> int:
    """Merge the adapters when asked (returns how many layers); refuse adapters without --merge-lora and the flag
    without adapters."""
    if _lora_layers(model) and not merge:
        raise LeanvlError("the checkpoint has LoRA adapters; pass --merge-lora to merge them into the export")
    if merge and not _lora_layers(model):
        raise LeanvlError("--merge-lora: the checkpoint has no LoRA adapters to merge")
    return merge_lora(model) if merge else 0


def hf_config(model: Any) -> dict[str, Any]:
    """config.json contents for `model` (a leanvl VLM)."""
    import transformers

    from leanvl.vlm.generate import stop_ids

    tok = model.tokenizer
    return {"model_type": "leanvl", "architectures": [ARCH], "auto_map": AUTO_MAP,
            "vlm": model.cfg.to_dict(), "llm_config": model.llm.config.to_dict(),
            "stop_token_ids": sorted(stop_ids(tok)), "image_token_id": -200, "pad_token_id": tok.pad_token_id,
            "eos_token_id": tok.eos_token_id, "bos_token_id": tok.bos_token_id,
            "num_visual_tokens": model.cfg.tokens, "transformers_version": transformers.__version__}


def _processor_config(model: Any) -> dict[str, Any]:
    return {"processor_class": "LeanvlProcessor", "image_size": model.cfg.image_size,
            "needs_query": bool(model.compressor.needs_query),
            "auto_map": {"AutoProcessor": AUTO_MAP["AutoProcessor"]}}


def hf_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Weights under `vlm.`; a tensor shared by several names (tied lm_head) is stored once, under its first."""
    seen, out = set(), {}
    for key, t in model.state_dict().items():
        if t.data_ptr() in seen:
            continue
        seen.add(t.data_ptr())
        out["vlm." + key] = t.detach().contiguous().cpu()
    return out


def export_model(model: Any, out: str, *, merge: bool = False) -> dict[str, Any]:
    """Write `model` (a leanvl VLM) as a transformers remote-code directory `out` (atomically)."""
    from safetensors.torch import save_file

    check_out_dir(out)
    merged = prepare_lora(model, merge)
    model = model.cpu().eval()

    def write(tmp: str) -> int:
        files = write_code(tmp)
        with open(os.path.join(tmp, "config.json"), "w") as f:
            json.dump(hf_config(model), f, indent=2)
        with open(os.path.join(tmp, "processor_config.json"), "w") as f:
            json.dump(_processor_config(model), f, indent=2)
        model.tokenizer.save_pretrained(tmp)
        save_file(hf_state_dict(model), os.path.join(tmp, "model.safetensors"), metadata={"format": "pt"})
        return len(files)

    files = write_atomically(out, write)
    return {"out": out, "architecture": ARCH, "compressor": model.cfg.compressor,
            "visual_tokens": model.cfg.tokens, "merged_lora_layers": merged, "code_files": files}


def run_export(ckpt: str, out: str, *, merge: bool = False, fmt: str = "leanvl") -> dict[str, Any]:
    """Load a VLM run/step/saved directory and export it: `fmt` leanvl (remote code, see module docstring) or llava
    (transformers' own LlavaForConditionalGeneration, where the VLM maps: see leanvl.vlm.hf.llava)."""
    from leanvl.vlm.io import load_vlm

    check_out_dir(out)
    with torch.no_grad():
        model = load_vlm(ckpt)
        if fmt != "llava":
            return export_model(model, out, merge=merge)
        from leanvl.vlm.hf.llava import export_llava

        merged = prepare_lora(model, merge)
        return {**export_llava(model, out), "merged_lora_layers": merged}
