"""Window positions on a raster grid: chips for datasets, tiles for prediction."""

from __future__ import annotations


def grid_positions(length: int, size: int, stride: int) -> list[int]:
    """Offsets of windows of ``size`` every ``stride`` along ``length``, last one flush."""
    if size > length:
        return []
    offsets = list(range(0, length - size + 1, stride))
    if offsets[-1] != length - size:
        offsets.append(length - size)
    return offsets
