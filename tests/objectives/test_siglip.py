"""SigLIP: paper initialisation, and the loss equals open_clip's SigLipLoss (and the sigmoid formula)."""
import math

import pytest
import torch
from open_clip.loss import SigLipLoss

from leanvl.objectives.siglip import SigLIP


def test_siglip_init_and_loss_equal_open_clip(tiny_encoder):
    task = SigLIP(tiny_encoder)
    assert task.logit_scale.item() == pytest.approx(math.log(10)) and task.logit_bias.item() == -10.0
    g = torch.Generator().manual_seed(0)
    image = torch.nn.functional.normalize(torch.randn(12, 128, generator=g), dim=-1)
    text = torch.nn.functional.normalize(torch.randn(12, 128, generator=g), dim=-1)
    scale, bias = torch.tensor(7.5), torch.tensor(-3.0)
    out = task.loss_from_features({"image": image, "text": text, "logit_scale": scale, "logit_bias": bias})
    ref = SigLipLoss()(image, text, scale, bias)
    torch.testing.assert_close(out["loss"], ref, rtol=0, atol=1e-6)
    labels = 2 * torch.eye(12) - 1  # +1 matching pairs, -1 all others
    by_hand = -torch.nn.functional.logsigmoid(labels * (scale * image @ text.T + bias)).sum() / 12
    torch.testing.assert_close(out["loss"], by_hand, rtol=1e-6, atol=1e-6)


def test_siglip_forward_trains_scale_and_bias(tiny_encoder):
    task = SigLIP(tiny_encoder)
    batch = {"image": torch.randn(4, 3, 8, 8), "caption": ["a red circle", "a blue square", "a cat", "a dog"]}
    out = task(batch)
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and task.logit_bias.grad is not None and task.logit_scale.grad is not None
    assert out["logit_bias"].item() == -10.0
