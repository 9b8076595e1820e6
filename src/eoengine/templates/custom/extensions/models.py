"""A custom model: any nn.Module whose constructor takes ``in_channels`` and ``num_classes``.

eoengine passes the dataset's channel count and the task's output count, plus the kwargs
from ``model.kwargs`` in the config (unknown ones are refused with the valid list). It may
also accept ``activation``, ``dropout``, ``batch_norm``, ``timesteps`` and ``input_groups``,
which eoengine fills from the config and the dataset. Return logits (B, num_classes, H, W)
for maps, or (B, num_classes) for chip classification. Set ``size_multiple`` if input
sides must be multiples of something (the predictor pads tiles to fit).
"""

from __future__ import annotations

import torch
from torch import nn


class SmallUNet(nn.Module):
    """A two-level U-Net with residual 3x3 blocks, as a starting point to edit."""

    size_multiple = 4

    def __init__(self, in_channels: int, num_classes: int, width: int = 16, dropout: float = 0.0) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
                                 nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU())

        self.enc1, self.enc2, self.mid = block(in_channels, width), block(width, 2 * width), block(2 * width, 4 * width)
        self.pool = nn.MaxPool2d(2)
        self.up2, self.dec2 = nn.ConvTranspose2d(4 * width, 2 * width, 2, stride=2), block(4 * width, 2 * width)
        self.up1, self.dec1 = nn.ConvTranspose2d(2 * width, width, 2, stride=2), block(2 * width, width)
        self.drop = nn.Dropout2d(dropout)
        self.head = nn.Conv2d(width, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> logits (B, classes, H, W)."""
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        m = self.drop(self.mid(self.pool(e2)))
        d2 = self.dec2(torch.cat([self.up2(m), e2], 1))
        return self.head(self.dec1(torch.cat([self.up1(d2), e1], 1)))
