"""The block grid of an annotation set: an item's pixel grid, cut into the blocks of ``dataset.split: blocks``.

A set's tasks are the cells of its reference item's grid (the item's finest band, as
:class:`~eoengine.raster.scene.SceneReader` chooses it), ``block_size`` pixels square from the
grid's origin: cell (row, col) covers pixel rows ``row * block_size`` to ``(row + 1) * block_size``
(cut at the grid's edge), exactly the block :func:`eoengine.datasets.split.block_splitter`
gives pixel ``(row * block_size, col * block_size)``. So no cell straddles two splits. Cells are
polygons in EPSG:4326 (their edges densified when the grid is projected, so they stay exact).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pyproj import CRS, Transformer
from shapely import ops
from shapely.geometry import box, mapping
from shapely.geometry.base import BaseGeometry

from eoengine.errors import Invalid
from eoengine.raster.scene import Grid

LONLAT = "EPSG:4326"
DENSIFY = 16
"""Segments per cell edge when a projected cell is drawn in lon/lat."""


@dataclass(frozen=True)
class Cell:
    """One block of the grid: its block indices, pixel window and outlines (native CRS and EPSG:4326)."""

    row: int
    col: int
    window: tuple[int, int, int, int]  # first pixel row, first pixel col, height, width
    native: BaseGeometry
    lonlat: BaseGeometry


def grid_crs(item: dict[str, Any]) -> str:
    """An item's CRS as its STAC projection extension names it (``EPSG:n`` or WKT2).

    Args:
        item: A STAC Item (dict).

    Returns:
        ``proj:code`` (or ``EPSG:proj:epsg``), else ``proj:wkt2``.

    Raises:
        Invalid: The item states no CRS.

    """
    props = item.get("properties", {})
    code = props.get("proj:code") or (f"EPSG:{props['proj:epsg']}" if props.get("proj:epsg") else None)
    crs = code or props.get("proj:wkt2")
    if not crs:
        raise Invalid(f"scene {item.get('id')!r} states no CRS (proj:code or proj:wkt2)",
                      "annotate scenes of the project catalog (GET /api/v1/projects/SLUG/imagery)")
    return str(crs)


def item_grid(item: dict[str, Any]) -> Grid:
    """The pixel grid of an item: its finest asset's (the first of the finest when several tie).

    Args:
        item: A STAC Item (dict) with the projection extension on its assets.

    Returns:
        The grid (CRS as the item names it).

    Raises:
        Invalid: No asset has ``proj:transform`` and ``proj:shape``, or the item states no CRS.

    """
    assets = [a for a in item.get("assets", {}).values() if a.get("proj:transform") and a.get("proj:shape")]
    if not assets:
        raise Invalid(f"scene {item.get('id')!r} has no asset with proj:transform and proj:shape",
                      "annotate scenes of the project catalog (GET /api/v1/projects/SLUG/imagery)")
    finest = min(assets, key=lambda a: abs(float(a["proj:transform"][0])))
    height, width = (int(v) for v in finest["proj:shape"])
    transform = tuple(float(v) for v in finest["proj:transform"][:6])
    return Grid(grid_crs(item), transform, width, height)  # type: ignore[arg-type]


def grid_json(grid: Grid) -> dict[str, Any]:
    """A grid as the set stores it (``crs``, ``transform``, ``width``, ``height``)."""
    return {"crs": grid.crs_wkt, "transform": list(grid.transform), "width": grid.width, "height": grid.height}


def grid_of(stored: dict[str, Any]) -> Grid:
    """The grid a set stores (:func:`grid_json`)."""
    return Grid(stored["crs"], tuple(stored["transform"]), int(stored["width"]), int(stored["height"]))  # type: ignore[arg-type]


@lru_cache(maxsize=64)
def _transformer(source: str, target: str) -> Transformer:
    return Transformer.from_crs(CRS.from_user_input(source), CRS.from_user_input(target), always_xy=True)


def is_lonlat(crs: str) -> bool:
    """Whether ``crs`` is EPSG:4326 (or equivalent lon/lat)."""
    return bool(CRS.from_user_input(crs).equals(CRS.from_user_input(LONLAT), ignore_axis_order=True))


def reproject(geometry: BaseGeometry, source: str, target: str) -> BaseGeometry:
    """A shapely geometry in another CRS (x, y as lon, lat for geographic CRSs).

    Args:
        geometry: The geometry.
        source: Its CRS (``EPSG:n`` or WKT).
        target: The CRS wanted.

    Returns:
        The transformed geometry (the same object when the CRSs are one).

    """
    if source == target:
        return geometry
    transformer = _transformer(source, target)
    return ops.transform(lambda x, y, z=None: transformer.transform(x, y), geometry)


def to_lonlat(geometry: BaseGeometry, crs: str) -> BaseGeometry:
    """A geometry of ``crs`` in EPSG:4326, its edges densified first when ``crs`` is projected."""
    if is_lonlat(crs):
        return geometry
    minx, miny, maxx, maxy = geometry.bounds
    step = max(maxx - minx, maxy - miny) / DENSIFY
    return reproject(geometry.segmentize(step) if step > 0 else geometry, crs, LONLAT)


def from_lonlat(geometry: BaseGeometry, crs: str) -> BaseGeometry:
    """A geometry in EPSG:4326 (lon, lat) in ``crs``, vertex by vertex (a drawn vertex stays the same point)."""
    return geometry if is_lonlat(crs) else reproject(geometry, LONLAT, crs)


def block_counts(grid: Grid, block: int) -> tuple[int, int]:
    """Rows and columns of blocks of ``block`` pixels covering the grid (the last ones cut at its edge)."""
    return -(-grid.height // block), -(-grid.width // block)


def cell(grid: Grid, block: int, row: int, col: int) -> Cell:
    """Block (row, col) of the grid.

    Args:
        grid: The grid.
        block: The block size in pixels.
        row: Block row.
        col: Block column.

    Returns:
        The cell, cut at the grid's edge.

    """
    r0, c0 = row * block, col * block
    window = (r0, c0, min(block, grid.height - r0), min(block, grid.width - c0))
    native = box(*grid.window_bounds(r0, c0, window[2], window[3]))
    return Cell(row, col, window, native, to_lonlat(native, grid.crs_wkt))


def cells(grid: Grid, block: int, aoi: BaseGeometry) -> list[tuple[Cell, BaseGeometry]]:
    """The cells that overlap an area of interest (in EPSG:4326), each with its part of the area.

    Args:
        grid: The grid.
        block: The block size in pixels.
        aoi: The area of interest, in EPSG:4326.

    Returns:
        (cell, cell ∩ aoi) for every cell whose overlap with the area has an area (row by row).

    """
    rows, cols = block_counts(grid, block)
    out = []
    for row in range(rows):
        for col in range(cols):
            found = cell(grid, block, row, col)
            if not found.lonlat.intersects(aoi):
                continue
            part = found.lonlat.intersection(aoi)
            if part.area > 0:
                out.append((found, part))
    return out


def geojson(geometry: BaseGeometry) -> dict[str, Any]:
    """A shapely geometry as a GeoJSON geometry (plain dicts and lists, as JSON columns store it)."""
    out: dict[str, Any] = json.loads(json.dumps(mapping(geometry)))
    return out
