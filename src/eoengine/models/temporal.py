"""Pixel time-series classifiers: each pixel's stack of dates is one sequence.

Inputs are (B, T*C, H, W) with the channels of date 1 first, then date 2, and so on (the
dataset's order). :class:`TempCNN` (Pelletier et al., 2019) convolves along time only, as a
3-D convolution with a (k, 1, 1) kernel, so pixels never mix; :class:`PixelLSTM` runs a
(bi)LSTM over each pixel's dates. Both return logits per pixel at the input size.
"""

from __future__ import annotations

import torch
from torch import nn

from eoengine.models.blocks import activation as make_activation


def _split_time(x: torch.Tensor, timesteps: int) -> torch.Tensor:
    b, c, h, w = x.shape
    if c % timesteps:
        raise ValueError(f"{c} channels do not split into {timesteps} dates")
    return x.reshape(b, timesteps, c // timesteps, h, w)


class TempCNN(nn.Module):
    """Temporal 1-D convolutions per pixel, then a dense layer over the flattened sequence."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        timesteps: int = 2,
        width: int = 64,
        layers: int = 3,
        kernel_size: int = 5,
        hidden: int = 128,
        activation: str = "relu",
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if in_channels % timesteps:
            raise ValueError(f"{in_channels} channels do not split into {timesteps} dates")
        self.timesteps = timesteps
        convs: list[nn.Module] = []
        cin = in_channels // timesteps
        for _ in range(layers):
            convs += [
                nn.Conv3d(cin, width, (kernel_size, 1, 1), padding=(kernel_size // 2, 0, 0), bias=False),
                nn.BatchNorm3d(width), make_activation(activation), nn.Dropout(dropout),
            ]
            cin = width
        self.convs = nn.Sequential(*convs)
        self.dense = nn.Sequential(
            nn.Conv2d(width * timesteps, hidden, 1, bias=False), nn.BatchNorm2d(hidden),
            make_activation(activation), nn.Dropout(dropout), nn.Conv2d(hidden, num_classes, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T*C, H, W) → logits (B, classes, H, W)."""
        seq = _split_time(x, self.timesteps).transpose(1, 2)  # (B, C, T, H, W)
        feats = self.convs(seq)  # (B, width, T, H, W)
        b, _, _, h, w = feats.shape
        return self.dense(feats.reshape(b, -1, h, w))


class PixelLSTM(nn.Module):
    """An LSTM over each pixel's dates; the last step's state (both directions) is classified."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        timesteps: int = 2,
        hidden: int = 64,
        layers: int = 2,
        bidirectional: bool = True,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if in_channels % timesteps:
            raise ValueError(f"{in_channels} channels do not split into {timesteps} dates")
        self.timesteps = timesteps
        self.lstm = nn.LSTM(in_channels // timesteps, hidden, layers, batch_first=True,
                            dropout=dropout if layers > 1 else 0.0, bidirectional=bidirectional)
        self.head = nn.Linear(hidden * (2 if bidirectional else 1), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T*C, H, W) → logits (B, classes, H, W)."""
        b, _, h, w = x.shape
        seq = _split_time(x, self.timesteps).permute(0, 3, 4, 1, 2).reshape(b * h * w, self.timesteps, -1)
        out, _ = self.lstm(seq)
        hidden = self.lstm.hidden_size
        last = torch.cat([out[:, -1, :hidden], out[:, 0, hidden:]], dim=1) if self.lstm.bidirectional else out[:, -1]
        return self.head(last).reshape(b, h, w, -1).permute(0, 3, 1, 2)
