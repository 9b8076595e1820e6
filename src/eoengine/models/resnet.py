"""ResNet-style encoders (He et al., 2016) built from basic residual blocks, any band count.

:class:`ResNetEncoder` returns one feature map per scale (full, 1/2, ..., 1/2**depth) for
the decoders (DeepLabV3+, FPN); :class:`ResNetClassifier` pools the deepest one into class
scores for scene/patch classification.
"""

from __future__ import annotations

import torch
from torch import nn

from eoengine.models.blocks import activation as make_activation
from eoengine.models.blocks import conv_unit


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with an identity (or 1x1 projection) shortcut."""

    def __init__(self, cin: int, cout: int, stride: int, act: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.act = make_activation(act)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual block output."""
        out = self.act(self.bn1(self.conv1(x)))
        return self.act(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNetEncoder(nn.Module):
    """Stem at full resolution, then ``depth`` stages that each halve the size.

    ``blocks`` gives the residual blocks per stage (ResNet-18 is ``[2, 2, 2, 2]``); stage
    ``i`` has ``base_channels * 2**(i+1)`` channels. ``channels`` lists the width of each
    returned feature map, finest first.
    """

    def __init__(
        self,
        in_channels: int,
        depth: int = 4,
        base_channels: int = 32,
        blocks: list[int] | None = None,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError("depth must be at least 1")
        blocks = blocks or [2] * depth
        if len(blocks) != depth:
            raise ValueError(f"blocks needs one entry per stage ({depth}), got {len(blocks)}")
        self.stem = conv_unit(in_channels, base_channels, 3, activation, True)
        self.stages = nn.ModuleList()
        self.channels = [base_channels]
        cin = base_channels
        for i, n in enumerate(blocks):
            cout = base_channels * 2 ** (i + 1)
            layers = [BasicBlock(cin if j == 0 else cout, cout, 2 if j == 0 else 1, activation) for j in range(n)]
            self.stages.append(nn.Sequential(*layers))
            self.channels.append(cout)
            cin = cout
        self.depth = depth

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps at scales 1, 1/2, ..., 1/2**depth."""
        feats = [self.stem(x)]
        for stage in self.stages:
            feats.append(stage(feats[-1]))
        return feats


class ResNetClassifier(nn.Module):
    """A ResNet encoder, global average pooling and a linear layer: (B, C, H, W) → (B, classes)."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        depth: int = 4,
        base_channels: int = 32,
        blocks: list[int] | None = None,
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.encoder = ResNetEncoder(in_channels, depth, base_channels, blocks, activation)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(self.encoder.channels[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores (B, classes) for each chip; any input size."""
        deepest = self.encoder(x)[-1]
        return self.fc(self.drop(deepest.mean(dim=(2, 3))))
