"""A fully convolutional stack of 3x3 convolutions (the servir-aces CNN).

Keeps full resolution throughout, so its receptive field grows by 2 pixels per layer:
local texture and context, without the cost of an encoder-decoder.
"""

from __future__ import annotations

import torch
from torch import nn

from eoengine.models.blocks import conv_unit


class CNN(nn.Module):
    """``layers`` 3x3 conv units of ``width`` channels, then a 1x1 classifier."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        width: int = 32,
        layers: int = 4,
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        units: list[nn.Module] = []
        cin = in_channels
        for _ in range(layers):
            units.append(conv_unit(cin, width, 3, activation, batch_norm, dropout))
            cin = width
        units.append(nn.Conv2d(cin, num_classes, 1))
        self.net = nn.Sequential(*units)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → logits (B, classes, H, W)."""
        return self.net(x)
