"""Tile layout and blending weights for seamless tiled prediction.

Tiles overlap by ``overlap`` pixels and each tile's prediction is weighted by a cosine
ramp that falls towards its edges, where a network sees least context. Weights never reach
zero, so pixels at the scene border (covered by one tile only) stay defined.
"""

from __future__ import annotations

import numpy as np

from eoengine.raster.windows import grid_positions


def tile_positions(length: int, tile: int, overlap: int) -> list[int]:
    """Tile offsets along one axis covering ``length`` (one tile at 0 if it is shorter)."""
    if length <= tile:
        return [0]
    return grid_positions(length, tile, max(1, tile - overlap))


def blend_weights(tile: int, overlap: int) -> np.ndarray:
    """2-D weights (tile, tile): cosine ramps over ``overlap`` pixels at each edge."""
    ramp = np.ones(tile, dtype=np.float32)
    if overlap > 0:
        i = np.arange(overlap, dtype=np.float64)
        edge = (0.5 - 0.5 * np.cos(np.pi * (i + 0.5) / overlap)).astype(np.float32)
        ramp[:overlap] = edge
        ramp[-overlap:] = np.minimum(ramp[-overlap:], edge[::-1])
    return np.outer(ramp, ramp)


def round_up(value: int, multiple: int) -> int:
    """Smallest multiple of ``multiple`` that is >= ``value``."""
    return -(-value // multiple) * multiple
