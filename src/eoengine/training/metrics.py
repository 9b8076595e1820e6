"""Segmentation metrics: one accumulated confusion matrix plus probability-based scores.

The confusion matrix is accumulated by torchmetrics (so it syncs across DDP processes) with
unlabelled/nodata pixels ignored; every hard-label score is derived from it, so all agree
with each other. Mean scores average over classes that occur in the targets or predictions:
a class absent from an area is neither rewarded nor punished. Validation scores (what early
stopping and checkpoint selection watch) also count every class the train split has, so a
validation split without some of them cannot score an untrained, one-class prediction 1.0:
the classes it cannot check count as missed. AUROC, average precision and
calibration error come from torchmetrics on the class probabilities, with binned
thresholds so memory does not grow with the number of pixels; the binned curves' counts are
accumulated from one histogram per class (:func:`binned_confusion`) instead of torchmetrics'
comparison of every probability with every threshold, which on a few hundred thousand pixels
falls back to a loop over thresholds that took ~95 % of an evaluation's time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torchmetrics.classification import (
    MulticlassAUROC,
    MulticlassAveragePrecision,
    MulticlassCalibrationError,
    MulticlassConfusionMatrix,
)

from eoengine.labels import IGNORE


class SegmentationMetrics:
    """Accumulate predictions, then compute every score in :data:`SCALARS` and per-class ones."""

    def __init__(self, num_classes: int, thresholds: int = 200, expected: list[bool] | None = None) -> None:
        self.num_classes = num_classes
        self.expected = expected
        self.cm = MulticlassConfusionMatrix(num_classes, ignore_index=IGNORE)
        kw: dict[str, Any] = {"num_classes": num_classes, "ignore_index": IGNORE}
        self.prob_metrics = {
            "auroc": _AUROC(**kw, average="macro", thresholds=thresholds),
            "average_precision": _AveragePrecision(**kw, average="macro", thresholds=thresholds),
            "calibration_error": MulticlassCalibrationError(**kw, n_bins=15, norm="l1"),
        }

    def to(self, device: torch.device | str) -> SegmentationMetrics:
        """Move the confusion accumulator to ``device`` (probability scores stay on the CPU)."""
        self.cm = self.cm.to(device)
        return self

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch: logits (B, K, H, W), target (B, H, W)."""
        self.cm.update(logits.argmax(dim=1), target)
        probs = logits.detach().softmax(dim=1).cpu()
        with _cpu_bincount():
            for m in self.prob_metrics.values():
                m.update(probs, target.cpu())

    def reset(self) -> None:
        """Forget everything accumulated."""
        self.cm.reset()
        for m in self.prob_metrics.values():
            m.reset()

    def confusion(self) -> torch.Tensor:
        """Confusion matrix (rows: truth, columns: prediction)."""
        return self.cm.compute().to(torch.float64).cpu()

    def compute(self) -> dict[str, Any]:
        """All scores: scalars and per-class lists."""
        scores = scores_from_confusion(self.confusion(), self.expected)
        for name, m in self.prob_metrics.items():
            scores[name] = float(m.compute()) if scores["pixels"] else 0.0
        return scores


def binned_confusion(probs: torch.Tensor, target: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """One-vs-rest confusion counts of every class at every threshold, from one histogram per class.

    The same counts as torchmetrics' binned precision-recall state (a pixel is predicted
    positive for a class at threshold ``t`` when its probability is ``>= t``), in O(pixels x
    classes) instead of O(pixels x classes x thresholds).

    Args:
        probs: Class probabilities (N, K).
        target: True classes (N,), each in ``[0, K)``.
        thresholds: Ascending thresholds (T,).

    Returns:
        Counts (T, K, 2, 2) indexed ``[threshold, class, truth, prediction]`` (int64).

    """
    n_classes, n_thresholds = probs.shape[1], len(thresholds)
    level = torch.bucketize(probs, thresholds.to(probs.dtype), right=True)  # how many thresholds each reaches
    positive = torch.nn.functional.one_hot(target.long(), n_classes).bool()
    flat = level + (n_thresholds + 1) * torch.arange(n_classes, device=probs.device)
    size = n_classes * (n_thresholds + 1)

    def reaching(mask: torch.Tensor) -> torch.Tensor:  # (K, T): pixels reaching each threshold
        hist = torch.bincount(flat[mask], minlength=size).view(n_classes, n_thresholds + 1)
        return hist.flip(1).cumsum(1).flip(1)[:, 1:]

    tp, fp = reaching(positive), reaching(~positive)
    fn, tn = positive.sum(0)[:, None] - tp, (~positive).sum(0)[:, None] - fp
    return torch.stack([torch.stack([tn, fp], -1), torch.stack([fn, tp], -1)], -2).transpose(0, 1)


class _BinnedUpdate:
    """``update`` of a binned multiclass curve metric through :func:`binned_confusion` (probabilities in)."""

    num_classes: int
    ignore_index: int | None
    thresholds: Any  # the (T,) tensor torchmetrics registers for binned thresholds
    confmat: torch.Tensor

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch: probabilities (B, K, ...) and classes (B, ...)."""
        probs = preds.transpose(0, 1).reshape(self.num_classes, -1).T
        target = target.flatten()
        if self.ignore_index is not None:
            keep = target != self.ignore_index
            probs, target = probs[keep], target[keep]
        self.confmat += binned_confusion(probs, target, self.thresholds)


class _AUROC(_BinnedUpdate, MulticlassAUROC):
    """Macro AUROC over binned thresholds, accumulated from histograms."""


class _AveragePrecision(_BinnedUpdate, MulticlassAveragePrecision):
    """Macro average precision over binned thresholds, accumulated from histograms."""


@contextmanager
def _cpu_bincount() -> Iterator[None]:
    """Let torchmetrics use torch.bincount, which is deterministic on the CPU.

    Under ``torch.use_deterministic_algorithms`` (as Lightning's ``deterministic`` sets)
    torchmetrics falls back to a bincount that allocates pixels x classes x thresholds
    values — tens of GB for one validation batch of a segmentation model.
    """
    was_on = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    if was_on:
        torch.use_deterministic_algorithms(False)
    try:
        yield
    finally:
        if was_on:
            torch.use_deterministic_algorithms(True, warn_only=warn_only)


def scores_from_confusion(cm: torch.Tensor, expected: list[bool] | None = None) -> dict[str, Any]:
    """Scores from a confusion matrix (rows truth, columns prediction).

    Args:
        cm: the confusion matrix, K x K.
        expected: classes that count in the mean IoU, precision and F1 even when they are in
            neither the targets nor the predictions (validation: the train split's classes).

    Returns:
        The scalar scores, per-class lists and the matrix itself.

    """
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
    if expected is not None:
        occurs |= torch.tensor(expected, dtype=torch.bool)
    in_truth = truth > 0

    def mean(v: torch.Tensor, mask: torch.Tensor) -> float:
        return float(v[mask].mean()) if mask.any() else 0.0

    oa = float(tp.sum() / total) if total > 0 else 0.0
    pe = float((truth * pred).sum() / total**2) if total > 0 else 0.0
    kappa = (oa - pe) / (1 - pe) if pe < 1 else 0.0
    mcc_den = float(((total**2 - (pred**2).sum()) * (total**2 - (truth**2).sum())).sqrt())
    mcc = float(tp.sum() * total - (pred * truth).sum()) / mcc_den if mcc_den > 0 else 0.0
    return {
        "accuracy": oa,
        "balanced_accuracy": mean(recall, in_truth),
        "miou": mean(iou, occurs),
        "precision": mean(precision, occurs),
        "recall": mean(recall, in_truth),
        "f1": mean(f1, occurs),
        "kappa": kappa,
        "mcc": mcc,
        "pixels": int(total),
        "iou_per_class": iou.tolist(),
        "precision_per_class": precision.tolist(),
        "recall_per_class": recall.tolist(),
        "f1_per_class": f1.tolist(),
        "support_per_class": truth.to(torch.int64).tolist(),
        "confusion_matrix": cm.to(torch.int64).tolist(),
    }


CONFUSION_SCALARS = ("accuracy", "balanced_accuracy", "miou", "precision", "recall", "f1", "kappa", "mcc")
"""Scalar scores derived from the confusion matrix alone."""

SCALARS = (*CONFUSION_SCALARS, "auroc", "average_precision", "calibration_error")
"""The scalar scores, logged per epoch with a split prefix (``val_miou``)."""


PER_CLASS = ("iou", "precision", "recall", "f1", "support")
"""Per-class scores (``iou_per_class``, ...) that are reported by class name."""


def metric_key(name: str) -> str:
    """A class name as it appears in metric names (``iou_open_water``): MLflow-safe characters only."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name.strip()).strip("_") or "class"


def by_class_name(scores: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """The scores with every per-class list turned into a mapping from class name to value.

    Args:
        scores: scores as :func:`scores_from_confusion` returns them (other scores pass unchanged).
        names: the class names, in class order.

    Returns:
        A copy with ``iou_per_class`` etc. keyed by name, and ``classes`` naming the confusion matrix's rows.

    """
    out = dict(scores)
    for kind in PER_CLASS:
        values = scores.get(f"{kind}_per_class")
        if values is not None:
            out[f"{kind}_per_class"] = dict(zip(names, values, strict=True))
    if "confusion_matrix" in scores:
        out["classes"] = list(names)
    return out


def per_class_metrics(scores: dict[str, Any], names: list[str], prefix: str) -> dict[str, float]:
    """Per-class scores as flat metrics for MLflow: ``<prefix>iou_<class>`` (``test_iou_water``).

    Args:
        scores: scores with per-class lists (none: nothing is returned).
        names: the class names, in class order.
        prefix: put before each name (``test_``, ``best_val_``, ``eval_test_``).

    Returns:
        Metric name to value.

    """
    return {
        f"{prefix}{kind}_{metric_key(name)}": float(value)
        for kind in PER_CLASS[:-1]
        for name, value in zip(names, scores.get(f"{kind}_per_class") or [], strict=False)
    }


def is_per_class(metric: str) -> bool:
    """True for a per-class metric name as :func:`per_class_metrics` makes them (``test_iou_water``)."""
    return re.match(rf"^(test|best_val|eval_[a-z]+)_(.+_)?({'|'.join(PER_CLASS[:-1])})_.+$", metric) is not None
