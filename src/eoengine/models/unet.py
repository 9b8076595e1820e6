"""U-Net (Ronneberger et al., 2015) and the variants that share its encoder and decoder.

The encoder halves resolution ``depth`` times while doubling width; the decoder upsamples
back and concatenates the encoder feature map of the same scale, so fine boundaries survive.
Attention U-Net (Oktay et al., 2018) gates each skip with a map computed from the coarser
decoder features. Input height and width must be multiples of ``2**depth``; the predictor
pads tiles to fit.
"""

from __future__ import annotations

import torch
from torch import nn

from eoengine.models.blocks import conv_unit


def double_conv(cin: int, cout: int, act: str, bn: bool, dropout: float = 0.0) -> nn.Sequential:
    """Two 3x3 conv units; dropout after the second."""
    return nn.Sequential(conv_unit(cin, cout, 3, act, bn), conv_unit(cout, cout, 3, act, bn, dropout))


def widths(base: int, depth: int) -> list[int]:
    """Channel widths per scale, finest first (``depth + 1`` entries)."""
    if depth < 1:
        raise ValueError("depth must be at least 1")
    return [base * 2**i for i in range(depth + 1)]


class UNetEncoder(nn.Module):
    """Double convs and max-pooling; returns the skip maps (finest first) and the bottom."""

    def __init__(self, in_channels: int, w: list[int], act: str, bn: bool, dropout: float) -> None:
        super().__init__()
        self.down = nn.ModuleList()
        cin = in_channels
        for width in w[:-1]:
            self.down.append(double_conv(cin, width, act, bn))
            cin = width
        self.pool = nn.MaxPool2d(2)
        self.bottom = double_conv(w[-2], w[-1], act, bn, dropout)

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """(skips, bottom)."""
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        return skips, self.bottom(x)


class AttentionGate(nn.Module):
    """Additive attention: weights a skip map by sigmoid(psi(relu(Wg g + Wx x)))."""

    def __init__(self, gate: int, skip: int, inner: int) -> None:
        super().__init__()
        self.wg = nn.Sequential(nn.Conv2d(gate, inner, 1), nn.BatchNorm2d(inner))
        self.wx = nn.Sequential(nn.Conv2d(skip, inner, 1), nn.BatchNorm2d(inner))
        self.psi = nn.Sequential(nn.Conv2d(inner, 1, 1), nn.BatchNorm2d(1), nn.Sigmoid())

    def forward(self, g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The skip map ``x`` scaled by the attention coefficients (same size as ``x``)."""
        return x * self.psi(torch.relu(self.wg(g) + self.wx(x)))


class UNetDecoder(nn.Module):
    """Transposed-conv upsampling, (gated) skip concatenation and double convs, then a 1x1 head.

    ``fan_in`` multiplies the widths of skips and bottom, for encoders whose maps were
    concatenated (fusion of several inputs).
    """

    def __init__(
        self, w: list[int], num_classes: int, act: str, bn: bool, attention: bool = False, fan_in: int = 1
    ) -> None:
        super().__init__()
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        self.gates = nn.ModuleList()
        cin = w[-1] * fan_in
        for width in reversed(w[:-1]):
            skip = width * fan_in
            self.up.append(nn.ConvTranspose2d(cin, width, 2, stride=2))
            self.gates.append(AttentionGate(width, skip, max(width // 2, 1)) if attention else nn.Identity())
            self.dec.append(double_conv(width + skip, width, act, bn))
            cin = width
        self.attention = attention
        self.head = nn.Conv2d(w[0], num_classes, 1)

    def forward(self, skips: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """Logits at the finest skip's size."""
        for up, gate, dec, skip in zip(self.up, self.gates, self.dec, reversed(skips), strict=True):
            g = up(x)
            x = dec(torch.cat([g, gate(g, skip) if self.attention else skip], dim=1))
        return self.head(x)


class UNet(nn.Module):
    """U-Net with configurable ``depth`` (down-samplings) and ``base_channels`` (width)."""

    attention = False

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
        w = widths(base_channels, depth)
        self.depth = depth
        self.encoder = UNetEncoder(in_channels, w, activation, batch_norm, dropout)
        self.decoder = UNetDecoder(w, num_classes, activation, batch_norm, self.attention)

    @property
    def size_multiple(self) -> int:
        """Input sides must be multiples of this."""
        return int(2**self.depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → logits (B, classes, H, W); H and W multiples of 2**depth."""
        return self.decoder(*self.encoder(x))


class AttentionUNet(UNet):
    """U-Net whose skip connections pass through attention gates."""

    attention = True
