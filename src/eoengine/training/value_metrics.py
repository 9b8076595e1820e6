"""Metrics for regression maps and multi-label chips, accumulated by torchmetrics.

Regression scores are computed in the target's own units (the task de-normalises before
updating) over pixels with a reference value; multi-label scores average over classes.
"""

from __future__ import annotations

from typing import Any

import torch
from torchmetrics import MeanMetric, MeanSquaredError, R2Score
from torchmetrics.classification import (
    MultilabelAUROC,
    MultilabelAveragePrecision,
    MultilabelExactMatch,
    MultilabelF1Score,
    MultilabelHammingDistance,
    MultilabelPrecision,
    MultilabelRecall,
)
from torchmetrics.regression import MeanAbsoluteError

from eoengine.training.metrics import _cpu_bincount

REGRESSION_SCALARS = ("rmse", "mae", "r2", "mse", "bias")
MULTILABEL_SCALARS = ("exact_match", "hamming", "f1", "precision", "recall", "average_precision", "auroc")


class RegressionMetrics:
    """RMSE, MAE, R², MSE and bias (mean prediction - target) over pixels with a finite target."""

    def __init__(self) -> None:
        self.metrics: dict[str, Any] = {
            "mse": MeanSquaredError(), "mae": MeanAbsoluteError(), "r2": R2Score(), "bias": MeanMetric(),
        }

    def to(self, device: torch.device | str) -> RegressionMetrics:
        """Move the accumulators to ``device``."""
        self.metrics = {k: m.to(device) for k, m in self.metrics.items()}
        return self

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add predictions and targets of the same shape (NaN targets are skipped)."""
        pred = pred.detach().reshape(target.shape).float()
        valid = torch.isfinite(target)
        p, t = pred[valid], target[valid].float()
        if p.numel() == 0:
            return
        for name in ("mse", "mae", "r2"):
            self.metrics[name].update(p, t)
        self.metrics["bias"].update(p - t)

    def reset(self) -> None:
        """Forget everything accumulated."""
        for m in self.metrics.values():
            m.reset()

    def compute(self) -> dict[str, Any]:
        """The scores (0 where nothing was accumulated)."""
        if int(self.metrics["mse"].total) == 0:
            return dict.fromkeys(REGRESSION_SCALARS, 0.0) | {"pixels": 0}
        mse = float(self.metrics["mse"].compute())
        r2 = float(self.metrics["r2"].compute()) if int(self.metrics["r2"].total) > 1 else 0.0
        return {"rmse": mse**0.5, "mae": float(self.metrics["mae"].compute()), "r2": r2, "mse": mse,
                "bias": float(self.metrics["bias"].compute()), "pixels": int(self.metrics["mse"].total)}


class MultilabelMetrics:
    """Exact match, Hamming distance, macro F1/precision/recall, average precision and AUROC."""

    def __init__(self, num_labels: int, thresholds: int = 200) -> None:
        kw: dict[str, Any] = {"num_labels": num_labels}
        self.metrics: dict[str, Any] = {
            "exact_match": MultilabelExactMatch(**kw), "hamming": MultilabelHammingDistance(**kw),
            "f1": MultilabelF1Score(**kw), "precision": MultilabelPrecision(**kw), "recall": MultilabelRecall(**kw),
            "average_precision": MultilabelAveragePrecision(**kw, thresholds=thresholds),
            "auroc": MultilabelAUROC(**kw, thresholds=thresholds),
        }
        self.count = 0

    def to(self, device: torch.device | str) -> MultilabelMetrics:
        """Metrics stay on the CPU (they are small, and binned scores need native bincount)."""
        return self

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        """Add logits (B, K) and 0/1 targets (B, K)."""
        probs, t = logits.detach().sigmoid().cpu().float(), target.cpu().long()
        with _cpu_bincount():
            for m in self.metrics.values():
                m.update(probs, t)
        self.count += len(t)

    def reset(self) -> None:
        """Forget everything accumulated."""
        for m in self.metrics.values():
            m.reset()
        self.count = 0

    def compute(self) -> dict[str, Any]:
        """The scores, plus how many chips they cover."""
        if not self.count:
            return dict.fromkeys(MULTILABEL_SCALARS, 0.0) | {"chips": 0}
        return {k: float(m.compute()) for k, m in self.metrics.items()} | {"chips": self.count}
