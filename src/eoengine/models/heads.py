"""Output heads: how a model's output channels are shared out among the task's outputs.

A model returns either maps (B, C, H, W) or one vector per chip (B, C). Its C output
channels are shared out among the task's heads in order: segmentation and classification
heads take one channel per class, multi-label heads one per class, regression heads one.
Chip-level heads (classification, multi-label) on a map model average their channels over
the chip (global average pooling of the logits). A model package records its heads; training
(losses, metrics), inference and serving read the layout from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from eoengine.errors import EOError

TARGET_KEY = {"segmentation": "mask", "classification": "label", "multilabel": "present", "regression": "values"}
LOWER_IS_BETTER = ("loss", "rmse", "mae", "mse", "hamming", "calibration_error")
DEFAULT_MONITOR = {"segmentation": "miou", "classification": "accuracy", "multilabel": "f1", "regression": "rmse"}


@dataclass
class Head:
    """One output: its name, type, channel slice, loss and weight in the total loss."""

    name: str
    type: str
    start: int
    stop: int
    weight: float
    prefix: str
    num_classes: int
    value_mean: float = 0.0
    value_std: float = 1.0
    train_classes: list[bool] | None = None  # classes the train split has pixels of

    def meta(self) -> dict[str, Any]:
        """How a model package records this head."""
        return {"name": self.name, "type": self.type, "channels": [self.start, self.stop],
                "value_mean": self.value_mean, "value_std": self.value_std}


def output_channels(heads: list[Head]) -> int:
    """Channels the model must return for these heads."""
    return heads[-1].stop


def split_outputs(out: torch.Tensor, heads: list[Head]) -> list[torch.Tensor]:
    """Each head's part of the model output: maps, chip vectors (B, K) or values (B, H, W)."""
    parts = []
    for h in heads:
        part = out[:, h.start:h.stop]
        if h.type in ("classification", "multilabel") and part.ndim == 4:
            part = part.mean(dim=(2, 3))
        elif h.type == "regression":
            part = part[:, 0]
        parts.append(part)
    return parts


def heads_from_meta(meta: dict[str, Any]) -> list[Head]:
    """The heads a model package records (packages from before heads: one segmentation head)."""
    n = len(meta["classes"])
    recorded = meta.get("heads") or [{"name": "out", "type": "segmentation", "channels": [0, n]}]
    multi = len(recorded) > 1
    return [
        Head(h["name"], h["type"], h["channels"][0], h["channels"][1], 1.0, f"{h['name']}_" if multi else "", n,
             float(h.get("value_mean", 0.0)), float(h.get("value_std", 1.0)))
        for h in recorded
    ]


def map_head(heads: list[Head]) -> Head:
    """The head a map is predicted from: the first segmentation head, else the first regression one."""
    for kind in ("segmentation", "regression"):
        for h in heads:
            if h.type == kind:
                return h
    raise EOError("this model labels whole chips (classification), it does not predict maps",
                  "score it with 'eoengine evaluate', or train a segmentation or regression model for maps")


def monitor_mode(name: str) -> str:
    """'min' for losses and errors, 'max' for scores."""
    return "min" if name.endswith(LOWER_IS_BETTER) else "max"


def default_monitor(heads: list[Head]) -> str:
    """What early stopping and checkpointing watch unless configured."""
    if len(heads) > 1:
        return "val_loss"
    return f"val_{DEFAULT_MONITOR[heads[0].type]}"
