"""Contrastive objectives: `clip` (image encoder + open_clip text tower, both trained) and `lit` (locked image
encoder from a finished run or export, text tower trained against it: zero-shot for SuperClass encoders).

Both use open_clip's `ClipLoss` (local loss + gather with grad when distributed) and a learnable logit scale
initialised to ln(1/0.07) and clamped to [0, ln 100] before each use (open_clip clamps after each step: same values).
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from leanvl.errors import LeanvlError
from leanvl.objective_options import ClipOptions, LitOptions
from leanvl.objectives.registry import World, register_objective
from leanvl.objectives.text_tower import TextEncoder

LOGIT_SCALE_INIT = math.log(1 / 0.07)
LOGIT_SCALE_MAX = math.log(100)


class Contrastive(nn.Module):
    """Image encoder + linear projection, open_clip text tower, CLIP loss; `locked` freezes the image encoder."""

    def __init__(self, encoder: nn.Module, text_model: str = "leanvl-text-tiny", locked: bool = False,
                 unlock: int = 0, local_loss: bool = True, rank: int = 0, world_size: int = 1) -> None:
        super().__init__()
        self.local_loss, self.rank, self.world_size = local_loss, rank, world_size
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

            self._loss = ClipLoss(local_loss=self.local_loss, gather_with_grad=True, cache_labels=True,
                                  rank=self.rank, world_size=self.world_size)
        return self._loss

    def set_grad_checkpointing(self, enable: bool) -> None:
        """Recompute the image encoder's activations in backward (trainer hook)."""
        self.encoder.set_grad_checkpointing(enable)

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

    def forward(self, batch: dict[str, Any], features_only: bool = False) -> dict[str, torch.Tensor]:
        """The loss dict of `batch`; with `features_only`, its features (leanvl.train.accumulate's protocol)."""
        feats = {"image": self.encode_image(batch["image"]), "text": self.encode_text(list(batch["caption"])),
                 "logit_scale": self.scale()}
        return feats if features_only else self.loss_from_features(feats)

    def loss_from_features(self, feats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Loss and logged scalars of (possibly concatenated, partly cached) features of one batch."""
        image, text = feats["image"], feats["text"]
        loss = self.pair_loss(feats)
        with torch.no_grad():
            hits = (image @ text.T).argmax(1) == torch.arange(len(image), device=image.device)
        shared = {k: v.detach() for k, v in feats.items() if v.ndim == 0}  # logit scale (and bias)
        return {"loss": loss, **shared, "batch_i2t_top1": hits.float().mean()}

    def pair_loss(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        """open_clip's CLIP loss of the image and text features."""
        return self.loss_fn()(feats["image"], feats["text"], feats["logit_scale"])


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


@register_objective("clip")
def build_clip(encoder: nn.Module, opts: ClipOptions, world: World) -> Contrastive:
    """CLIP: `encoder` and an open_clip text tower, both trained."""
    return Contrastive(encoder, opts.text_model, local_loss=opts.clip_local_loss, rank=world.rank,
                       world_size=world.size)


@register_objective("lit")
def build_lit(encoder: nn.Module, opts: LitOptions, world: World) -> Contrastive:
    """LiT: lock `encoder` (the wiring loads it from `opts.lit_encoder`), unlock its last `lit_unlock` blocks."""
    return Contrastive(encoder, opts.text_model, locked=True, unlock=opts.lit_unlock,
                       local_loss=opts.clip_local_loss, rank=world.rank, world_size=world.size)
