"""A class map as polygons: one per run of equal class pixels, simplified as a coverage, small ones dropped.

:func:`class_polygons` vectorises a class map with ``rasterio.features.shapes`` in pixel
coordinates (so every vertex is a pixel corner), simplifies all polygons together with
``shapely.coverage_simplify`` (shared edges stay shared: no gaps or overlaps appear between
neighbours; the map's outer edge and its nodata edges are kept as they are), drops polygons
smaller than ``min_pixels`` pixels and fills their holes of that size, then places the result
on the map's grid with its affine transform.

What the rule means for the map: rasterising the polygons (pixel centres) gives the class map
back except on pixels next to a class boundary (a simplified edge moves by about
``tolerance`` pixels) and on the pixels of the dropped polygons and filled holes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from affine import Affine
from rasterio.features import shapes
from shapely.affinity import affine_transform
from shapely.geometry import Polygon, box, shape
from shapely.geometry.base import BaseGeometry

TOLERANCE_PX = 0.5
"""Simplification tolerance: half a pixel."""
MIN_PIXELS = 4
"""Polygons (and holes) of fewer pixels are dropped (filled)."""


@dataclass(frozen=True)
class ClassPolygon:
    """One polygon of a class map: its class code, geometry (the grid's CRS) and mask in pixel coordinates."""

    code: int
    geometry: BaseGeometry
    pixels: BaseGeometry


def _filled(poly: Polygon, min_area: float) -> Polygon:
    """``poly`` without its holes smaller than ``min_area``."""
    kept = [ring for ring in poly.interiors if Polygon(ring).area >= min_area]
    return Polygon(poly.exterior, kept)


def class_polygons(classes: np.ndarray, valid: np.ndarray, transform: Affine, tolerance: float = TOLERANCE_PX,
                   min_pixels: float = MIN_PIXELS) -> list[ClassPolygon]:
    """The polygons of a class map, simplified as a coverage, the small ones dropped.

    Args:
        classes: The class map (H, W), integer class codes.
        valid: True where the map holds a class (False: nodata, left out).
        transform: The map's affine transform (pixel → the grid's CRS).
        tolerance: Simplification tolerance in pixels (0: none).
        min_pixels: Smallest polygon kept (and hole kept open), in pixels (0: all).

    Returns:
        The polygons, in the order ``shapes`` finds them (row-major by their first pixel).

    """
    mask = valid.astype(bool)
    found = [(shape(geom), int(value)) for geom, value in
             shapes(classes.astype(np.int32), mask=mask, connectivity=4, transform=Affine.identity())]
    if not found:
        return []
    geoms = np.array([g for g, _ in found], dtype=object)
    if tolerance > 0:
        geoms = shapely.coverage_simplify(geoms, tolerance, simplify_boundary=False)
    window = box(0, 0, classes.shape[1], classes.shape[0])
    out = []
    for geom, (_, code) in zip(geoms, found, strict=True):
        parts = [_filled(p, min_pixels) for p in shapely.get_parts(geom.intersection(window))
                 if isinstance(p, Polygon) and p.area >= max(min_pixels, 1e-9)]
        if not parts:
            continue
        pixels = parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)
        placed = affine_transform(pixels, [transform.a, transform.b, transform.d, transform.e, transform.c, transform.f])
        out.append(ClassPolygon(code, shapely.make_valid(placed) if not placed.is_valid else placed, pixels))
    return out
