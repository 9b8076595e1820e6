"""Losses by name (or dotted path) for every output type, and weighted sums.

Class losses (segmentation, and chip classification as 1x1 maps) take logits (B, K, H, W)
and integer targets (B, H, W) where :data:`~eoengine.labels.vector.IGNORE` marks pixels to
skip (unlabelled or nodata). Regression and multi-label losses live in
:mod:`eoengine.training.value_losses`. Asking for a loss that does not fit the output type
(dice on a regression output) is an error that lists the ones that do.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from eoengine.errors import EOError
from eoengine.labels import IGNORE
from eoengine.models.registry import import_dotted
from eoengine.training.region_losses import (
    Dice,
    FocalTversky,
    Jaccard,
    LovaszSoftmax,
    OneVsRestBCE,
    Tversky,
    Weighted,
)
from eoengine.training.value_losses import MULTILABEL_LOSSES, REGRESSION_LOSSES


class CrossEntropy(Weighted):
    """Cross-entropy with optional class weights and label smoothing."""

    def __init__(self, weight: torch.Tensor | None = None, label_smoothing: float = 0.0) -> None:
        super().__init__(weight)
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over labelled pixels (0 if none)."""
        if not (target != IGNORE).any():
            return logits.sum() * 0.0
        return F.cross_entropy(
            logits, target, weight=self.weight, ignore_index=IGNORE, label_smoothing=self.label_smoothing
        )


class Focal(Weighted):
    """Focal loss (Lin et al., 2017): cross-entropy down-weighted on easy pixels."""

    def __init__(self, weight: torch.Tensor | None = None, gamma: float = 2.0) -> None:
        super().__init__(weight)
        self.gamma = gamma

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean focal loss over labelled pixels."""
        valid = target != IGNORE
        if not valid.any():
            return logits.sum() * 0.0
        logp = F.log_softmax(logits, dim=1)
        t = target.clamp(max=logits.shape[1] - 1) * valid
        logp_t = logp.gather(1, t.unsqueeze(1)).squeeze(1)
        loss = -((1 - logp_t.exp()) ** self.gamma) * logp_t
        if self.weight is not None:
            loss = loss * self.weight[t]
        return loss[valid].mean()


class Combined(nn.Module):
    """A weighted sum of losses."""

    def __init__(self, terms: list[tuple[float, nn.Module]]) -> None:
        super().__init__()
        self.weights = [w for w, _ in terms]
        self.terms = nn.ModuleList([m for _, m in terms])

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Sum of weight x loss over the terms."""
        total = logits.sum() * 0.0
        for w, term in zip(self.weights, self.terms, strict=True):
            total = total + w * term(logits, target)
        return total


LOSSES: dict[str, Callable[..., nn.Module]] = {
    "cross_entropy": CrossEntropy,
    "focal": Focal,
    "dice": Dice,
    "jaccard": Jaccard,
    "tversky": Tversky,
    "focal_tversky": FocalTversky,
    "lovasz": LovaszSoftmax,
    "bce": OneVsRestBCE,
}
"""Class losses by name; ``combined`` (a weighted sum) is handled by build_loss."""

LOSSES_BY_TYPE: dict[str, dict[str, Callable[..., nn.Module]]] = {
    "segmentation": LOSSES,
    "classification": LOSSES,
    "multilabel": dict(MULTILABEL_LOSSES),
    "regression": dict(REGRESSION_LOSSES),
}
DEFAULT_LOSS = {"segmentation": "cross_entropy", "classification": "cross_entropy", "multilabel": "bce", "regression": "mse"}
"""The loss each output type uses unless the config names another."""


def loss_names(kind: str = "segmentation") -> list[str]:
    """Every loss name accepted for an output of type ``kind``."""
    return sorted([*LOSSES_BY_TYPE[kind], "combined"])


def _custom(name: str, weight: torch.Tensor | None, kwargs: dict[str, Any]) -> nn.Module:
    factory = import_dotted(name, "loss")
    try:
        takes_weight = "weight" in inspect.signature(factory).parameters
    except (TypeError, ValueError):  # builtins without a signature
        takes_weight = False
    if takes_weight:
        kwargs = {"weight": weight, **kwargs}
    try:
        loss = factory(**kwargs)
    except TypeError as exc:
        raise EOError(f"loss '{name}': bad arguments {kwargs}: {exc}", "check the loss kwargs") from None
    if not isinstance(loss, nn.Module):
        raise EOError(f"loss '{name}' is not a torch nn.Module", "point to an nn.Module class taking (logits, target)")
    return loss


def _one(name: str, weight: torch.Tensor | None, kwargs: dict[str, Any], kind: str) -> nn.Module:
    if "." in name:
        return _custom(name, weight, kwargs)
    table = LOSSES_BY_TYPE[kind]
    if name not in table:
        valid = ", ".join(loss_names(kind))
        fits = [k for k, t in LOSSES_BY_TYPE.items() if name in t]
        if fits:
            raise EOError(f"loss '{name}' does not apply to a {kind} output (it is for {', '.join(fits)})",
                          f"use one of: {valid}")
        close = difflib.get_close_matches(name, loss_names(kind), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise EOError(f"unknown loss '{name}'{hint}", f"use one of: {valid}")
    if "weight" in inspect.signature(table[name]).parameters:
        kwargs = {"weight": weight, **kwargs}
    try:
        return table[name](**kwargs)
    except (TypeError, ValueError) as exc:
        raise EOError(f"loss '{name}': bad arguments {kwargs}: {exc}", "check the loss kwargs") from None


def build_loss(
    name: str,
    weight: torch.Tensor | None = None,
    kwargs: dict[str, Any] | None = None,
    terms: list[tuple[str, float, dict[str, Any]]] | None = None,
    kind: str = "segmentation",
) -> nn.Module:
    """A loss by name for an output of type ``kind``; ``combined`` takes ``terms`` of (name, weight, kwargs)."""
    if name == "combined":
        if not terms:
            raise EOError("loss 'combined' needs terms", "list terms: [{name: dice, weight: 1}]")
        return Combined([(w, _one(n, weight, kw, kind)) for n, w, kw in terms])
    return _one(name, weight, dict(kwargs or {}), kind)


def class_weights(frequencies: list[int], method: str) -> list[float] | None:
    """Class weights from pixel frequencies: inverse, inverse square root or median frequency.

    Classes absent from the training data get weight 0 (they cannot be learnt anyway).
    Weights are scaled to average 1 over present classes.
    """
    if method == "none":
        return None
    f = torch.tensor(frequencies, dtype=torch.float64)
    present = f > 0
    share = f / f.sum()
    w = torch.zeros_like(f)
    if method == "inverse":
        w[present] = 1 / share[present]
    elif method == "inverse_sqrt":
        w[present] = 1 / share[present].sqrt()
    elif method == "median":
        w[present] = share[present].median() / share[present]
    else:
        raise EOError(f"unknown class weighting '{method}'", "use none, inverse, inverse_sqrt, median")
    w[present] = w[present] / w[present].mean()
    return [float(v) for v in w]
