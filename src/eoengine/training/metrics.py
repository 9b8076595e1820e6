"""Segmentation metrics from one accumulated confusion matrix.

The matrix is accumulated by torchmetrics (so it syncs across DDP processes) with
unlabelled/nodata pixels ignored; every score is derived from it, so all agree with each
other. Mean scores average over classes that occur in the targets or predictions: a class
absent from an area is neither rewarded nor punished.
"""

from __future__ import annotations

from typing import Any

import torch
from torchmetrics.classification import MulticlassConfusionMatrix

from eoengine.labels.vector import IGNORE


class SegmentationMetrics:
    """Accumulate predictions, then compute OA, IoU, precision, recall, F1, kappa."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.cm = MulticlassConfusionMatrix(num_classes, ignore_index=IGNORE)

    def to(self, device: torch.device | str) -> SegmentationMetrics:
        """Move the accumulator to ``device``."""
        self.cm = self.cm.to(device)
        return self

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch: logits (B, K, H, W), target (B, H, W)."""
        self.cm.update(logits.argmax(dim=1), target)

    def reset(self) -> None:
        """Forget everything accumulated."""
        self.cm.reset()

    def confusion(self) -> torch.Tensor:
        """Confusion matrix (rows: truth, columns: prediction)."""
        return self.cm.compute().to(torch.float64).cpu()

    def compute(self) -> dict[str, Any]:
        """All scores: scalars and per-class lists."""
        return scores_from_confusion(self.confusion())


def scores_from_confusion(cm: torch.Tensor) -> dict[str, Any]:
    """Scores from a confusion matrix (rows truth, columns prediction)."""
    cm = cm.to(torch.float64)
    total = cm.sum()
    tp = cm.diag()
    truth = cm.sum(1)
    pred = cm.sum(0)
    fp, fn = pred - tp, truth - tp

    def div(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.where(b > 0, a / b.clamp(min=1e-12), torch.zeros_like(a))

    iou = div(tp, tp + fp + fn)
    precision = div(tp, pred)
    recall = div(tp, truth)
    f1 = div(2 * precision * recall, precision + recall)
    occurs = (truth + pred) > 0
    in_truth = truth > 0

    def mean(v: torch.Tensor, mask: torch.Tensor) -> float:
        return float(v[mask].mean()) if mask.any() else 0.0

    oa = float(tp.sum() / total) if total > 0 else 0.0
    pe = float((truth * pred).sum() / total**2) if total > 0 else 0.0
    kappa = (oa - pe) / (1 - pe) if pe < 1 else 0.0
    return {
        "accuracy": oa,
        "miou": mean(iou, occurs),
        "precision": mean(precision, occurs),
        "recall": mean(recall, in_truth),
        "f1": mean(f1, occurs),
        "kappa": kappa,
        "pixels": int(total),
        "iou_per_class": iou.tolist(),
        "precision_per_class": precision.tolist(),
        "recall_per_class": recall.tolist(),
        "f1_per_class": f1.tolist(),
        "support_per_class": truth.to(torch.int64).tolist(),
        "confusion_matrix": cm.to(torch.int64).tolist(),
    }


SCALARS = ("accuracy", "miou", "precision", "recall", "f1", "kappa")
"""The scalar scores, logged per epoch with a split prefix (``val_miou``)."""
