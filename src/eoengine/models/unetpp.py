"""U-Net++ (Zhou et al., 2018): nested, densely connected skip pathways.

Each skip connection becomes a dense block of nested convolutions, so decoder features at
every depth see all shallower ones. Input sides must be multiples of ``2**depth``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from eoengine.models.unet import double_conv, widths


class UNetPlusPlus(nn.Module):
    """Nested U-Net: node X[i][j] = conv(cat(X[i][0..j-1], up(X[i+1][j-1])))."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        depth: int = 3,
        base_channels: int = 32,
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        w = widths(base_channels, depth)
        self.depth = depth
        self.pool = nn.MaxPool2d(2)
        self.nodes = nn.ModuleDict()
        for i in range(depth + 1):
            cin = in_channels if i == 0 else w[i - 1]
            self.nodes[f"{i}_0"] = double_conv(cin, w[i], activation, batch_norm, dropout if i == depth else 0.0)
        for j in range(1, depth + 1):
            for i in range(depth + 1 - j):
                self.nodes[f"{i}_{j}"] = double_conv(w[i] * j + w[i + 1], w[i], activation, batch_norm)
        self.head = nn.Conv2d(w[0], num_classes, 1)
        self.size_multiple = 2**depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → logits (B, classes, H, W)."""
        grid: dict[tuple[int, int], torch.Tensor] = {}
        for i in range(self.depth + 1):
            grid[i, 0] = self.nodes[f"{i}_0"](x if i == 0 else self.pool(grid[i - 1, 0]))
        for j in range(1, self.depth + 1):
            for i in range(self.depth + 1 - j):
                up = F.interpolate(grid[i + 1, j - 1], scale_factor=2.0, mode="bilinear", align_corners=False)
                grid[i, j] = self.nodes[f"{i}_{j}"](torch.cat([*(grid[i, k] for k in range(j)), up], dim=1))
        return self.head(grid[0, self.depth])
