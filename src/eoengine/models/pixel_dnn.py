"""Per-pixel dense network (the servir-aces DNN), run as 1x1 convolutions.

Each pixel's band vector goes through the same dense layers, so the model classifies single
pixels (point samples, 1x1 patches) and whole patches or scenes alike, with no spatial context.
"""

from __future__ import annotations

import torch
from torch import nn

from eoengine.models.blocks import conv_unit


class PixelDNN(nn.Module):
    """Dense layers over bands, applied to every pixel independently."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        hidden: tuple[int, ...] | list[int] = (64, 64, 32),
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for width in hidden:
            layers.append(conv_unit(cin, int(width), 1, activation, batch_norm, dropout))
            cin = int(width)
        layers.append(nn.Conv2d(cin, num_classes, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → logits (B, classes, H, W)."""
        return self.net(x)
