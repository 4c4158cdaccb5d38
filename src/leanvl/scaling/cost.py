"""Inference cost model of a VLM's prefill, in FLOPs.

Base term (the paper's): FLOPs = 2 * N * (Q + V), N LLM parameters, Q text tokens, V visual tokens fed to the LLM
(one multiply-add = 2 FLOPs per parameter per token). Optional terms, each off unless given:

- attention: the quadratic part the parameter count misses. Causal prefill of T = Q + V tokens computes Q.K^T and
  attn.V for T(T+1)/2 (query, key) pairs, 2*d FLOPs each per layer: 2 * L * d * T * (T + 1), with L layers and width
  d read from the LLM's HF config (`num_hidden_layers`/`hidden_size` or `n_layer`/`n_embd` ...).
- vision: the vision encoder's FLOPs per image (see `vit_flops`), paid once whatever V is.
- compressor: the compressor's own FLOPs per image (e.g. QueCC's MLPs and local cross-attention).
- query pass: QueCC runs the LLM once more over the question to embed it: 2 * N * Q (+ its attention over Q).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from leanvl.errors import LeanvlError

_LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")
_WIDTH_KEYS = ("hidden_size", "n_embd", "d_model", "dim")


def llm_flops(n_params, v, q=0.0):
    """The paper's prefill cost 2 * N * (Q + V) (N in parameters, not billions)."""
    return 2.0 * np.asarray(n_params, dtype=float) * (np.asarray(q, dtype=float) + np.asarray(v, dtype=float))


def attention_flops(n_layers: int, width: int, tokens):
    """Causal self-attention score+mix FLOPs of a prefill over `tokens`: 2 * L * d * T * (T + 1)."""
    t = np.asarray(tokens, dtype=float)
    return 2.0 * n_layers * width * t * (t + 1.0)


def vit_flops(n_params: float, n_tokens: int, n_layers: int = 0, width: int = 0) -> float:
    """A ViT's forward FLOPs on one image: 2 * P * T plus full (non-causal) attention 4 * L * d * T^2."""
    return 2.0 * n_params * n_tokens + 4.0 * n_layers * width * float(n_tokens) ** 2


def _get(config, key):
    if isinstance(config, dict):
        return config.get(key)
    return getattr(config, key, None)


def llm_shape(config) -> tuple[int, int]:
    """(layers, width) of an LLM from a HF config (a plain dict or a transformers config object).

    Looks into `text_config` when the top level lacks them (multimodal configs).
    """
    for cfg in (config, _get(config, "text_config")):
        if cfg is None:
            continue
        layers = next((_get(cfg, k) for k in _LAYER_KEYS if _get(cfg, k)), None)
        width = next((_get(cfg, k) for k in _WIDTH_KEYS if _get(cfg, k)), None)
        if layers and width:
            return int(layers), int(width)
    raise LeanvlError(f"config has no layer count ({'/'.join(_LAYER_KEYS)}) and width ({'/'.join(_WIDTH_KEYS)})")


@dataclass
class CostModel:
    """Prefill FLOPs of one request: the paper's 2N(Q+V) plus the optional terms this model switches on.

    `attention` maps LLM size in billions -> (layers, width); `vision_flops` and `compressor_flops` are per image;
    `query_pass` adds QueCC's extra LLM pass over the question.
    """

    attention: dict[float, tuple[int, int]] = field(default_factory=dict)
    vision_flops: float = 0.0
    compressor_flops: float = 0.0
    query_pass: bool = False

    @classmethod
    def from_hf_configs(cls, configs: dict, **kwargs) -> "CostModel":
        """A cost model whose attention term reads layers/width from {size in billions: HF config}."""
        return cls(attention={float(k): llm_shape(c) for k, c in configs.items()}, **kwargs)

    def _shape(self, n_b: float) -> tuple[int, int]:
        for size, shape in self.attention.items():
            if np.isclose(size, n_b, rtol=1e-6):
                return shape
        raise LeanvlError(f"no LLM config for size {n_b:g}B in the cost model's attention term; "
                          f"known sizes: {sorted(self.attention)}")

    def flops(self, n_b: float, v, q=0.0):
        """FLOPs of one prefill with an LLM of n_b billion parameters, V visual and Q text tokens."""
        n = n_b * 1e9
        total = llm_flops(n, v, q) + self.vision_flops + self.compressor_flops
        if self.query_pass:
            total = total + llm_flops(n, 0.0, q)
        if self.attention:
            layers, width = self._shape(n_b)
            total = total + attention_flops(layers, width, np.asarray(q, dtype=float) + np.asarray(v, dtype=float))
            if self.query_pass:
                total = total + attention_flops(layers, width, q)
        return total

    def describe(self) -> str:
        """One line naming the terms in use."""
        terms = ["2N(Q+V)"]
        if self.attention:
            terms.append("attention 2LdT(T+1)")
        if self.vision_flops:
            terms.append(f"vision {self.vision_flops / 1e9:g} GFLOPs")
        if self.compressor_flops:
            terms.append(f"compressor {self.compressor_flops / 1e9:g} GFLOPs")
        if self.query_pass:
            terms.append("QueCC query pass 2NQ")
        return " + ".join(terms)
