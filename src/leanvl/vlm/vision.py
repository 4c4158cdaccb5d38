"""The VLM's vision side: a leanvl Encoder read at a chosen layer (single-level) and at several layers (multi-level).

Single-level features x feed every compressor; multi-level features m (the listed layers' tokens, each resized to the
final grid, concatenated along channels) are TokenPacker/QueCC's keys and values. Layer indices follow the
encoder's `forward_layers` (negative counts from the last; -2 = second-to-last as in LLaVA).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from leanvl.errors import LeanvlError


def _to_grid(tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """[B, T, D] tokens of a square map -> [B, h*w, D] at the encoder's final grid (area-average or bilinear)."""
    b, t, d = tokens.shape
    if t == grid[0] * grid[1]:
        return tokens
    side = math.isqrt(t)
    if side * side != t:
        raise LeanvlError(f"cannot place {t} intermediate tokens on a square grid")
    fmap = tokens.transpose(1, 2).reshape(b, d, side, side)
    fmap = F.adaptive_avg_pool2d(fmap, grid) if side >= grid[0] else F.interpolate(fmap, size=grid, mode="bilinear")
    return fmap.flatten(2).transpose(1, 2)


class VisionTower:
    """Reads an Encoder (owned by the VLM, not registered here so its weights are stored once):
    `tower(images) -> (x [B, T, d], m [B, T, d_multi])`; attributes grid, dim, multi_dim."""

    def __init__(self, encoder: nn.Module, feature_layer: int | None = None,
                 multi_layers: list[int] | None = None) -> None:
        self.encoder = encoder
        self.feature_layer = feature_layer
        self.multi_layers = list(multi_layers) if multi_layers else None
        self.grid = tuple(encoder.grid)
        if (feature_layer is not None or self.multi_layers) and not hasattr(encoder, "forward_layers"):
            raise LeanvlError(f"encoder {getattr(encoder, 'name', '?')} cannot return intermediate layers")
        size = getattr(encoder, "image_size", 64)
        with torch.no_grad():
            was = encoder.training
            encoder.eval()
            x, m = self(torch.zeros(1, 3, size, size))
            encoder.train(was)
        self.dim, self.multi_dim = int(x.shape[-1]), int(m.shape[-1])

    def _depth(self) -> int | None:
        backbone = getattr(self.encoder, "backbone", None)
        for attr in ("blocks", "stages", "layers"):
            seq = getattr(backbone, attr, None)
            if isinstance(seq, (nn.ModuleList, nn.Sequential)):
                return len(seq)
        return None

    def _layers(self, images: torch.Tensor, indices: list[int]) -> dict[int, torch.Tensor]:
        """{index: tokens at the final grid} for the distinct `indices`, in one encoder pass when the depth is known."""
        depth = self._depth()
        try:
            if depth is None:
                return {i: _to_grid(self.encoder.forward_layers(images, [i])[0], self.grid) for i in indices}
            if any(not -depth <= i < depth for i in indices):
                raise LeanvlError(f"encoder layer list {indices} is out of range for {depth} layers")
            order = sorted({i % depth for i in indices})
            outs = self.encoder.forward_layers(images, order)
        except AttributeError:
            raise LeanvlError(f"encoder {getattr(self.encoder, 'name', '?')} cannot return intermediate layers; "
                              f"leave --feature-layer/--multi-layers empty") from None
        except (IndexError, ValueError, AssertionError) as exc:
            raise LeanvlError(f"bad encoder layer list {indices}: {str(exc).splitlines()[0]}") from None
        if len(outs) != len(order):
            raise LeanvlError(f"encoder returned {len(outs)} layers for the list {order}")
        by_depth = {d: _to_grid(o, self.grid) for d, o in zip(order, outs)}
        return {i: by_depth[i % depth] for i in indices}

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        wanted = ([self.feature_layer] if self.feature_layer is not None else []) + (self.multi_layers or [])
        if not wanted:
            x = self.encoder.forward_tokens(images)
            return x, x
        outs = self._layers(images, list(dict.fromkeys(wanted)))
        x = outs[self.feature_layer] if self.feature_layer is not None else self.encoder.forward_tokens(images)
        m = torch.cat([outs[i] for i in self.multi_layers], dim=-1) if self.multi_layers else x
        return x, m
