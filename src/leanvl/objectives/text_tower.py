"""open_clip text towers (random init, offline) and CLIP tokenisation for the contrastive objectives.

A text tower is built with open_clip's own `_build_text_tower` from the `text_cfg` of an open_clip model config:
either one of leanvl's tiny CPU configs below (same schema as open_clip's `text_cfg`) or any model name that
`open_clip.list_models()` knows. Weights are never downloaded: towers start from open_clip's random init.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from leanvl.errors import LeanvlError
from leanvl.registry import Registry

# Tiny text towers for CPU runs: CLIP's vocabulary and 77-token context, narrow and shallow.
TEXT_CONFIGS: Registry[dict[str, Any]] = Registry("text tower config", flag="--text-model")
for _name, _width, _heads, _layers in (("leanvl-text-tiny", 128, 2, 2), ("leanvl-text-small", 256, 4, 4)):
    TEXT_CONFIGS.register(_name, {"embed_dim": _width, "text_cfg": {"context_length": 77, "vocab_size": 49408,
                                                                    "width": _width, "heads": _heads,
                                                                    "layers": _layers}})


def text_config(name: str) -> tuple[dict[str, Any], int]:
    """(`text_cfg`, `embed_dim`) of open_clip model config `name` (leanvl's tiny configs included)."""
    import open_clip

    cfg = TEXT_CONFIGS.get(name) if name in TEXT_CONFIGS else open_clip.get_model_config(name)
    if cfg is None or "text_cfg" not in cfg:
        raise TEXT_CONFIGS.unknown(name, also="an open_clip model config with a text tower (open_clip.list_models())")
    text_cfg = dict(cfg["text_cfg"])
    if text_cfg.get("hf_model_name"):
        raise LeanvlError(f"--text-model '{name}': Hugging Face text towers need downloads; pick an open_clip "
                          f"transformer config such as {', '.join(TEXT_CONFIGS.names())}")
    return text_cfg, int(cfg["embed_dim"])


def build_text_tower(name: str) -> tuple[nn.Module, int]:
    """(open_clip TextTransformer for config `name`, randomly initialised; its embedding size)."""
    from open_clip.model import _build_text_tower

    text_cfg, embed_dim = text_config(name)
    return _build_text_tower(embed_dim, text_cfg), embed_dim


def tokenize(captions: list[str], context_length: int = 77) -> torch.LongTensor:
    """[N, context_length] ids from open_clip's tokenizer: <sot> ids <eot>, zero padded, cut to fit (last = <eot>)."""
    from open_clip.tokenizer import tokenize as open_clip_tokenize

    return open_clip_tokenize(list(captions), context_length=context_length)


class TextEncoder(nn.Module):
    """Captions -> L2-normalised embeddings through an open_clip text tower (tokenised on the fly)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.tower, self.embed_dim = build_text_tower(name)
        self.context_length = int(self.tower.context_length)

    def forward(self, captions: list[str]) -> torch.Tensor:
        device = next(self.tower.parameters()).device
        tokens = tokenize(captions, self.context_length).to(device)
        return nn.functional.normalize(self.tower(tokens).float(), dim=-1)
