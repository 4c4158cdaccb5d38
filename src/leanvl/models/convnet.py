"""A small CNN encoder that learns within a CPU budget (see CALIBRATION: small ViTs need far more steps)."""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint


def _block(cin: int, cout: int, pool: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.GELU()]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class ConvNet(nn.Module):
    """4 conv blocks (32-64-128-192 by default, BN, GELU, 2x max-pool after the first three): stride 8.

    Mirrors timm's feature API: `forward_features(x) -> [B, C, H/8, W/8]`, `num_features`,
    `forward_intermediates(x, indices)` and `set_grad_checkpointing`.
    """

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 192), in_chans: int = 3) -> None:
        super().__init__()
        chans = (in_chans,) + tuple(widths)
        self.blocks = nn.ModuleList(
            _block(chans[i], chans[i + 1], pool=i < len(widths) - 1) for i in range(len(widths))
        )
        self.num_features = widths[-1]
        self.stride = 2 ** (len(widths) - 1)
        self.grad_checkpointing = False

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute block activations in the backward pass to save memory."""
        self.grad_checkpointing = enable

    def _run(self, block: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.grad_checkpointing and self.training and x.requires_grad:
            return checkpoint(block, x, use_reentrant=False)
        return block(x)

    def forward_intermediates(self, x: torch.Tensor, indices: list[int]) -> list[torch.Tensor]:
        """Feature maps [B, C_i, H_i, W_i] after the blocks listed in `indices` (negative counts from the end)."""
        wanted = {i % len(self.blocks) for i in indices}
        out = []
        for i, block in enumerate(self.blocks):
            x = self._run(block, x)
            if i in wanted:
                out.append(x)
        return out

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Final feature map [B, C, H/stride, W/stride]."""
        for block in self.blocks:
            x = self._run(block, x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x).mean(dim=(2, 3))
