"""Model output → answers: the one path for files, uploads, instances and tiles.

:func:`activate` turns a head's raw output channels into probabilities (softmax; sigmoid for
multi-label heads) or into values in the target's units (regression heads record the
target's mean and standard deviation); it runs in torch, on the batch the engine returns.
:func:`decide` turns probabilities into classes (arg-max, coded by a
:class:`~eoengine.inference.output.ClassCoding`, its nodata code where the input had no data)
or values (NaN where no data); it runs in numpy, on maps that tiled prediction may have
blended first. :func:`finish` is both for one image's output.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from eoengine.inference.output import ClassCoding
from eoengine.models.heads import Head


def activate(output: torch.Tensor, head: Head) -> torch.Tensor:
    """A head's part of a raw model output batch, as probabilities or as values in target units.

    Args:
        output: The model's output, (B, C, H, W) maps or (B, C) chip vectors.
        head: The head to take (its channels ``start:stop``).

    Returns:
        Segmentation: softmax over the classes, (B, K, H, W). Classification and multi-label:
        softmax or sigmoid of the chip scores (map logits averaged over the chip), (B, K).
        Regression: the value in target units, (B, 1, H, W).

    """
    part = output[:, head.start:head.stop]
    if head.type == "regression":
        return part * head.value_std + head.value_mean
    if head.type in ("classification", "multilabel") and part.ndim == 4:
        part = part.mean(dim=(2, 3))
    return torch.sigmoid(part) if head.type == "multilabel" else torch.softmax(part, dim=1)


@lru_cache(maxsize=16)
def position_coding(n_classes: int) -> ClassCoding:
    """Classes coded by their position (0..n-1), as answers without the package's classes give them."""
    return ClassCoding.of([{"index": i} for i in range(n_classes)], "positions")


def decide(activated: np.ndarray, head: Head, nodata: np.ndarray | None = None,
           coding: ClassCoding | None = None) -> np.ndarray:
    """One image's classes or values from its activated output (:func:`activate`).

    Args:
        activated: Probabilities (K, H, W) or (K,), or values (1, H, W). Class maps may also
            be given any positive per-pixel multiple of them (blended sums): the arg-max is the same.
        head: The head they belong to.
        nodata: True where the input had no data, (H, W); None: everywhere data.
        coding: How class maps code classes; None: by position (:func:`position_coding`).

    Returns:
        Segmentation: the class map (H, W) in ``coding``'s codes, its nodata code where no data.
        Regression: the values (H, W), NaN where no data. Classification: the class position
        (a 0-d array). Multi-label: whether each class is present (K,).

    """
    if head.type == "regression":
        values = activated[0]
        return values if nodata is None else np.where(nodata, np.float32(np.nan), values)
    if head.type == "multilabel":
        return activated > 0.5
    positions = activated.argmax(axis=0)
    if head.type == "classification":
        return positions
    coding = coding or position_coding(head.stop - head.start)
    return coding.encode(positions, np.zeros(positions.shape, dtype=bool) if nodata is None else nodata)


def finish(output: torch.Tensor | np.ndarray, head: Head, nodata: np.ndarray | None = None,
           coding: ClassCoding | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One image's raw model output → (classes or values, probabilities or values).

    Args:
        output: The model's output for one image, (C, H, W) or (C,).
        head: The head to finish.
        nodata: True where the input had no data, (H, W); None: everywhere data.
        coding: How class maps code classes; None: by position.

    Returns:
        What :func:`decide` gives, and the activated output (:func:`activate`) as numpy.

    """
    with torch.inference_mode():
        activated = activate(torch.as_tensor(output)[None], head)[0].numpy()
    return decide(activated, head, nodata, coding), activated
