"""`siglip`: the sigmoid contrastive baseline (Zhai et al. 2023) through open_clip's `SigLipLoss`.

Same towers as `clip` (leanvl.objectives.clip.Contrastive); the loss scores every image-text pair independently
with a sigmoid, so it needs no large batch. Learnable temperature t' and bias b, initialised as the paper does
(SigLipOptions: t' = log 10, i.e. scale exp(t') = 10, and b = -10); the scale is clamped to [0, ln 100] like CLIP's.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from leanvl.objective_options import SigLipOptions
from leanvl.objectives.clip import Contrastive
from leanvl.objectives.registry import World, register_objective

SIGLIP_SCALE_INIT = SigLipOptions.siglip_init_scale
SIGLIP_BIAS_INIT = SigLipOptions.siglip_init_bias


class SigLIP(Contrastive):
    """Image encoder + projection, open_clip text tower, sigmoid loss with learnable scale and bias."""

    def __init__(self, encoder: nn.Module, text_model: str = "leanvl-text-tiny", init_scale: float = SIGLIP_SCALE_INIT,
                 init_bias: float = SIGLIP_BIAS_INIT, **kw: Any) -> None:
        super().__init__(encoder, text_model, **kw)
        with torch.no_grad():
            self.logit_scale.fill_(init_scale)
        self.logit_bias = nn.Parameter(torch.tensor(float(init_bias)))

    def loss_fn(self) -> nn.Module:
        """open_clip's SigLipLoss for this process's rank / world size (neighbour exchange of text features)."""
        if self._loss is None:
            from open_clip.loss import SigLipLoss

            self._loss = SigLipLoss(rank=self.rank, world_size=self.world_size)
        return self._loss

    def forward(self, batch: dict[str, Any], features_only: bool = False) -> dict[str, torch.Tensor]:
        """The loss dict of `batch`; with `features_only`, its features (image, text, logit scale and bias)."""
        feats = super().forward(batch, features_only=True)
        feats["logit_bias"] = self.logit_bias.float()
        return feats if features_only else self.loss_from_features(feats)

    def pair_loss(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        """open_clip's sigmoid loss of the image and text features."""
        return self.loss_fn()(feats["image"], feats["text"], feats["logit_scale"], feats["logit_bias"])


@register_objective("siglip")
def build_siglip(encoder: nn.Module, opts: SigLipOptions, world: World) -> SigLIP:
    """SigLIP: `encoder` and an open_clip text tower, both trained, with the sigmoid loss."""
    return SigLIP(encoder, opts.text_model, init_scale=opts.siglip_init_scale, init_bias=opts.siglip_init_bias,
                  rank=world.rank, world_size=world.size)
