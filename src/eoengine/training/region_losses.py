"""Overlap losses (Dice, Jaccard, Tversky, focal Tversky, Lovász-softmax) and one-vs-rest BCE.

They score the overlap of predicted and true regions rather than each pixel alone, which
helps rare classes. All share :func:`soft_counts`: soft true positives, false positives and
false negatives per class over labelled pixels. Mean scores average the classes present in
the batch's targets, so a class absent from a batch neither helps nor hurts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from eoengine.labels import IGNORE


class Weighted(nn.Module):
    """A loss with an optional per-class weight buffer."""

    weight: torch.Tensor | None

    def __init__(self, weight: torch.Tensor | None) -> None:
        super().__init__()
        self.register_buffer("weight", weight)

    def class_mean(self, per_class: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Weighted mean over present classes (0 when none is present)."""
        w = (self.weight if self.weight is not None else torch.ones_like(per_class)) * present
        return (per_class * w).sum() / w.sum() if w.sum() > 0 else per_class.sum() * 0.0


def onehot_valid(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One-hot targets (B, K, H, W) and the labelled-pixel mask (B, 1, H, W)."""
    k = logits.shape[1]
    valid = (target != IGNORE).unsqueeze(1)
    onehot = F.one_hot(target.clamp(max=k - 1) * (target != IGNORE), k).permute(0, 3, 1, 2).to(logits.dtype)
    return onehot * valid, valid


def soft_counts(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Per-class soft (tp, fp, fn) over labelled pixels, and which classes are present."""
    onehot, valid = onehot_valid(logits, target)
    probs = logits.softmax(dim=1) * valid
    dims = (0, 2, 3)
    tp = (probs * onehot).sum(dims)
    fp = (probs * (1 - onehot)).sum(dims)
    fn = ((1 - probs) * onehot).sum(dims)
    return tp, fp, fn, onehot.sum(dims) > 0


class Tversky(Weighted):
    """1 - Tversky index tp / (tp + alpha fp + beta fn); alpha = beta = 0.5 is Dice."""

    def __init__(self, weight: torch.Tensor | None = None, alpha: float = 0.5, beta: float = 0.5,
                 smooth: float = 1.0, gamma: float = 1.0) -> None:
        super().__init__(weight)
        self.alpha, self.beta, self.smooth, self.gamma = alpha, beta, smooth, gamma

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean over present classes of (1 - Tversky index) ** gamma."""
        tp, fp, fn, present = soft_counts(logits, target)
        index = (tp + self.smooth) / (tp + self.alpha * fp + self.beta * fn + self.smooth)
        return self.class_mean((1 - index).clamp(min=0) ** self.gamma, present)


class Dice(Tversky):
    """Soft Dice loss: 1 - (2tp + smooth) / (2tp + fp + fn + smooth), the usual smoothing.

    As a Tversky index (alpha = beta = 0.5) that is (tp + smooth/2) / (tp + fp/2 + fn/2 + smooth/2).
    """

    def __init__(self, weight: torch.Tensor | None = None, smooth: float = 1.0) -> None:
        super().__init__(weight, 0.5, 0.5, smooth / 2)


class Jaccard(Tversky):
    """Soft Jaccard (IoU) loss: 1 - tp / (tp + fp + fn)."""

    def __init__(self, weight: torch.Tensor | None = None, smooth: float = 1.0) -> None:
        super().__init__(weight, 1.0, 1.0, smooth)


class FocalTversky(Tversky):
    """Focal Tversky (Abraham & Khan, 2019): (1 - Tversky index) ** gamma, gamma < 1 focuses on hard classes."""

    def __init__(self, weight: torch.Tensor | None = None, alpha: float = 0.3, beta: float = 0.7,
                 smooth: float = 1.0, gamma: float = 0.75) -> None:
        super().__init__(weight, alpha, beta, smooth, gamma)


class LovaszSoftmax(Weighted):
    """Lovász-softmax (Berman et al., 2018): a convex surrogate that optimises mean IoU directly."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean over present classes of the Lovász extension of the Jaccard loss."""
        k = logits.shape[1]
        keep = (target != IGNORE).reshape(-1)
        probs = logits.softmax(dim=1).permute(0, 2, 3, 1).reshape(-1, k)[keep]
        labels = target.reshape(-1)[keep]
        losses, present = [], []
        for c in range(k):
            fg = (labels == c).to(probs.dtype)
            present.append(bool(fg.sum() > 0))
            errors = (fg - probs[:, c]).abs()
            order = torch.argsort(errors, descending=True)
            fg_sorted = fg[order]
            inter = fg_sorted.sum() - fg_sorted.cumsum(0)
            union = fg_sorted.sum() + (1 - fg_sorted).cumsum(0)
            jaccard = 1 - inter / union.clamp(min=1e-12)
            grad = torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]]) if len(jaccard) else jaccard
            losses.append((errors[order] * grad).sum())
        return self.class_mean(torch.stack(losses), torch.tensor(present, device=logits.device))


class OneVsRestBCE(Weighted):
    """Binary cross-entropy of each class's sigmoid against its one-hot target (labelled pixels)."""

    def __init__(self, weight: torch.Tensor | None = None, pos_weight: float | None = None) -> None:
        super().__init__(weight)
        self.pos_weight = pos_weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean BCE over labelled pixels and classes."""
        onehot, valid = onehot_valid(logits, target)
        if not valid.any():
            return logits.sum() * 0.0
        pw = None if self.pos_weight is None else torch.tensor(self.pos_weight, device=logits.device)
        loss = F.binary_cross_entropy_with_logits(logits, onehot, reduction="none", pos_weight=pw)
        if self.weight is not None:
            loss = loss * self.weight.view(1, -1, 1, 1)
        return (loss * valid).sum() / (valid.sum() * logits.shape[1])
