"""U-Net (Ronneberger et al., 2015): an encoder-decoder with skip connections.

The encoder halves resolution ``depth`` times while doubling width; the decoder upsamples
back and concatenates the encoder feature map of the same scale, so fine boundaries survive.
Input height and width must be multiples of ``2**depth``; the predictor pads tiles to fit.
"""

from __future__ import annotations

import torch
from torch import nn

from eoengine.models.blocks import conv_unit


class _DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int, act: str, bn: bool, dropout: float) -> None:
        super().__init__(conv_unit(cin, cout, 3, act, bn), conv_unit(cout, cout, 3, act, bn, dropout))


class UNet(nn.Module):
    """U-Net with configurable ``depth`` (down-samplings) and ``base_channels`` (width)."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        depth: int = 4,
        base_channels: int = 32,
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError("depth must be at least 1")
        widths = [base_channels * 2**i for i in range(depth + 1)]
        self.depth = depth
        self.down = nn.ModuleList()
        cin = in_channels
        for w in widths[:-1]:
            self.down.append(_DoubleConv(cin, w, activation, batch_norm, 0.0))
            cin = w
        self.pool = nn.MaxPool2d(2)
        self.bottom = _DoubleConv(widths[-2], widths[-1], activation, batch_norm, dropout)
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for w_hi, w in zip(reversed(widths[1:]), reversed(widths[:-1]), strict=True):
            self.up.append(nn.ConvTranspose2d(w_hi, w, 2, stride=2))
            self.dec.append(_DoubleConv(2 * w, w, activation, batch_norm, 0.0))
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    @property
    def size_multiple(self) -> int:
        """Input sides must be multiples of this."""
        return int(2**self.depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → logits (B, classes, H, W); H and W multiples of 2**depth."""
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottom(x)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips), strict=True):
            x = dec(torch.cat([up(x), skip], dim=1))
        return self.head(x)
