"""LoRA adapters for the VLM's LLM through peft (`vlm train --lora RANK`), and merging them back into the weights.

Adapters are injected in place (`peft.inject_adapter_in_model`), so the LLM keeps its class (QueCC's query and
generation call it as before) and its state dict gains `...q_proj.base_layer.weight` + `...lora_A/B.default.weight`.
The base LLM is frozen; the adapters train unless the LLM part is frozen (stage 1 / --freeze llm, refused).
`vlm.json` records the adapter config (`VLMConfig.lora`), so every reader rebuilds the adapters before loading.
"""
from __future__ import annotations

from typing import Any

from torch import nn

from leanvl.errors import LeanvlError

DEFAULT_TARGETS = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"


def lora_spec(rank: int, alpha: float, targets: str) -> dict[str, Any]:
    """The adapter config of the flags (alpha 0 -> 2 x rank, LLaVA's choice); {} when rank is 0."""
    if rank < 0 or alpha < 0:
        raise LeanvlError(f"--lora and --lora-alpha must be >= 0, got {rank} and {alpha}")
    if rank == 0:
        return {}
    names = [t.strip() for t in (targets or DEFAULT_TARGETS).split(",") if t.strip()]
    if not names:
        raise LeanvlError("--lora-targets is empty; name the LLM's linear layers, e.g. q_proj,v_proj")
    return {"rank": rank, "alpha": float(alpha or 2 * rank), "targets": names}


def inject_lora(llm: nn.Module, spec: dict[str, Any]) -> None:
    """Add LoRA adapters described by `spec` to `llm` in place (adapter B = 0, so the output is unchanged)."""
    try:
        from peft import LoraConfig, inject_adapter_in_model
    except ImportError:
        raise LeanvlError("--lora needs peft: pip install 'leanvl[lora]'") from None
    config = LoraConfig(r=spec["rank"], lora_alpha=spec["alpha"], target_modules=spec["targets"], lora_dropout=0.0,
                        bias="none")
    try:
        inject_adapter_in_model(config, llm)
    except ValueError as exc:
        raise LeanvlError(f"--lora-targets {','.join(spec['targets'])}: {str(exc).splitlines()[0][:160]}") from None


def apply_lora(model: Any, spec: dict[str, Any]) -> None:
    """Adapters on `model.llm`, recorded in `model.cfg.lora`; base LLM weights frozen, adapters trainable."""
    if not spec:
        return
    if "llm" in model.frozen:
        raise LeanvlError("--lora trains adapters of the LLM, but the LLM is frozen (stage 1 or --freeze llm); "
                          "use --stage 2 or drop llm from --freeze")
    inject_lora(model.llm, spec)
    for name, p in model.llm.named_parameters():
        p.requires_grad_("lora_" in name)
    model.cfg.lora = dict(spec)


def restore_lora(model: Any) -> None:
    """Re-create the adapters a saved VLM was trained with (before its weights are loaded)."""
    if getattr(model.cfg, "lora", None):
        inject_lora(model.llm, model.cfg.lora)


def lora_layers(module: nn.Module) -> list[tuple[nn.Module, str, nn.Module]]:
    """(parent, attribute, layer) of every peft LoRA layer inside `module`."""
    from peft.tuners.lora import LoraLayer

    return [(parent, name, child) for parent in module.modules() for name, child in parent.named_children()
            if isinstance(child, LoraLayer)]


def merge_lora(model: Any) -> Any:
    """Fold every adapter into its base weight (W += B A x alpha/r) and drop the adapters: a plain LLM again
    (a `PeftModel` wrapper is unloaded too), `model.cfg.lora` cleared. Returns `model`."""
    if hasattr(model.llm, "merge_and_unload"):
        model.llm = model.llm.merge_and_unload()
    for parent, child_name, layer in lora_layers(model.llm):
        layer.merge()
        setattr(parent, child_name, layer.get_base_layer())
    model.cfg.lora = {}
    return model


def trainable_counts(model: Any) -> dict[str, int]:
    """Trainable parameters per VLM part, plus `lora` (adapter parameters) and `total`."""
    from leanvl.vlm.model import PARTS

    out = {part: sum(p.numel() for p in getattr(model, part).parameters() if p.requires_grad) for part in PARTS}
    out["lora"] = sum(p.numel() for n, p in model.named_parameters() if p.requires_grad and "lora_" in n)
    out["total"] = sum(out[part] for part in PARTS)
    return out
