"""Losses for regression maps and multi-label chips.

Regression losses take predictions and targets of the same shape, with NaN in the target
marking pixels to skip (no reference value). Multi-label losses take logits (B, K) and
0/1 targets (B, K), one independent yes/no per class.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _Masked(nn.Module):
    """Base for regression losses: mean of ``pointwise`` over pixels with a finite target."""

    def pointwise(self, diff: torch.Tensor) -> torch.Tensor:
        """Loss per pixel from prediction - target."""
        raise NotImplementedError

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean loss over pixels whose target is known (0 if none)."""
        pred = pred.reshape(target.shape)
        valid = torch.isfinite(target)
        if not valid.any():
            return pred.sum() * 0.0
        return self.pointwise(pred[valid] - target[valid]).mean()


class MSE(_Masked):
    """Mean squared error."""

    def pointwise(self, diff: torch.Tensor) -> torch.Tensor:
        """diff²."""
        return diff * diff


class MAE(_Masked):
    """Mean absolute error (L1): robust to outliers, optimises the median."""

    def pointwise(self, diff: torch.Tensor) -> torch.Tensor:
        """|diff|."""
        return diff.abs()


class Huber(_Masked):
    """Huber loss: squared below ``delta``, linear above (in normalised target units)."""

    def __init__(self, delta: float = 1.0) -> None:
        super().__init__()
        if delta <= 0:
            raise ValueError("delta must be positive")
        self.delta = delta

    def pointwise(self, diff: torch.Tensor) -> torch.Tensor:
        """0.5 diff² if |diff| <= delta else delta (|diff| - delta / 2)."""
        a = diff.abs()
        return torch.where(a <= self.delta, 0.5 * diff * diff, self.delta * (a - 0.5 * self.delta))


class LogCosh(_Masked):
    """log(cosh(diff)): smooth like MSE near zero, linear like MAE far away."""

    def pointwise(self, diff: torch.Tensor) -> torch.Tensor:
        """Numerically stable log cosh."""
        a = diff.abs()
        return a + F.softplus(-2 * a) - torch.log(torch.tensor(2.0, dtype=diff.dtype, device=diff.device))


class Quantile(_Masked):
    """Pinball loss for the ``quantile`` (0.5 is half the MAE): predicts a percentile."""

    def __init__(self, quantile: float = 0.5) -> None:
        super().__init__()
        if not 0 < quantile < 1:
            raise ValueError("quantile must be between 0 and 1")
        self.quantile = quantile

    def pointwise(self, diff: torch.Tensor) -> torch.Tensor:
        """max(q (t - p), (q - 1)(t - p))."""
        err = -diff
        return torch.maximum(self.quantile * err, (self.quantile - 1) * err)


class MultilabelBCE(nn.Module):
    """Binary cross-entropy per class, with optional per-class positive weights."""

    def __init__(self, pos_weight: list[float] | None = None) -> None:
        super().__init__()
        self.pos_weight: torch.Tensor | None
        self.register_buffer("pos_weight", torch.tensor(pos_weight) if pos_weight else None)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean BCE over chips and classes."""
        return F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype), pos_weight=self.pos_weight)


class MultilabelFocal(nn.Module):
    """Sigmoid focal loss (Lin et al., 2017) per class: easy yes/no answers count less."""

    def __init__(self, gamma: float = 2.0, alpha: float | None = 0.25) -> None:
        super().__init__()
        self.gamma, self.alpha = gamma, alpha

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean focal loss over chips and classes."""
        t = target.to(logits.dtype)
        ce = F.binary_cross_entropy_with_logits(logits, t, reduction="none")
        p = torch.sigmoid(logits)
        p_t = p * t + (1 - p) * (1 - t)
        loss = ce * (1 - p_t) ** self.gamma
        if self.alpha is not None:
            loss = loss * (self.alpha * t + (1 - self.alpha) * (1 - t))
        return loss.mean()


class Asymmetric(nn.Module):
    """Asymmetric loss (Ridnik et al., 2021) for multi-label, where most labels are absent.

    Negatives are down-weighted (``gamma_neg``) and easy ones (probability below ``clip``) ignored.
    """

    def __init__(self, gamma_pos: float = 0.0, gamma_neg: float = 4.0, clip: float = 0.05) -> None:
        super().__init__()
        self.gamma_pos, self.gamma_neg, self.clip = gamma_pos, gamma_neg, clip

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean asymmetric loss over chips and classes."""
        t = target.to(logits.dtype)
        p = torch.sigmoid(logits)
        p_neg = (p - self.clip).clamp(min=0) if self.clip > 0 else p
        pos = t * (1 - p) ** self.gamma_pos * F.logsigmoid(logits)
        neg = (1 - t) * p_neg**self.gamma_neg * torch.log((1 - p_neg).clamp(min=1e-8))
        return -(pos + neg).mean()


REGRESSION_LOSSES: dict[str, type[nn.Module]] = {
    "mse": MSE, "mae": MAE, "huber": Huber, "log_cosh": LogCosh, "quantile": Quantile,
}
MULTILABEL_LOSSES: dict[str, type[nn.Module]] = {"bce": MultilabelBCE, "focal": MultilabelFocal, "asymmetric": Asymmetric}
