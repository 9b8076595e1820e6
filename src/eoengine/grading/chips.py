"""The graded chips of a split: raw inputs, truth, and the model's predictions, decoded once and kept as arrays.

Every grading part works on the same arrays: truth and prediction maps (N, h, w) per chip (h = w = 1 for a
chip-classification head), the top-class probability for class models, and the chips' index rows (scene,
window, date). Corrupted variants go through :func:`predict_raw` the same way the clean chips did.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from eoengine.datasets.schema import DatasetManifest
from eoengine.datasets.store import INDEX, open_all_arrays
from eoengine.errors import EOError
from eoengine.features.normalise import normalise
from eoengine.labels import IGNORE
from eoengine.models.heads import Head, heads_from_meta, split_outputs
from eoengine.models.package import ModelPackage
from eoengine.training.data import chip_targets

GRADED_TYPES = ("segmentation", "classification", "regression")
Predictor = Callable[[np.ndarray], "Predictions"]
Forward = Callable[[np.ndarray], torch.Tensor]
"""An engine's forward pass: normalised chips (N, C, P, P) float32 to the model's outputs."""
"""Raw chips (N, C, P, P) to predictions: a model package (:func:`model_predictor`) or a baseline."""


@dataclass
class Predictions:
    """A model's output on chips: the predicted class (or value) per pixel, and the top-class probability."""

    pred: np.ndarray
    confidence: np.ndarray | None


@dataclass
class GradedChips:
    """One split's chips with truth and the clean predictions (see the module docstring)."""

    head: Head
    raw: np.ndarray
    truth: np.ndarray
    rows: Any
    manifest: DatasetManifest
    predictions: Predictions | None = None

    @property
    def clean(self) -> Predictions:
        """The model's predictions of the clean chips (set by :func:`predict_graded`)."""
        if self.predictions is None:
            raise RuntimeError("the graded chips are not predicted yet: call predict_graded first")
        return self.predictions

    @property
    def is_values(self) -> bool:
        """Whether the graded head predicts values (regression) rather than classes."""
        return self.head.type == "regression"

    @property
    def labelled(self) -> np.ndarray:
        """Pixels with a truth (N, h, w) bool."""
        return np.isfinite(self.truth) if self.is_values else self.truth != IGNORE


def graded_head(pkg: ModelPackage) -> Head:
    """The head a suite grades: the model's first map or class head.

    Args:
        pkg: The model package.

    Returns:
        Its first segmentation, classification or regression head.

    Raises:
        EOError: The model has only multi-label heads.

    """
    for head in heads_from_meta(pkg.meta):
        if head.type in GRADED_TYPES:
            return head
    raise EOError(f"model '{pkg.meta.model}' has no segmentation, classification or regression head",
                  "grade a model with one of those heads (multi-label heads are scored by 'eoengine evaluate')")


def predict_raw(pkg: ModelPackage, head: Head, raw: np.ndarray, manifest: DatasetManifest,
                batch_size: int = 32, forward: Forward | None = None) -> Predictions:
    """The model's predictions for raw chips, normalised with the dataset's train statistics as training did.

    Args:
        pkg: The model package.
        head: The graded head.
        raw: Raw chips (N, C, P, P) float32, NaN for nodata.
        manifest: The dataset's manifest (its train statistics).
        batch_size: Chips per forward pass.
        forward: The engine's forward pass on normalised batches (default: the package's PyTorch model).

    Returns:
        Per-pixel predictions (N, h, w) and, for class heads, the top-class probability.

    """
    mean, std = train_moments(manifest)
    heads = heads_from_meta(pkg.meta)
    at = next(i for i, h in enumerate(heads) if h.name == head.name)
    run = forward or (lambda batch: pkg.model(torch.from_numpy(batch)))
    preds, confs = [], []
    with torch.inference_mode():
        for start in range(0, len(raw), batch_size):
            out = split_outputs(run(normalise(raw[start:start + batch_size], mean, std)), heads)[at]
            if head.type == "regression":
                preds.append((out * head.value_std + head.value_mean).numpy().astype(np.float32))
                continue
            probs = torch.softmax(out, dim=1)
            if head.type == "classification":
                probs = probs[:, :, None, None]
            conf, cls = probs.max(dim=1)
            preds.append(cls.numpy().astype(np.int64))
            confs.append(conf.numpy().astype(np.float32))
    return Predictions(np.concatenate(preds), np.concatenate(confs) if confs else None)


def load_graded(pkg: ModelPackage, root: Path, split: str) -> GradedChips:
    """Decode a split's chips once (predicted later, once the suite is checked: :func:`predict_graded`).

    Args:
        pkg: The model package.
        root: The dataset folder.
        split: The split to grade.

    Returns:
        The chips and their truth (class positions with IGNORE, or values with NaN).

    Raises:
        EOError: The dataset's channels differ from the model's, the split has no chips, or the dataset has no
            targets for the graded head.

    """
    import geopandas as gpd

    manifest = DatasetManifest.read(root)
    if manifest.channels != pkg.meta.channels:
        raise EOError(f"dataset {root} has channels {manifest.channels}, the model takes {pkg.meta.channels}",
                      "grade on a dataset built with the model's bands and indices (data.dataset in the suite)")
    index = gpd.read_parquet(root / INDEX)
    rows = index.loc[index["split"] == split].sort_values("chip_id").reset_index(drop=True)
    if rows.empty:
        raise EOError(f"dataset {root} has no '{split}' chips", "set data.split in the suite to a split the dataset has")
    head = graded_head(pkg)
    arrays = open_all_arrays(root)
    ids = rows["chip_id"].to_numpy()
    raw = np.asarray(arrays["images"].get_orthogonal_selection((ids,)), dtype=np.float32)
    if head.type == "regression":
        if "values" not in arrays:
            raise EOError(f"dataset {root} has no value targets", "grade a regression model on a dataset with labels.values")
        truth = np.asarray(arrays["values"].get_orthogonal_selection((ids,)), dtype=np.float32)
    elif head.type == "classification":
        label, _, _ = chip_targets(rows, [c.name for c in manifest.classes])
        truth = label[:, None, None]
    else:
        truth = np.asarray(arrays["labels"].get_orthogonal_selection((ids,)), dtype=np.int64)
    return GradedChips(head, raw, truth, rows, manifest)


def model_predictor(pkg: ModelPackage, graded: GradedChips, batch_size: int = 32,
                    forward: Forward | None = None) -> Predictor:
    """The package's model as a predictor of raw chips of the graded dataset.

    Args:
        pkg: The model package.
        graded: The decoded chips (their head and the dataset's statistics).
        batch_size: Chips per forward pass.
        forward: The engine's forward pass (default: the package's PyTorch model; see :func:`engine_predictor`).

    Returns:
        A function of raw chips.

    """
    def run(raw: np.ndarray) -> Predictions:
        return predict_raw(pkg, graded.head, raw, graded.manifest, batch_size, forward)

    return run


def engine_predictor(pkg: ModelPackage, graded: GradedChips, engine: str = "auto",
                     batch_size: int = 32) -> tuple[str, Predictor]:
    """The package on an inference engine as a predictor, chosen as ``eoengine predict --engine`` chooses.

    Args:
        pkg: The model package.
        graded: The decoded chips (a batch of them is the probe ``auto`` times both engines on).
        engine: ``auto`` (the faster of PyTorch and the package's ONNX graph, recorded per model and machine),
            ``torch``, ``onnx`` or ``onnx-int8``.
        batch_size: Chips per forward pass.

    Returns:
        The engine's name and the predictor.

    Raises:
        EOError: An unknown engine, or one the package has no file for.

    """
    from eoengine.inference.engines import select_engine

    mean, std = train_moments(graded.manifest)
    name, forward = select_engine(pkg, engine, normalise(graded.raw[:batch_size], mean, std))
    return name, model_predictor(pkg, graded, batch_size, forward)


def train_moments(manifest: DatasetManifest) -> tuple[np.ndarray, np.ndarray]:
    """The train split's per-channel mean and std (float32), which chips are normalised with."""
    stats = manifest.statistics.train
    return np.asarray(stats.mean, np.float32), np.asarray(stats.std, np.float32)
