"""Contrastive objectives: `clip` (image encoder + open_clip text tower, both trained) and `lit` (locked image
encoder from a finished run or export, text tower trained against it: zero-shot for SuperClass encoders).

Both use open_clip's `ClipLoss` (local loss + gather with grad when distributed) and a learnable logit scale
initialised to ln(1/0.07) and clamped to [0, ln 100] before each use (open_clip clamps after each step: same values).
"""
from __future__ import annotations

import math
import os
from typing import Any

import torch
from torch import nn

from leanvl.errors import LeanvlError
from leanvl.objectives.registry import register_objective
from leanvl.objectives.text_tower import TextEncoder

LOGIT_SCALE_INIT = math.log(1 / 0.07)
LOGIT_SCALE_MAX = math.log(100)


class Contrastive(nn.Module):
    """Image encoder + linear projection, open_clip text tower, CLIP loss; `locked` freezes the image encoder."""

    def __init__(self, encoder: nn.Module, text_model: str = "leanvl-text-tiny", locked: bool = False,
                 unlock: int = 0, local_loss: bool = True) -> None:
        super().__init__()
        self.local_loss = local_loss
        self.encoder = encoder
        self.text = TextEncoder(text_model)
        self.image_proj = nn.Linear(encoder.width, self.text.embed_dim, bias=False)
        nn.init.normal_(self.image_proj.weight, std=encoder.width ** -0.5)
        self.logit_scale = nn.Parameter(torch.tensor(LOGIT_SCALE_INIT))
        self.locked, self.unlocked_modules = locked, []
        if locked:
            self.encoder.requires_grad_(False)
            self.unlocked_modules = unlock_last_blocks(encoder, unlock)
        self._loss: nn.Module | None = None

    def train(self, mode: bool = True) -> "Contrastive":
        """Locked image layers always stay in eval mode (frozen BatchNorm statistics, no dropout)."""
        super().train(mode)
        if self.locked:
            self.encoder.eval()
            for module in self.unlocked_modules:
                module.train(mode)
        return self

    def loss_fn(self) -> nn.Module:
        """open_clip's ClipLoss, set up for this process's rank / world size on first use."""
        if self._loss is None:
            from open_clip.loss import ClipLoss

            from leanvl.train import distributed as dist

            self._loss = ClipLoss(local_loss=self.local_loss, gather_with_grad=True, cache_labels=True,
                                  rank=dist.rank(), world_size=dist.world_size())
        return self._loss

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """L2-normalised image embeddings [N, E]."""
        if self.locked and not self.unlocked_modules:
            with torch.no_grad():
                feats = self.encoder.forward_pooled(images)
        else:
            feats = self.encoder.forward_pooled(images)
        return nn.functional.normalize(self.image_proj(feats).float(), dim=-1)

    def encode_text(self, captions: list[str]) -> torch.Tensor:
        """L2-normalised text embeddings [N, E]."""
        return self.text(captions)

    def scale(self) -> torch.Tensor:
        """exp(logit_scale) after clamping the parameter to [0, ln 100]."""
        with torch.no_grad():
            self.logit_scale.clamp_(0, LOGIT_SCALE_MAX)
        return self.logit_scale.float().exp()

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        image = self.encode_image(batch["image"])
        text = self.encode_text(list(batch["caption"]))
        scale = self.scale()
        loss = self.loss_fn()(image, text, scale)
        with torch.no_grad():
            hits = (image @ text.T).argmax(1) == torch.arange(len(image), device=image.device)
        return {"loss": loss, "logit_scale": scale.detach(), "batch_i2t_top1": hits.float().mean()}


def block_list(encoder: nn.Module) -> list[nn.Module]:
    """The encoder backbone's sequence of blocks (timm `blocks` / `stages` / `layers`, else its children)."""
    backbone = getattr(encoder, "backbone", encoder)
    for attr in ("blocks", "stages", "layers"):
        seq = getattr(backbone, attr, None)
        if isinstance(seq, (nn.ModuleList, nn.Sequential)) and len(seq) > 0:
            return list(seq)
    return [m for m in backbone.children() if any(True for _ in m.parameters())]


def unlock_last_blocks(encoder: nn.Module, n: int) -> list[nn.Module]:
    """Make the last `n` blocks (and the final norm, when unlocking any) trainable; returns the unlocked modules."""
    blocks = block_list(encoder)
    if not 0 <= n <= len(blocks):
        raise LeanvlError(f"--lit-unlock must be in [0, {len(blocks)}] for this encoder, got {n}")
    if n == 0:
        return []
    modules = blocks[-n:]
    backbone = getattr(encoder, "backbone", encoder)
    modules += [getattr(backbone, a) for a in ("norm", "fc_norm") if isinstance(getattr(backbone, a, None), nn.Module)]
    for module in modules:
        module.requires_grad_(True)
    return modules


def load_image_encoder(path: str) -> nn.Module:
    """The image encoder of a pre-training run directory or a `leanvl export` directory."""
    from leanvl.models.export import CONFIG as EXPORT_CONFIG
    from leanvl.models.export import load_encoder
    from leanvl.train.pretrain import load_run

    if not os.path.isdir(path):
        raise LeanvlError(f"--lit-encoder {path}: no such directory (give a run directory or a `leanvl export`)")
    if os.path.isfile(os.path.join(path, EXPORT_CONFIG)):
        return load_encoder(path)
    task, _ = load_run(path)
    return task.encoder


@register_objective("clip")
def build_clip(cfg: Any) -> Contrastive:
    """CLIP baseline for a PretrainConfig (model, image_size, pretrained, text_model)."""
    from leanvl.models import create_encoder

    encoder = create_encoder(cfg.model, image_size=cfg.image_size, pretrained=cfg.pretrained or None)
    return Contrastive(encoder, cfg.text_model, local_loss=cfg.clip_local_loss)


@register_objective("lit")
def build_lit(cfg: Any) -> Contrastive:
    """LiT for a PretrainConfig: lock the encoder of `lit_encoder` (unlock the last `lit_unlock` blocks)."""
    if not cfg.lit_encoder:
        raise LeanvlError("--objective lit needs --lit-encoder RUN_DIR (or a `leanvl export` directory)")
    encoder = load_image_encoder(cfg.lit_encoder)
    size = getattr(encoder, "image_size", cfg.image_size)
    if size != cfg.image_size:
        raise LeanvlError(f"--image-size {cfg.image_size} differs from the locked encoder's {size}px; "
                          f"pass --image-size {size}")
    return Contrastive(encoder, cfg.text_model, locked=True, unlock=cfg.lit_unlock, local_loss=cfg.clip_local_loss)
