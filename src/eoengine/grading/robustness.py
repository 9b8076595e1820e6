"""Robustness: the suite's metrics on a fixed sample of graded chips under each corruption and severity.

The chips were decoded once (:class:`~eoengine.grading.chips.GradedChips`); each corruption is applied to
batches of the sample's raw values (so memory stays flat however many corruptions run), the corrupted
chips are predicted like the clean ones, and the metrics are compared with the clean sample's: a
degradation curve per corruption, and the relative drop at each severity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eoengine.grading.chips import GradedChips, Predictions, Predictor
from eoengine.grading.corruptions import ChipLayout, corrupt
from eoengine.grading.scoring import class_metrics, value_metrics, value_sums
from eoengine.grading.suite import LOWER_IS_BETTER, CorruptionRun

CORRUPT_BYTES = 256 * 2**20
"""Memory a corruption call may use at most (it works in float64 with a few temporaries per chip)."""


def corrupt_batch(chips: np.ndarray) -> int:
    """Chips per corruption call: as many as fit :data:`CORRUPT_BYTES`.

    The whole sample usually fits, so one seeded draw serves every chip (a gain/offset drift is then the same
    drift for all of them, as a miscalibrated sensor's would be).
    """
    per_chip = int(np.prod(chips.shape[1:])) * 8 * 4
    return max(1, CORRUPT_BYTES // per_chip)


@dataclass
class Curve:
    """One corruption's metrics per severity and their relative drop from the clean sample."""

    corruption: str
    options: dict[str, object]
    severities: list[int]
    values: dict[str, list[float]]
    drops: dict[str, list[float]]

    def as_dict(self) -> dict[str, object]:
        """JSON form."""
        return {"corruption": self.corruption, "options": self.options, "severities": self.severities,
                "metrics": self.values, "drops": self.drops}


def sample_metrics(graded: GradedChips, pick: np.ndarray, pred: Predictions, metrics: list[str]) -> dict[str, float]:
    """The metrics of predictions for the chips ``pick`` of the graded split (one slice: all of them).

    Args:
        graded: The graded chips (truth).
        pick: Chip positions the predictions are for.
        pred: Their predictions.
        metrics: The metrics wanted.

    Returns:
        Each metric's value.

    """
    truth, keep = graded.truth[pick], graded.labelled[pick]
    zeros = np.zeros(truth.shape, dtype=np.int32)
    if graded.is_values:
        scores = value_metrics(value_sums(truth, pred.pred, keep, zeros, 1, zeros, 1)[0, 0])
    else:
        k = graded.head.num_classes
        cm = np.bincount(truth[keep] * k + pred.pred[keep], minlength=k * k).reshape(k, k)
        scores = class_metrics(cm)
    return {m: float(scores[m]) for m in metrics if m in scores}


def drop(clean: float, value: float, metric: str) -> float:
    """The relative loss from ``clean`` to ``value`` (positive = worse; for error metrics a rise is a loss)."""
    if clean == 0:
        return 0.0 if value == clean else float("inf")
    change = (value - clean) if metric in LOWER_IS_BETTER else (clean - value)
    return change / abs(clean)


def robustness(predict: Predictor, graded: GradedChips, runs: list[CorruptionRun], metrics: list[str],
               max_chips: int, seed: int) -> tuple[dict[str, float], list[Curve]]:
    """Degradation curves of the metrics under each corruption run.

    Args:
        predict: The model (or baseline) as a predictor of raw chips.
        graded: The graded chips (decoded once).
        runs: Corruptions with severities and options (checked by the suite).
        metrics: The metrics to follow.
        max_chips: The sample's size (a seeded choice of chips).
        seed: The sample's and the corruptions' seed.

    Returns:
        The clean sample's metrics and a curve per run.

    """
    n = len(graded.truth)
    pick = np.sort(np.random.default_rng(seed).choice(n, min(n, max_chips), replace=False))
    layout = ChipLayout.from_manifest(graded.manifest)
    clean_pred = Predictions(graded.clean.pred[pick], None)
    clean = sample_metrics(graded, pick, clean_pred, metrics)
    curves = []
    for run in runs:
        values: dict[str, list[float]] = {m: [] for m in clean}
        step = corrupt_batch(graded.raw)
        for severity in run.severities:
            parts = []
            for start in range(0, len(pick), step):
                chips = graded.raw[pick[start:start + step]]
                bad = corrupt(chips, run.name, severity, layout, seed=seed + start, **run.options)
                parts.append(predict(bad).pred)
            scores = sample_metrics(graded, pick, Predictions(np.concatenate(parts), None), metrics)
            for m in values:
                values[m].append(scores[m])
        drops = {m: [drop(clean[m], v, m) for v in vs] for m, vs in values.items()}
        curves.append(Curve(run.name, dict(run.options), list(run.severities), values, drops))
    return clean, curves
