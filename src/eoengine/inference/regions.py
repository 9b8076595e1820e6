"""How a scene is cut into regions for tiled prediction, so that each tile runs once.

Tiles sit on one global grid (origins every ``stride = tile - overlap`` pixels, plus a last
tile flush with the scene edge). Region borders fall on multiples of the stride, and each
tile belongs to the region holding its origin, so a tile reaches at most ``overlap`` pixels
into the next region (to the right and below). The last region along an axis is at least
one tile long, so the flush tile is its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from eoengine.inference.tiling import round_up, tile_positions


def axis_regions(length: int, tile: int, overlap: int, size: int) -> list[tuple[int, int, list[int]]]:
    """(start, end, tile origins) of each region along one axis."""
    stride = max(1, tile - overlap)
    size = max(stride, round_up(size, stride))
    last_start = 0 if length <= tile else ((length - tile) // size) * size
    starts = list(range(0, last_start + 1, size))
    ends = [*starts[1:], length]
    origins = tile_positions(length, tile, overlap)
    out = []
    for k, (a, b) in enumerate(zip(starts, ends, strict=True)):
        mine = [p for p in origins if a <= p < b or (k == len(starts) - 1 and p >= a)]
        out.append((a, b, mine))
    return out


@dataclass
class Region:
    """One region: its output extent, its tiles, and the extent its tiles cover."""

    i: int
    j: int
    y0: int
    y1: int
    x0: int
    x1: int
    rows: list[int]
    cols: list[int]
    tile: int

    @property
    def cover(self) -> tuple[int, int]:
        """(height, width) from the region's origin to the far edge of its last tiles."""
        h = max(self.y1, max(self.rows) + self.tile) - self.y0
        w = max(self.x1, max(self.cols) + self.tile) - self.x0
        return h, w


def regions(height: int, width: int, tile: int, overlap: int, size: int) -> list[Region]:
    """All regions of a height x width scene, in row-major order."""
    rows = axis_regions(height, tile, overlap, size)
    cols = axis_regions(width, tile, overlap, size)
    return [
        Region(i, j, y0, y1, x0, x1, rr, cc, tile)
        for i, (y0, y1, rr) in enumerate(rows)
        for j, (x0, x1, cc) in enumerate(cols)
    ]
