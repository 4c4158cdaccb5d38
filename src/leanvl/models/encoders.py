"""Image encoders behind one interface, from a registry of names.

Names: leanvl built-ins (`leanvl_convnet`, `leanvl_vit_tiny`, ...), any timm model name, `open_clip:<model>` (an
open_clip model's image tower), or a directory written by `leanvl export`. Nothing is downloaded unless the user
asks for a hub name with `pretrained`.
"""
from __future__ import annotations

import contextlib
import os
import pickle
from typing import Any, Callable, Iterator

import torch
from torch import nn

from leanvl.errors import LeanvlError
from leanvl.models.convnet import ConvNet
from leanvl.models.weights import CONFIG, WEIGHTS, load_state_file
from leanvl.registry import Registry

# name -> backbone constructor `fn(image_size, **kw) -> nn.Module` (leanvl's built-ins; timm names need no entry).
ENCODERS: Registry[Callable[..., nn.Module]] = Registry("encoder")
OTHER_ENCODERS = "any timm model name, open_clip:NAME or a `leanvl export` directory"


def register_encoder(name: str) -> Callable:
    """Decorator: add a backbone constructor `fn(image_size, **kw) -> nn.Module` under `name`."""
    return ENCODERS.register(name)


@register_encoder("leanvl_convnet")
def _convnet(image_size: int, **kw: Any) -> nn.Module:
    return ConvNet(**kw)


@register_encoder("leanvl_convnet_wide")
def _convnet_wide(image_size: int, **kw: Any) -> nn.Module:
    return ConvNet(widths=(48, 96, 192, 384), **kw)


def _timm_vit(depth: int, width: int, heads: int, patch: int) -> Callable[..., nn.Module]:
    def build(image_size: int, **kw: Any) -> nn.Module:
        import timm

        return timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, img_size=image_size,
                                 patch_size=patch, depth=depth, embed_dim=width, num_heads=heads, **kw)

    return build


register_encoder("leanvl_vit_tiny")(_timm_vit(depth=6, width=192, heads=3, patch=8))
register_encoder("leanvl_vit_small")(_timm_vit(depth=8, width=384, heads=6, patch=8))


class Encoder(nn.Module):
    """A backbone with a uniform feature API: spatial tokens, pooled features, intermediate layers."""

    def __init__(self, backbone: nn.Module, name: str, image_size: int, build_kwargs: dict | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.name = name
        self.image_size = image_size
        self.build_kwargs = dict(build_kwargs or {})
        self.num_prefix_tokens = int(getattr(backbone, "num_prefix_tokens", 0))
        with torch.no_grad():
            was_training = backbone.training
            backbone.eval()
            probe = self._feature_map(torch.zeros(1, 3, image_size, image_size))
            backbone.train(was_training)
        self.width = int(probe.shape[1])
        self.grid = (int(probe.shape[2]), int(probe.shape[3]))

    def _feature_map(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.backbone.forward_features(x)
        if feats.ndim == 4:
            return feats
        tokens = feats[:, self.num_prefix_tokens:]
        side = int(round(tokens.shape[1] ** 0.5))
        return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], side, tokens.shape[1] // side)

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Final spatial tokens [B, T, D] (no class/prefix tokens), T = grid h * w."""
        return self._feature_map(x).flatten(2).transpose(1, 2)

    def forward_pooled(self, x: torch.Tensor) -> torch.Tensor:
        """Mean of the final spatial tokens [B, D] (SuperClass pooling: prefix tokens excluded)."""
        return self._feature_map(x).mean(dim=(2, 3))

    def forward_layers(self, x: torch.Tensor, indices: list[int]) -> list[torch.Tensor]:
        """Spatial tokens [B, T, D_i] of the listed layers (negative indices count from the last layer)."""
        maps = self.backbone.forward_intermediates(x, indices=indices, intermediates_only=True) \
            if not isinstance(self.backbone, ConvNet) else self.backbone.forward_intermediates(x, indices)
        return [m.flatten(2).transpose(1, 2) for m in maps]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_pooled(x)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Enable activation checkpointing in the backbone when it supports it."""
        if hasattr(self.backbone, "set_grad_checkpointing"):
            self.backbone.set_grad_checkpointing(enable)

    def config(self) -> dict:
        """JSON-able description that `create_encoder(**config)` turns back into this architecture."""
        return {"name": self.name, "image_size": self.image_size, "build_kwargs": self.build_kwargs,
                "width": self.width, "grid": list(self.grid)}


def _build_timm(name: str, image_size: int, pretrained: str | None, kw: dict) -> nn.Module:
    import timm

    if not timm.is_model(name):
        raise ENCODERS.unknown(name, also=OTHER_ENCODERS)
    extra: dict[str, Any] = {}
    if pretrained:
        if os.path.exists(pretrained):
            extra["pretrained_cfg_overlay"] = {"file": os.path.abspath(pretrained)}
        elif pretrained != "hub":
            raise LeanvlError(f"pretrained weights '{pretrained}' not found (give a local file, or 'hub')")
    with _weights_errors(name, pretrained):
        try:
            return timm.create_model(name, pretrained=bool(pretrained), num_classes=0, img_size=image_size, **extra,
                                     **kw)
        except TypeError:  # CNNs take no img_size
            return timm.create_model(name, pretrained=bool(pretrained), num_classes=0, **extra, **kw)


@contextlib.contextmanager
def _weights_errors(name: str, pretrained: str | None) -> Iterator[None]:
    """Loading weights for `name`: a refused pickle, an offline hub or a damaged/mismatched file is one line."""
    if not pretrained:
        yield
        return
    try:
        yield
    except LeanvlError:
        raise
    except (pickle.UnpicklingError, OSError, ValueError, RuntimeError, KeyError, EOFError) as exc:
        if pretrained == "hub":
            why = "the model hub is unreachable or offline (HF_HUB_OFFLINE)" if isinstance(exc, OSError) else "failed"
            raise LeanvlError(f"--pretrained hub for '{name}': {why}: {str(exc).splitlines()[0][:120]}") from None
        raise LeanvlError(f"--pretrained {pretrained}: cannot load it into '{name}' (leanvl never unpickles "
                          f"arbitrary objects): {str(exc).splitlines()[0][:120]}") from None


def _load_builtin_weights(backbone: nn.Module, name: str, pretrained: str) -> None:
    """Local weights (safetensors or a plain-tensor torch file, as `leanvl export` writes) for a built-in encoder."""
    if pretrained == "hub" or not os.path.isfile(pretrained):
        raise LeanvlError(f"--pretrained {pretrained}: built-in encoder '{name}' takes a local weights file "
                          f"(no hub weights exist for it)")
    state = load_state_file(pretrained)
    state = {k[len("backbone."):] if k.startswith("backbone.") else k: v for k, v in state.items()}
    try:
        missing, unexpected = backbone.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise LeanvlError(f"--pretrained {pretrained}: does not fit '{name}': {str(exc).splitlines()[0][:120]}") \
            from None
    if missing or unexpected:
        raise LeanvlError(f"--pretrained {pretrained}: does not fit '{name}' (missing {len(missing)}, unexpected "
                          f"{len(unexpected)} keys)")


class _OpenClipVisual(nn.Module):
    """open_clip image tower with timm-like `forward_features` returning all tokens."""

    def __init__(self, visual: nn.Module) -> None:
        super().__init__()
        self.visual = visual
        self.visual.output_tokens = True
        self.num_prefix_tokens = 0

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        _, tokens = self.visual(x)
        return tokens

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.visual.set_grad_checkpointing(enable)


def _build_open_clip(name: str, pretrained: str | None) -> nn.Module:
    import open_clip

    if name not in open_clip.list_models():
        raise LeanvlError(f"unknown open_clip model '{name}'")
    with _weights_errors(name, pretrained):
        model = open_clip.create_model(name, pretrained=pretrained or None)
    return _OpenClipVisual(model.visual)


def create_encoder(name: str, image_size: int = 64, pretrained: str | None = None,
                   build_kwargs: dict | None = None, **_: Any) -> Encoder:
    """Build an encoder by name (leanvl built-in, timm, `open_clip:NAME`, or a `leanvl export` directory)."""
    kw = dict(build_kwargs or {})
    if os.path.isdir(name):
        return load_encoder(name)
    if name in ENCODERS:
        backbone = ENCODERS.create(name, image_size, **kw)
        if pretrained:
            _load_builtin_weights(backbone, name, pretrained)
    elif name.startswith("open_clip:"):
        backbone = _build_open_clip(name.split(":", 1)[1], pretrained)
    else:
        backbone = _build_timm(name, image_size, pretrained, kw)
    try:
        return Encoder(backbone, name, image_size, kw)
    except RuntimeError as exc:
        raise LeanvlError(f"encoder '{name}' cannot take {image_size}px images: {str(exc).splitlines()[0]}") from None


def load_encoder(path: str) -> Encoder:
    """Rebuild an encoder exported by `leanvl export` (a directory with encoder.json + model.safetensors)."""
    import json

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
