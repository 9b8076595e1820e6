"""DeepLabV3+ (Chen et al., 2018) and FPN (Lin et al., 2017) on a ResNet-style encoder.

DeepLabV3+ runs atrous spatial pyramid pooling (ASPP) on the deepest features and fuses the
result with 1/4-scale features in a light decoder. FPN adds a top-down pathway with lateral
connections and merges every level. Both return logits at the input size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from eoengine.models.blocks import conv_unit
from eoengine.models.resnet import ResNetEncoder


def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    """Parallel atrous convolutions at several rates plus image-level pooling."""

    def __init__(self, cin: int, cout: int, rates: list[int], act: str) -> None:
        super().__init__()
        self.branches = nn.ModuleList([conv_unit(cin, cout, 1, act, True)])
        for r in rates:
            self.branches.append(nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=r, dilation=r, bias=False), nn.BatchNorm2d(cout), nn.ReLU()))
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1), nn.ReLU())
        self.project = conv_unit(cout * (len(rates) + 2), cout, 1, act, True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenate every branch and project."""
        outs = [b(x) for b in self.branches]
        outs.append(self.pool(x).expand(-1, -1, *x.shape[-2:]))
        return self.project(torch.cat(outs, dim=1))


class DeepLabV3Plus(nn.Module):
    """DeepLabV3+ with a ResNet encoder of ``depth`` stages; sides multiple of ``2**depth``."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        depth: int = 4,
        base_channels: int = 32,
        blocks: list[int] | None = None,
        aspp_channels: int = 128,
        atrous_rates: list[int] | None = None,
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError("DeepLabV3+ needs depth >= 2 (low-level features at 1/4 scale)")
        self.encoder = ResNetEncoder(in_channels, depth, base_channels, blocks, activation)
        self.aspp = ASPP(self.encoder.channels[-1], aspp_channels, atrous_rates or [1, 2, 3], activation)
        self.low = conv_unit(self.encoder.channels[2], 48, 1, activation, True)
        self.decoder = nn.Sequential(
            conv_unit(aspp_channels + 48, aspp_channels, 3, activation, True, dropout),
            conv_unit(aspp_channels, aspp_channels, 3, activation, True),
        )
        self.head = nn.Conv2d(aspp_channels, num_classes, 1)
        self.size_multiple = 2**depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → logits (B, classes, H, W)."""
        feats = self.encoder(x)
        low = self.low(feats[2])
        deep = _up(self.aspp(feats[-1]), low)
        return _up(self.head(self.decoder(torch.cat([deep, low], dim=1))), x)


class FPN(nn.Module):
    """Feature Pyramid Network segmentation head on a ResNet encoder."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        depth: int = 4,
        base_channels: int = 32,
        blocks: list[int] | None = None,
        pyramid_channels: int = 64,
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.encoder = ResNetEncoder(in_channels, depth, base_channels, blocks, activation)
        levels = self.encoder.channels[1:]
        self.lateral = nn.ModuleList([nn.Conv2d(c, pyramid_channels, 1) for c in levels])
        self.smooth = nn.ModuleList([conv_unit(pyramid_channels, pyramid_channels, 3, activation, True) for _ in levels])
        self.drop = nn.Dropout2d(dropout)
        self.head = nn.Conv2d(pyramid_channels, num_classes, 1)
        self.size_multiple = 2**depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → logits (B, classes, H, W)."""
        feats = self.encoder(x)[1:]
        top = self.lateral[-1](feats[-1])
        merged = [self.smooth[-1](top)]
        for i in range(len(feats) - 2, -1, -1):
            top = self.lateral[i](feats[i]) + _up(top, feats[i])
            merged.append(self.smooth[i](top))
        finest = merged[-1]
        fused = sum((_up(m, finest) for m in merged[:-1]), finest)
        return _up(self.head(self.drop(fused)), x)
