"""A per-pixel random forest on the same dataset split: the baseline a deep model must beat."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from eoengine.datasets.store import INDEX, open_arrays
from eoengine.errors import EOError
from eoengine.grading.chips import GradedChips, Predictions, Predictor
from eoengine.labels import IGNORE
from eoengine.training.metrics import scores_from_confusion


def _pixels(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    import geopandas as gpd

    index = gpd.read_parquet(root / INDEX)
    ids = np.sort(index.loc[index["split"] == split, "chip_id"].to_numpy())
    images, labels = open_arrays(root)
    x = images.get_orthogonal_selection((ids,))
    y = labels.get_orthogonal_selection((ids,))
    x = x.transpose(0, 2, 3, 1).reshape(-1, x.shape[1])
    y = y.reshape(-1)
    keep = (y != IGNORE) & ~np.isnan(x).any(axis=1)
    return x[keep], y[keep]


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

    x, y = _pixels(root, "train")
    if len(y) > max_train:
        pick = np.random.default_rng(seed).choice(len(y), max_train, replace=False)
        x, y = x[pick], y[pick]
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
    normalisation); the confidence is the forest's top-class vote share.

    Args:
        root: The dataset folder (its train split is fitted on).
        graded: The graded chips (their head: the classes to predict).
        trees: Trees in the forest.
        max_train: Train pixels sampled at most.
        seed: The sample's and the forest's seed.

    Returns:
        A function of raw chips (N, C, P, P) to per-pixel predictions.

    Raises:
        EOError: The graded head is not a class map (the baseline is per pixel).

    """
    from sklearn.ensemble import RandomForestClassifier

    if graded.head.type != "segmentation":
        raise EOError(f"the random forest baseline predicts class maps, the graded head is {graded.head.type}",
                      "compare value or chip models with another model package instead of --baseline")
    x, y = _pixels(root, "train")
    if len(y) > max_train:
        pick = np.random.default_rng(seed).choice(len(y), max_train, replace=False)
        x, y = x[pick], y[pick]
    forest = RandomForestClassifier(n_estimators=trees, n_jobs=-1, random_state=seed).fit(x, y)
    mean = np.asarray(graded.manifest.statistics.train.mean, dtype=np.float32)
    k = graded.head.num_classes

    def run(raw: np.ndarray) -> Predictions:
        n, c, h, w = raw.shape
        px = raw.transpose(0, 2, 3, 1).reshape(-1, c)
        px = np.where(np.isfinite(px), px, mean[None, :])
        proba = np.zeros((len(px), k), dtype=np.float32)
        proba[:, forest.classes_.astype(int)] = forest.predict_proba(px)
        return Predictions(proba.argmax(1).reshape(n, h, w).astype(np.int64), proba.max(1).reshape(n, h, w))

    return run
