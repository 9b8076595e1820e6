"""A custom loss: an nn.Module called as ``loss(logits, target)``.

For maps, logits are (B, K, H, W) and target (B, H, W) with 255 marking unlabelled pixels
that must not count. If the constructor takes ``weight``, eoengine passes the class
weights chosen by ``training.loss.class_weights``; other arguments come from
``training.loss.kwargs``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

IGNORE = 255


class BoundaryWeightedCE(nn.Module):
    """Cross-entropy that counts pixels next to a class boundary ``boundary_weight`` times."""

    def __init__(self, weight: torch.Tensor | None = None, boundary_weight: float = 3.0) -> None:
        super().__init__()
        self.weight: torch.Tensor | None
        self.register_buffer("weight", weight)
        self.boundary_weight = boundary_weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean weighted cross-entropy over labelled pixels."""
        valid = target != IGNORE
        if not valid.any():
            return logits.sum() * 0.0
        per_pixel = F.cross_entropy(logits, target, weight=self.weight, ignore_index=IGNORE, reduction="none")
        t = target.float()[:, None]
        neighbours = F.max_pool2d(t, 3, 1, 1) != -F.max_pool2d(-t, 3, 1, 1)  # a different label within 1 px
        scale = 1.0 + (self.boundary_weight - 1.0) * neighbours[:, 0].float()
        return (per_pixel * scale)[valid].sum() / scale[valid].sum()
