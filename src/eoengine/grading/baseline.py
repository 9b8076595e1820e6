"""A per-pixel random forest on the same dataset split: the baseline a deep model must beat."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from eoengine.datasets.store import INDEX, open_all_arrays
from eoengine.errors import EOError
from eoengine.grading.chips import GradedChips, Predictions, Predictor
from eoengine.labels import IGNORE
from eoengine.training.metrics import scores_from_confusion


def _pixels(root: Path, split: str, values: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A split's labelled pixels without nodata: features (n, C) and classes (or values, for ``values``)."""
    import geopandas as gpd

    index = gpd.read_parquet(root / INDEX)
    ids = np.sort(index.loc[index["split"] == split, "chip_id"].to_numpy())
    arrays = open_all_arrays(root)
    x = arrays["images"].get_orthogonal_selection((ids,))
    y = arrays["values" if values else "labels"].get_orthogonal_selection((ids,))
    x = x.transpose(0, 2, 3, 1).reshape(-1, x.shape[1])
    y = y.reshape(-1)
    keep = (np.isfinite(y) if values else y != IGNORE) & ~np.isnan(x).any(axis=1)
    return x[keep], y[keep]


def _train_sample(root: Path, max_train: int, seed: int, values: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_train`` train pixels, a seeded choice."""
    x, y = _pixels(root, "train", values)
    if len(y) > max_train:
        pick = np.random.default_rng(seed).choice(len(y), max_train, replace=False)
        x, y = x[pick], y[pick]
    return x, y


def random_forest_baseline(
    root: Path, n_classes: int, trees: int = 300, max_train: int = 60_000, seed: int = 0
) -> dict[str, Any]:
    """Fit a random forest on train-split pixels, score it on test-split pixels.

    Args:
        root: The dataset folder.
        n_classes: Classes in the dataset.
        trees: Trees in the forest.
        max_train: Train pixels sampled at most.
        seed: The sample's and the forest's seed.

    Returns:
        The test split's scores (as :func:`eoengine.training.metrics.scores_from_confusion` gives them).

    """
    from sklearn.ensemble import RandomForestClassifier

    x, y = _train_sample(root, max_train, seed)
    forest = RandomForestClassifier(n_estimators=trees, n_jobs=-1, random_state=seed)
    forest.fit(x, y)
    xt, yt = _pixels(root, "test")
    pred = forest.predict(xt)
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (yt.astype(int), pred.astype(int)), 1)
    return scores_from_confusion(torch.from_numpy(cm))


def forest_predictor(root: Path, graded: GradedChips, trees: int = 300, max_train: int = 60_000,
                     seed: int = 0) -> Predictor:
    """A per-pixel random forest fitted on the train split, as a predictor of raw chips (the graded baseline).

    Pixels with nodata in some channel are predicted from the train means there (what a network sees after
    normalisation). For a class map the confidence is the forest's top-class vote share; for a value map
    (a regression head) the forest regresses the dataset's values.

    Args:
        root: The dataset folder (its train split is fitted on).
        graded: The graded chips (their head: the classes, or the values, to predict).
        trees: Trees in the forest.
        max_train: Train pixels sampled at most.
        seed: The sample's and the forest's seed.

    Returns:
        A function of raw chips (N, C, P, P) to per-pixel predictions.

    Raises:
        EOError: The graded head labels whole chips (the baseline is per pixel).

    """
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    if graded.head.type not in ("segmentation", "regression"):
        raise EOError(f"the random forest baseline predicts pixel maps, the graded head is {graded.head.type}",
                      "compare chip models with another model package instead of --baseline")
    values = graded.head.type == "regression"
    x, y = _train_sample(root, max_train, seed, values)
    kind = RandomForestRegressor if values else RandomForestClassifier
    forest = kind(n_estimators=trees, n_jobs=-1, random_state=seed).fit(x, y)
    mean = np.asarray(graded.manifest.statistics.train.mean, dtype=np.float32)
    k = graded.head.num_classes

    def run(raw: np.ndarray) -> Predictions:
        n, c, h, w = raw.shape
        px = raw.transpose(0, 2, 3, 1).reshape(-1, c)
        px = np.where(np.isfinite(px), px, mean[None, :])
        if values:
            return Predictions(forest.predict(px).reshape(n, h, w).astype(np.float32), None)
        proba = np.zeros((len(px), k), dtype=np.float32)
        proba[:, forest.classes_.astype(int)] = forest.predict_proba(px)
        return Predictions(proba.argmax(1).reshape(n, h, w).astype(np.int64), proba.max(1).reshape(n, h, w))

    return run
