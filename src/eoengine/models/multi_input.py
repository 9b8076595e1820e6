"""Models whose input is several stacks: two dates (change detection) or several sensors (fusion).

Inputs arrive as one tensor (B, C, H, W) whose channels are the stacks one after another,
as the dataset stores them; these models split the channels themselves.

- :class:`SiameseUNet` (FC-Siam-diff, Daudt et al., 2018): one encoder with shared weights
  runs on each date; the decoder sees the absolute difference of their features per scale.
- :class:`FusionUNet`: one encoder per input group (e.g. optical and radar bands, each with
  its own statistics), features concatenated per scale into one decoder (mid-level fusion).
"""

from __future__ import annotations

import torch
from torch import nn

from eoengine.models.unet import UNetDecoder, UNetEncoder, widths


class SiameseUNet(nn.Module):
    """Change detection: (B, timesteps*C, H, W) → logits (B, classes, H, W)."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        timesteps: int = 2,
        depth: int = 3,
        base_channels: int = 32,
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        if timesteps != 2 or in_channels % 2:
            raise ValueError(f"a Siamese U-Net takes two dates of equal bands; got {timesteps} dates, {in_channels} channels")
        w = widths(base_channels, depth)
        self.encoder = UNetEncoder(in_channels // 2, w, activation, batch_norm, dropout)
        self.decoder = UNetDecoder(w, num_classes, activation, batch_norm)
        self.size_multiple = 2**depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode both dates with the same weights, decode their feature differences."""
        a, b = x.chunk(2, dim=1)
        (skips_a, bottom_a), (skips_b, bottom_b) = self.encoder(a), self.encoder(b)
        skips = [(sa - sb).abs() for sa, sb in zip(skips_a, skips_b, strict=True)]
        return self.decoder(skips, (bottom_a - bottom_b).abs())


class FusionUNet(nn.Module):
    """One U-Net encoder per channel group; ``input_groups`` lists each group's channel indices."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        input_groups: list[list[int]] | None = None,
        depth: int = 3,
        base_channels: int = 32,
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        groups = input_groups or [list(range(in_channels))]
        flat = sorted(i for g in groups for i in g)
        if flat != list(range(in_channels)):
            raise ValueError(f"input_groups must cover channels 0..{in_channels - 1} exactly once, got {groups}")
        self.groups = [list(g) for g in groups]
        w = widths(base_channels, depth)
        self.encoders = nn.ModuleList([UNetEncoder(len(g), w, activation, batch_norm, dropout) for g in groups])
        self.decoder = UNetDecoder(w, num_classes, activation, batch_norm, fan_in=len(groups))
        self.size_multiple = 2**depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode each group apart, concatenate per scale, decode once."""
        outs = [enc(x[:, g]) for enc, g in zip(self.encoders, self.groups, strict=True)]
        skips = [torch.cat(level, dim=1) for level in zip(*(o[0] for o in outs), strict=True)]
        return self.decoder(skips, torch.cat([o[1] for o in outs], dim=1))
