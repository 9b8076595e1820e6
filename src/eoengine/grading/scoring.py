"""Metrics per slice from sufficient statistics per spatial block, with block-bootstrap confidence intervals.

Every pixel adds to the statistics of its (spatial block, slice) cell: a confusion matrix for class models,
sums of errors and values for value models. A slice's metrics come from its cells summed over blocks; a
bootstrap resample draws blocks with replacement (neighbouring pixels share a block, so they are resampled
together and do not fake precision) and sums the drawn blocks' cells. The metrics are vectorised over any
leading axes (resamples, slices) and defined as in :func:`eoengine.training.metrics.scores_from_confusion`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

VALUE_STATS = 6  # n, sum(err), sum|err|, sum(err^2), sum(y), sum(y^2)


def class_counts(truth: np.ndarray, pred: np.ndarray, keep: np.ndarray, keys: np.ndarray, n_keys: int,
                 blocks: np.ndarray, n_blocks: int, k: int) -> np.ndarray:
    """Confusion matrices per (block, slice): (n_blocks, n_keys, k, k), rows truth, columns prediction.

    Args:
        truth: True class positions per pixel.
        pred: Predicted class positions, same shape.
        keep: Pixels that count (labelled).
        keys: Slice key per pixel (-1: none), same shape.
        n_keys: Number of slices.
        blocks: Block index per pixel, same shape.
        n_blocks: Number of blocks.
        k: Number of classes.

    Returns:
        The counts.

    """
    m = keep & (keys >= 0)
    flat = ((blocks[m].astype(np.int64) * n_keys + keys[m]) * k + truth[m]) * k + pred[m]
    return np.bincount(flat, minlength=n_blocks * n_keys * k * k).reshape(n_blocks, n_keys, k, k)


def value_sums(truth: np.ndarray, pred: np.ndarray, keep: np.ndarray, keys: np.ndarray, n_keys: int,
               blocks: np.ndarray, n_blocks: int) -> np.ndarray:
    """Sufficient statistics of value errors per (block, slice): (n_blocks, n_keys, 6) (see :data:`VALUE_STATS`)."""
    m = keep & (keys >= 0) & np.isfinite(pred)
    cell = blocks[m].astype(np.int64) * n_keys + keys[m]
    y = truth[m].astype(np.float64)
    err = pred[m].astype(np.float64) - y
    parts = [np.ones_like(y), err, np.abs(err), err**2, y, y**2]
    out = np.stack([np.bincount(cell, weights=p, minlength=n_blocks * n_keys) for p in parts], axis=-1)
    return out.reshape(n_blocks, n_keys, VALUE_STATS)


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), 0.0)


def _masked_mean(v: np.ndarray, mask: np.ndarray) -> np.ndarray:
    n = mask.sum(-1)
    return _div((v * mask).sum(-1), n.astype(np.float64))


def class_metrics(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Scalar class metrics of confusion matrices (..., k, k), plus per-class IoU/precision/recall/F1 (..., k).

    Args:
        cm: Confusion matrices, rows truth.

    Returns:
        ``accuracy, miou, f1, precision, recall, balanced_accuracy, kappa, mcc`` with the leading shape, the
        per-class ``*_per_class`` with a class axis, and ``pixels``.

    """
    cm = cm.astype(np.float64)
    total = cm.sum((-1, -2))
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    truth, pred = cm.sum(-1), cm.sum(-2)
    iou = _div(tp, truth + pred - tp)
    precision, recall = _div(tp, pred), _div(tp, truth)
    f1 = _div(2 * precision * recall, precision + recall)
    occurs, in_truth = (truth + pred) > 0, truth > 0
    oa = _div(tp.sum(-1), total)
    pe = _div((truth * pred).sum(-1), total**2)
    kappa = np.where(pe < 1, _div(oa - pe, 1 - pe), 0.0)
    den = np.sqrt(np.clip((total**2 - (pred**2).sum(-1)) * (total**2 - (truth**2).sum(-1)), 0, None))
    mcc = _div(tp.sum(-1) * total - (pred * truth).sum(-1), den)
    return {
        "accuracy": oa, "miou": _masked_mean(iou, occurs), "f1": _masked_mean(f1, occurs),
        "precision": _masked_mean(precision, occurs), "recall": _masked_mean(recall, in_truth),
        "balanced_accuracy": _masked_mean(recall, in_truth), "kappa": kappa, "mcc": mcc, "pixels": total,
        "iou_per_class": iou, "precision_per_class": precision, "recall_per_class": recall, "f1_per_class": f1,
        "support_per_class": truth,
    }


def value_metrics(s: np.ndarray) -> dict[str, np.ndarray]:
    """MAE, RMSE, bias and R² from value sums (..., 6)."""
    n, e, ae, se, y, y2 = (s[..., i] for i in range(VALUE_STATS))
    sst = y2 - _div(y**2, n)
    return {"mae": _div(ae, n), "rmse": np.sqrt(_div(se, n)), "bias": _div(e, n),
            "r2": np.where(sst > 0, 1 - _div(se, sst), 0.0), "pixels": n}


CLASS_SLICE_METRIC = {"accuracy": "recall_per_class", "recall": "recall_per_class", "balanced_accuracy": "recall_per_class",
                      "miou": "iou_per_class", "f1": "f1_per_class", "precision": "precision_per_class"}
"""What a metric means for one class's slice: its recall, IoU, F1 or precision (others have no per-class form)."""


@dataclass
class SliceScores:
    """A slice dimension's metrics: per slice, each metric's value and bootstrap interval."""

    dimension: str
    labels: list[str]
    pixels: np.ndarray
    values: dict[str, np.ndarray]
    low: dict[str, np.ndarray] = field(default_factory=dict)
    high: dict[str, np.ndarray] = field(default_factory=dict)
    cells: np.ndarray | None = field(default=None, repr=False)
    """The per-block statistics (n_blocks, n_slices, ...) for paired tests; kept for dimensions of a few slices."""

    def row(self, i: int) -> dict[str, object]:
        """JSON form of slice ``i``: its label, pixels, metrics and intervals (null where it has no pixel)."""
        row: dict[str, object] = {"slice": self.labels[i], "pixels": int(self.pixels[i]),
                                  "metrics": {m: _json(v[i]) for m, v in self.values.items()}}
        if self.low:
            row["ci"] = {m: [_json(self.low[m][i]), _json(self.high[m][i])] for m in self.low}
        return row

    def as_dict(self) -> dict[str, object]:
        """JSON form: a row per slice."""
        return {"dimension": self.dimension, "slices": [self.row(i) for i in range(len(self.labels))]}


def _json(v: float) -> float | None:
    return None if not np.isfinite(v) else float(v)


def resample_weights(n_blocks: int, resamples: int, seed: int) -> np.ndarray:
    """How often each block is drawn in each bootstrap resample: (resamples, n_blocks) counts."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_blocks, np.full(n_blocks, 1.0 / n_blocks), size=resamples).astype(np.float64)


def score_cells(cells: np.ndarray, values: bool, metrics: list[str], weights: np.ndarray | None,
                confidence: float, per_class: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray],
                                                                   dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Metrics of slices from their per-block cells, and percentile intervals over block resamples.

    Args:
        cells: (n_blocks, n_keys, ...) statistics.
        values: Whether they are value sums (else confusion matrices).
        metrics: The metrics wanted.
        weights: Bootstrap block weights (resamples, n_blocks), or None for no intervals.
        confidence: The interval's coverage, e.g. 0.95.
        per_class: Slices are the classes of one confusion matrix (n_keys = 1): metrics per class.

    Returns:
        Pixels per slice, the metric values, and the intervals' low and high ends. A slice without pixels
        has NaN metrics; resamples that drew none of a slice's blocks do not count in its interval.

    """
    fn = value_metrics if values else class_metrics

    def pick(scores: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        if per_class:
            px = scores["support_per_class"][..., 0, :]
            chosen = {m: scores[CLASS_SLICE_METRIC[m]][..., 0, :] for m in metrics if m in CLASS_SLICE_METRIC}
        else:
            px, chosen = scores["pixels"], {m: scores[m] for m in metrics}
        return px, {m: np.where(px > 0, v, np.nan) for m, v in chosen.items()}

    pixels, point = pick(fn(cells.sum(0)))
    low: dict[str, np.ndarray] = {}
    high: dict[str, np.ndarray] = {}
    if weights is not None and len(weights):
        _, boot = pick(fn(np.tensordot(weights, cells, axes=(1, 0))))
        tail = (1 - confidence) / 2 * 100
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a slice without pixels: all-NaN, NaN interval
            for m, v in boot.items():
                low[m], high[m] = np.nanpercentile(v, tail, axis=0), np.nanpercentile(v, 100 - tail, axis=0)
    return pixels, point, low, high


@dataclass
class Calibration:
    """Expected calibration error of the top-class probability and the reliability diagram's bins."""

    ece: float
    ece_ci: tuple[float, float] | None
    bins: list[dict[str, float]]


def _ece(stats: np.ndarray) -> np.ndarray:
    n, conf, correct = stats[..., 0], stats[..., 1], stats[..., 2]
    total = n.sum(-1, keepdims=True)
    return (np.abs(correct - conf) * _div(np.ones_like(n), total)).sum(-1)


def calibration(conf: np.ndarray, correct: np.ndarray, blocks: np.ndarray, n_blocks: int, bins: int,
                weights: np.ndarray | None, confidence: float) -> Calibration:
    """ECE over equal-width confidence bins (sum over bins of |accuracy - confidence| weighted by their pixels).

    Args:
        conf: Top-class probability of the labelled pixels.
        correct: Whether each was predicted right.
        blocks: Their block index.
        n_blocks: Number of blocks.
        bins: Confidence bins.
        weights: Bootstrap block weights, or None.
        confidence: The interval's coverage.

    Returns:
        The ECE, its interval, and per bin its range, pixels, mean confidence and accuracy.

    """
    conf = np.clip(np.nan_to_num(conf, nan=0.0), 0.0, 1.0)  # a model whose output is not finite: no confidence
    b = np.minimum((conf * bins).astype(np.int64), bins - 1)
    cell = blocks.astype(np.int64) * bins + b
    stats = np.stack([np.bincount(cell, weights=w, minlength=n_blocks * bins)
                      for w in (np.ones_like(conf, dtype=np.float64), conf.astype(np.float64), correct.astype(np.float64))],
                     axis=-1).reshape(n_blocks, bins, 3)
    total = stats.sum(0)
    ci = None
    if weights is not None and len(weights):
        boot = _ece(np.tensordot(weights, stats, axes=(1, 0)))
        tail = (1 - confidence) / 2 * 100
        ci = (float(np.percentile(boot, tail)), float(np.percentile(boot, 100 - tail)))
    rows = [{"low": i / bins, "high": (i + 1) / bins, "pixels": float(n),
             "confidence": float(c / n) if n else float("nan"), "accuracy": float(a / n) if n else float("nan")}
            for i, (n, c, a) in enumerate(total)]
    return Calibration(float(_ece(total)), ci, rows)
