"""One-line summaries of scores for the terminal, whatever the task."""

from __future__ import annotations

from typing import Any

HEADLINE = {
    "accuracy": "accuracy", "miou": "mean IoU", "f1": "F1", "kappa": "kappa", "exact_match": "exact match",
    "average_precision": "mAP", "rmse": "RMSE", "mae": "MAE", "r2": "R²", "bias": "bias",
}


def score_line(scores: dict[str, Any]) -> str:
    """'accuracy 0.812, mean IoU 0.533, ...' for one head; 'head: ...; head: ...' for several."""
    if scores and all(isinstance(v, dict) for v in scores.values()):
        return "; ".join(f"{name}: {score_line(s)}" for name, s in scores.items())
    return ", ".join(f"{label} {scores[k]:.3f}" for k, label in HEADLINE.items() if k in scores)
