"""Visual-token compressors (registry): none, avgpool, tokenpacker, quecc (+ quecc-res, quecc-gate).

Every compressor maps the encoder's grid of h x w tokens to V = g x g tokens with g dividing h and w (k = h / g,
each output token covers one k x k region): 1, 4, 16, 36, 64, 144, 576 on 24x24; 1, 4, 16, 64 on 8x8.
`forward(x, multi, query) -> [B, V, out_dim]` with x the single-level tokens [B, h*w, d], multi the multi-level
tokens [B, h*w, d_multi] and query the LLM's question embedding [B, llm_width] (used by QueCC only).
"""
from __future__ import annotations

import abc

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from leanvl.errors import LeanvlError
from leanvl.registry import Registry

COMPRESSORS: Registry[Callable[..., "Compressor"]] = Registry("compressor", flag="--compressor")


def register_compressor(name: str) -> Callable:
    """Class decorator adding a compressor to COMPRESSORS under `name`."""
    return COMPRESSORS.register(name)


def tile(grid: tuple[int, int], tokens: int) -> tuple[int, int]:
    """(g, k): output side g and region side k for `tokens` = g*g on `grid`; LeanvlError when it does not tile."""
    h, w = grid
    g = math.isqrt(tokens) if tokens > 0 else 0
    if tokens <= 0 or g * g != tokens or h % g or w % g or h // g != w // g:
        valid = [s * s for s in range(1, min(h, w) + 1) if h % s == 0 and w % s == 0 and h // s == w // s]
        raise LeanvlError(f"{tokens} visual tokens do not tile the {h}x{w} encoder grid; valid counts: "
                          f"{', '.join(map(str, valid))}")
    return g, h // g


def create_compressor(name: str, *, grid: tuple[int, int], tokens: int, dim: int, multi_dim: int,
                      query_dim: int) -> "Compressor":
    """Build a registered compressor; LeanvlError for an unknown name or a token count that does not tile."""
    return COMPRESSORS.create(name, grid=grid, tokens=tokens, dim=dim, multi_dim=multi_dim, query_dim=query_dim)


class Compressor(nn.Module):
    """Base: grid bookkeeping; subclasses set `out_dim` and implement forward(x, multi, query)."""

    needs_query = False

    def __init__(self, *, grid: tuple[int, int], tokens: int, dim: int, multi_dim: int, query_dim: int) -> None:
        super().__init__()
        self.grid, self.tokens, self.dim = tuple(grid), tokens, dim
        self.g, self.k = tile(grid, tokens)
        self.out_dim = dim

    def to_map(self, x: torch.Tensor) -> torch.Tensor:
        """[B, h*w, d] -> [B, d, h, w]."""
        b, _, d = x.shape
        return x.transpose(1, 2).reshape(b, d, *self.grid)

    def regions(self, x: torch.Tensor) -> torch.Tensor:
        """[B, h*w, d] -> [B*g*g, k*k, d]: the tokens of each output token's k x k region."""
        b, _, d = x.shape
        g, k = self.g, self.k
        x = x.reshape(b, g, k, g, k, d).permute(0, 1, 3, 2, 4, 5)
        return x.reshape(b * g * g, k * k, d)

    def region_mean(self, x: torch.Tensor) -> torch.Tensor:
        """[B, h*w, d] -> [B, g*g, d]: each output token's k x k region mean (the avgpool token)."""
        return self.regions(x).mean(1).reshape(x.shape[0], self.g * self.g, self.dim)


@register_compressor("none")
class NoCompressor(Compressor):
    """All h*w tokens, unchanged (the count must equal the grid size)."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        if self.k != 1:
            raise LeanvlError(f"compressor 'none' keeps all {self.grid[0] * self.grid[1]} tokens; got --tokens "
                              f"{self.tokens}")

    def forward(self, x: torch.Tensor, multi: torch.Tensor | None = None,
                query: torch.Tensor | None = None) -> torch.Tensor:
        return x


@register_compressor("avgpool")
class AvgPoolCompressor(Compressor):
    """k x k average pooling of the grid (no parameters)."""

    def forward(self, x: torch.Tensor, multi: torch.Tensor | None = None,
                query: torch.Tensor | None = None) -> torch.Tensor:
        pooled = F.avg_pool2d(self.to_map(x), self.k)
        return pooled.flatten(2).transpose(1, 2)


def _mlp(d_in: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_out), nn.GELU(), nn.Linear(d_out, d_out), nn.LayerNorm(d_out))


def _heads(dim: int, wanted: int = 8) -> int:
    return max(h for h in range(1, wanted + 1) if dim % h == 0)


class LocalCrossAttention(nn.Module):
    """Each downsampled query attends only to the k x k region it covers (multi-head, no residual)."""

    def __init__(self, dim: int, heads: int = 8) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, _heads(dim, heads), batch_first=True)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """queries [B*g*g, 1, d]; keys/values [B*g*g, k*k, d] -> [B*g*g, 1, d]."""
        out, _ = self.attn(queries, keys, values, need_weights=False)
        return out


class _CrossAttnCompressor(Compressor):
    """Shared part of TokenPacker and QueCC: query MLP, key/value MLPs on multi-level features, local attention."""

    def __init__(self, *, multi_dim: int, **kw) -> None:
        super().__init__(multi_dim=multi_dim, **kw)
        d = self.dim
        self.q_proj = _mlp(d, d)
        self.k_proj = _mlp(multi_dim, d)
        self.v_proj = _mlp(multi_dim, d)
        self.attn = LocalCrossAttention(d)

    @abc.abstractmethod
    def downsample(self, q: torch.Tensor) -> torch.Tensor:
        """Queries on the full grid [B, d, h, w] -> [B, d, g, g] (bilinear for TokenPacker, conv for QueCC)."""

    def attend(self, q_tokens: torch.Tensor, multi: torch.Tensor) -> torch.Tensor:
        """Query MLP -> downsample to g x g -> local cross-attention over the multi-level keys/values."""
        b = q_tokens.shape[0]
        q = self.downsample(self.to_map(self.q_proj(q_tokens)))          # [B, d, g, g]
        q = q.flatten(2).transpose(1, 2).reshape(b * self.g * self.g, 1, self.dim)
        keys = self.regions(self.k_proj(multi))
        values = self.regions(self.v_proj(multi))
        return self.attn(q, keys, values).reshape(b, self.g * self.g, self.dim)


@register_compressor("tokenpacker")
class TokenPacker(_CrossAttnCompressor):
    """TokenPacker: bilinear-interpolated queries, local cross-attention over multi-level keys."""

    def downsample(self, q: torch.Tensor) -> torch.Tensor:
        if self.k == 1:
            return q
        return F.interpolate(q, size=(self.g, self.g), mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor, multi: torch.Tensor | None = None,
                query: torch.Tensor | None = None) -> torch.Tensor:
        return self.attend(x, x if multi is None else multi)


@register_compressor("quecc")
class QueCC(_CrossAttnCompressor):
    """QueCC: the LLM's question embedding (Linear + LayerNorm) is added to every visual token, then query MLP,
    learnable depthwise k x k stride-k convolution, local cross-attention over multi-level keys/values."""

    needs_query = True

    def __init__(self, *, query_dim: int, **kw) -> None:
        super().__init__(query_dim=query_dim, **kw)
        d = self.dim
        self.inject = nn.Sequential(nn.Linear(query_dim, d), nn.LayerNorm(d))
        self.conv = nn.Conv2d(d, d, kernel_size=self.k, stride=self.k, groups=d)

    def downsample(self, q: torch.Tensor) -> torch.Tensor:
        """The depthwise k x k stride-k conv. For one output token (k = the whole grid) it is computed as a weighted
        sum with the same weights: the depthwise kernels of cuDNN and of the CPU are slow for such a large k
        (H100: 0.76 ms at k = 24 vs 0.2 ms at k <= 12; CPU: 2.3 ms vs 0.2 ms; benchmarks/RESULTS.md)."""
        if q.shape[-2:] != (self.k, self.k):
            return self.conv(q)
        weight = self.conv.weight.to(q.dtype).squeeze(1)  # [d, k, k]
        return (q * weight).sum(dim=(-2, -1), keepdim=True) + self.conv.bias.to(q.dtype).view(1, -1, 1, 1)

    def forward(self, x: torch.Tensor, multi: torch.Tensor | None = None,
                query: torch.Tensor | None = None) -> torch.Tensor:
        if query is None:
            raise LeanvlError("compressor 'quecc' needs the question embedding (query) of each sample")
        conditioned = x + self.inject(query.to(x.dtype)).unsqueeze(1)
        return self.attend(conditioned, x if multi is None else multi)


def _drop_constant_paths(comp: _CrossAttnCompressor) -> None:
    """Remove the value branch's learnable image-independent terms: the final value LayerNorm loses its affine
    (shift) and the attention's in/out projections lose their biases."""
    comp.v_proj[-1] = nn.LayerNorm(comp.dim, elementwise_affine=False)
    comp.attn.attn = nn.MultiheadAttention(comp.dim, comp.attn.attn.num_heads, batch_first=True, bias=False)


@register_compressor("quecc-res")
class QueCCResidual(QueCC):
    """QueCC made robust at extreme compression (not the paper's forward): the attention output is ADDED to the
    region's mean single-level token (the avgpool token), and the value branch has no learnable constant path
    (no value-LayerNorm shift, no attention biases). Trained plain QueCC collapses to a large image-independent
    token at 1 token (benchmarks/RESULTS.md); here the pooled image content is always in the token, and the
    query-conditioned attention can only add image-dependent (region-value) terms on top."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        _drop_constant_paths(self)

    def forward(self, x: torch.Tensor, multi: torch.Tensor | None = None,
                query: torch.Tensor | None = None) -> torch.Tensor:
        return self.region_mean(x) + super().forward(x, multi, query)


@register_compressor("quecc-gate")
class QueCCGated(QueCC):
    """QueCC as a gated residual on avgpool (not the paper's forward): token = region mean + gate * QueCC(x), with a
    per-channel gate initialised to 0 (ReZero / Flamingo-style), so the compressor starts as avgpool exactly and the
    query-conditioned attention enters only as far as training finds it useful. Plain QueCC at 1 token collapses to
    an image-independent token that the LLM learns to ignore (benchmarks/RESULTS.md); here the pooled content is the
    token at initialisation and the attention term cannot drown it before it has learned something."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.gate = nn.Parameter(torch.zeros(self.dim))

    def forward(self, x: torch.Tensor, multi: torch.Tensor | None = None,
                query: torch.Tensor | None = None) -> torch.Tensor:
        return self.region_mean(x) + self.gate.to(x.dtype) * super().forward(x, multi, query)
