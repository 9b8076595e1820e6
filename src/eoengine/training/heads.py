"""Training side of the output heads: their targets, losses and metrics.

The channel layout of the heads (``Head``, ``heads_from_meta``, ``split_outputs``) is in
:mod:`eoengine.models.heads`.

A model returns either maps (B, C, H, W) or one vector per chip (B, C). Its C output
channels are shared out among the task's heads in order: segmentation and classification
heads take one channel per class, multi-label heads one per class, regression heads one.
Chip-level heads (classification, multi-label) on a map model average their channels over
the chip (global average pooling of the logits). A single-output task has one head whose
metrics are logged without a prefix (``val_miou``); multi-output heads prefix their name
(``val_landcover_miou``) and the total loss is the weighted sum of the heads' losses.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from eoengine.config.schema import LossConfig, ProjectConfig, changed
from eoengine.datasets.schema import DatasetManifest
from eoengine.errors import EOError
from eoengine.models.heads import Head, output_channels
from eoengine.training.losses import DEFAULT_LOSS, build_loss, class_weights
from eoengine.training.metrics import SCALARS, SegmentationMetrics
from eoengine.training.value_metrics import (
    MULTILABEL_SCALARS,
    REGRESSION_SCALARS,
    MultilabelMetrics,
    RegressionMetrics,
)

HEAD_SCALARS = {
    "segmentation": SCALARS, "classification": SCALARS,
    "multilabel": MULTILABEL_SCALARS, "regression": REGRESSION_SCALARS,
}



def head_metrics(head: Head, validation: bool = False) -> Any:
    """A fresh metric accumulator for a head.

    Args:
        head: the head.
        validation: score as the validation split is scored: every class of the train
            split counts in the class means, present in the targets or not.

    Returns:
        The accumulator (``update``, ``compute``, ``reset``).

    """
    if head.type == "regression":
        return RegressionMetrics()
    if head.type == "multilabel":
        return MultilabelMetrics(head.num_classes)
    return SegmentationMetrics(head.num_classes, expected=head.train_classes if validation else None)


def head_monitors(head: Head) -> list[str]:
    """The per-epoch validation metrics a head logs."""
    return [f"val_{head.prefix}{k}" for k in HEAD_SCALARS[head.type]]


def planned_heads(cfg: ProjectConfig, n_classes: int | None = None) -> list[Head]:
    """The task's heads with their channel slices (no dataset needed).

    Args:
        cfg: the config.
        n_classes: the number of classes (a dataset's); default: the config's classes.

    Returns:
        The heads in output-channel order.

    """
    specs = cfg.task.heads()
    multi = len(specs) > 1
    n_classes = len(cfg.classes) if n_classes is None else n_classes
    heads: list[Head] = []
    start = 0
    for spec in specs:
        width = 1 if spec.type == "regression" else n_classes
        heads.append(Head(spec.name, spec.type, start, start + width, spec.weight, f"{spec.name}_" if multi else "", n_classes))
        start += width
    return heads


def head_loss_config(cfg: ProjectConfig, index: int) -> LossConfig:
    """The loss a head uses: its own, the training loss (single output), or its type's default.

    Args:
        cfg: The project config.
        index: The head's position in ``cfg.task.heads()``.

    Returns:
        The head's loss settings.

    """
    spec = cfg.task.heads()[index]
    if spec.loss is not None:
        return spec.loss
    if len(cfg.task.heads()) == 1:
        if "name" in cfg.training.loss.model_fields_set:
            return cfg.training.loss
        return changed(cfg.training.loss, name=DEFAULT_LOSS[spec.type])
    return LossConfig(name=DEFAULT_LOSS[spec.type])


def build_heads(cfg: ProjectConfig, manifest: DatasetManifest) -> tuple[list[Head], list[nn.Module]]:
    """The task's heads and their losses, with class weights and target statistics from the dataset.

    Args:
        cfg: The project config (its task's heads and losses).
        manifest: The dataset's manifest (classes, targets, train class frequencies).

    Returns:
        The heads and one loss per head.

    Raises:
        EOError: A head needs targets the dataset lacks, or a loss setting is wrong.

    """
    targets = manifest.targets
    heads = planned_heads(cfg, len(manifest.classes))  # the dataset's classes, not the config's
    mark_train_classes(heads, manifest)
    losses: list[nn.Module] = []
    for i, head in enumerate(heads):
        if head.type != "regression" and not targets.classes:
            raise EOError(f"the {head.type} output needs class labels, but the dataset has none",
                          "rebuild the dataset with labels.type vector or raster")
        if head.type == "regression":
            if not targets.values:
                raise EOError("the regression output needs target values, but the dataset has none",
                              "rebuild the dataset with labels.values")
            stats = targets.values.statistics
            head.value_mean, head.value_std = stats.mean[0], stats.std[0]
        losses.append(_loss(head_loss_config(cfg, i), head.type, head.num_classes, manifest))
    return heads, losses


def mark_train_classes(heads: list[Head], manifest: DatasetManifest) -> None:
    """Record on each class head which classes the dataset's train split has pixels of.

    Validation means count each of them (:meth:`Head.metrics`), present in the split or not.

    Args:
        heads: The model's output heads.
        manifest: The dataset's manifest (its train class frequencies).

    """
    for head in heads:
        if head.type != "regression":
            head.train_classes = [n > 0 for n in manifest.class_frequencies["train"]]


def loss_class_weights(cfg: LossConfig, n_classes: int, manifest: DatasetManifest) -> list[float] | None:
    """The configured class weights: a given list, or computed from the dataset's train frequencies.

    Args:
        cfg: The loss settings (``class_weights``).
        n_classes: Classes of the task.
        manifest: The dataset's manifest (class frequencies of the train split).

    Returns:
        One weight per class, or None for unweighted.

    Raises:
        EOError: If a given list does not have one weight per class.

    """
    if isinstance(cfg.class_weights, list):
        if len(cfg.class_weights) != n_classes:
            raise EOError(f"training.loss.class_weights has {len(cfg.class_weights)} values for {n_classes} classes",
                          "give one weight per class")
        return cfg.class_weights
    return class_weights(manifest.class_frequencies["train"], cfg.class_weights)


def _loss(cfg: LossConfig, kind: str, n_classes: int, manifest: DatasetManifest | None) -> nn.Module:
    weights: list[float] | None = None
    if kind in ("segmentation", "classification") and manifest is not None:
        weights = loss_class_weights(cfg, n_classes, manifest)
    tensor = torch.tensor(weights, dtype=torch.float32) if weights else None
    return build_loss(cfg.name, tensor, cfg.kwargs, [(t.name, t.weight, t.kwargs) for t in cfg.terms or []], kind)


def check_head_losses(cfg: ProjectConfig, n_classes: int | None = None) -> None:
    """Raise :class:`EOError` if a head's loss is unknown, mis-configured or wrong for its type.

    Args:
        cfg: the config.
        n_classes: the number of classes (a dataset's); default: the config's classes.

    Raises:
        EOError: a head's loss cannot be built.

    """
    for i, head in enumerate(planned_heads(cfg, n_classes)):
        _loss(head_loss_config(cfg, i), head.type, head.num_classes, None)


def check_model_output(heads: list[Head], out: torch.Tensor, model_name: str) -> None:
    """Raise :class:`EOError` if the model's output shape cannot serve the heads."""
    if out.ndim == 2 and any(h.type in ("segmentation", "regression") for h in heads):
        kinds = sorted({h.type for h in heads if h.type in ("segmentation", "regression")})
        raise EOError(f"model '{model_name}' returns one vector per chip, but a {kinds[0]} output needs a map",
                      "use a map model (unet, deeplabv3_plus, fpn, ...) or task type classification/multilabel")
    if out.ndim not in (2, 4) or out.shape[1] != output_channels(heads):
        raise EOError(f"model '{model_name}' returned shape {tuple(out.shape)}; expected (B, {output_channels(heads)}, H, W) or (B, {output_channels(heads)})",
                      "a custom model must return logits with num_classes channels")


def loss_input(head: Head, pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Shape a head's prediction and target for its loss (chip classes become 1x1 maps)."""
    if head.type == "classification":
        return pred[:, :, None, None], target[:, None, None]
    return pred, target


def metric_input(head: Head, pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Shape a head's prediction and target for its metrics (regression back in target units)."""
    if head.type == "regression":
        return pred * head.value_std + head.value_mean, target * head.value_std + head.value_mean
    return loss_input(head, pred, target)


