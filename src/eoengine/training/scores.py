"""A model package's scores on a dataset split: every head, nodata and unlabelled pixels ignored."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from eoengine.datasets.store import read_manifest
from eoengine.errors import EOError
from eoengine.models.heads import TARGET_KEY, heads_from_meta, split_outputs
from eoengine.models.package import ModelPackage
from eoengine.training.data import ChipDataset
from eoengine.training.heads import head_metrics, mark_train_classes, metric_input


def split_scores(
    pkg: ModelPackage, root: Path, split: str, batch_size: int = 32,
    forward: Callable[[torch.Tensor], torch.Tensor] | None = None, validation: bool = False,
) -> dict[str, dict[str, Any]]:
    """Metrics of every head of the model on a dataset split (nodata and unlabelled pixels ignored).

    ``forward`` replaces the package's PyTorch model (e.g. an ONNX Runtime session). With
    ``validation``, class means count every class of the train split, as training's
    validation scores do (so a one-class split cannot score 1.0).
    """
    manifest = read_manifest(root)
    if manifest["channels"] != pkg.meta["channels"]:
        raise EOError(
            f"dataset {root} has channels {manifest['channels']}, the model takes {pkg.meta['channels']}",
            "evaluate on a dataset built with the model's bands and indices",
        )
    ds = ChipDataset(root, split)
    if len(ds) == 0:
        raise EOError(f"dataset {root} has no '{split}' chips", "choose another --split")
    heads = heads_from_meta(pkg.meta)
    if validation:
        mark_train_classes(heads, manifest)
    metrics = [head_metrics(h, validation) for h in heads]
    run = forward or pkg.model
    with torch.inference_mode():
        for x, targets in DataLoader(ds, batch_size=batch_size):
            for head, acc, pred in zip(heads, metrics, split_outputs(run(x), heads), strict=True):
                acc.update(*metric_input(head, pred, targets[TARGET_KEY[head.type]]))
    return {h.name: m.compute() for h, m in zip(heads, metrics, strict=True)}
