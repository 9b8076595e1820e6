"""A per-pixel random forest on the same dataset split: the baseline a deep model must beat."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from eoengine.datasets.store import INDEX, open_arrays
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
    """Fit a random forest on train-split pixels, score it on test-split pixels."""
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
