"""How much of each class a class map holds, in hectares, optionally within an area.

The map is read block by block (any size), so memory stays that of one block. Pixel areas are
exact for the map's grid: a projected CRS gives every pixel the same area (in its linear units,
converted to metres); a geographic CRS (degrees) gives each row its geodesic area on the WGS 84
ellipsoid. Nodata pixels, and pixels whose centre lies outside the area, are not counted. Class
names come from the map's ``EOENGINE_CLASS_VALUES`` tag (what :mod:`eoengine.inference.output`
writes); a code without a name is named by its value.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eoengine.errors import Invalid, NotFound

M2_PER_HA = 10_000.0


@dataclass(frozen=True)
class ClassArea:
    """One class of a map: its code, name, pixel count and area in hectares."""

    code: int
    name: str
    pixels: int
    hectares: float


def class_names(tags: dict[str, str]) -> dict[int, str]:
    """``{code: class name}`` from a map's tags (empty for a map without them)."""
    try:
        named = json.loads(tags.get("EOENGINE_CLASS_VALUES") or "{}")
    except json.JSONDecodeError:
        return {}
    return {int(k): str(v) for k, v in named.items()} if isinstance(named, dict) else {}


@contextmanager
def open_class_map(map_path: Path) -> Iterator[Any]:
    """Open a class map with rasterio, checked: the file exists, GDAL reads it, one integer band.

    Args:
        map_path: the map.

    Yields:
        The open dataset.

    Raises:
        NotFound: there is no file at ``map_path``.
        Invalid: GDAL cannot read it, or it is not a single-band integer class map (named by its file name).

    """
    import rasterio
    from rasterio.errors import RasterioIOError

    name = Path(map_path).name
    if not Path(map_path).is_file():
        raise NotFound(f"no map at {name}", "check the path, or predict the map first")
    try:
        ds = rasterio.open(map_path)
    except RasterioIOError as exc:
        raise Invalid(f"{name} is not a raster GDAL can read: {exc}", "give a GeoTIFF class map") from None
    with ds:
        if ds.count != 1 or not np.issubdtype(np.dtype(ds.dtypes[0]), np.integer):
            raise Invalid(f"{name} is not a class map (it has {ds.count} band(s) of {ds.dtypes[0]})",
                          "give the class map predict wrote, not a probability or value map")
        yield ds


def _row_areas_m2(ds: Any, row0: int, rows: int) -> np.ndarray:
    """The area (m²) of one pixel in each of ``rows`` rows from ``row0``."""
    t = ds.transform
    if ds.crs is not None and ds.crs.is_geographic:
        from pyproj import Geod

        geod = Geod(ellps="WGS84")
        out = np.empty(rows)
        for i in range(rows):
            west, north = t @ (0, row0 + i)
            east, south = t @ (1, row0 + i + 1)
            lons, lats = [west, east, east, west], [north, north, south, south]
            out[i] = abs(geod.polygon_area_perimeter(lons, lats)[0])
        return out
    factor = ds.crs.linear_units_factor[1] if ds.crs is not None else 1.0
    return np.full(rows, abs(t.a * t.e - t.b * t.d) * factor * factor)


def class_areas(map_path: Path, area: dict[str, Any] | None = None) -> list[ClassArea]:
    """The pixels and hectares of each class of a class map, within ``area`` if given.

    Args:
        map_path: a class map (single band, integer codes) as written by ``predict``.
        area: a GeoJSON geometry in lon/lat (EPSG:4326) to count within, or None for the whole map.

    Returns:
        Each class found (or named by the map's tags), in code order; classes named but absent have 0.

    Raises:
        NotFound: there is no file at ``map_path``.
        Invalid: the file is not a raster, or not a single-band integer class map.

    """
    with open_class_map(map_path) as ds:
        names = class_names(ds.tags())
        pixels, m2 = _count(ds, area)
    codes = sorted(set(names) | set(pixels))
    return [ClassArea(c, names.get(c, str(c)), int(pixels.get(c, 0)), m2.get(c, 0.0) / M2_PER_HA) for c in codes]


def _count(ds: Any, area: dict[str, Any] | None) -> tuple[dict[int, int], dict[int, float]]:
    from rasterio.features import geometry_mask
    from rasterio.warp import transform_geom
    from rasterio.windows import transform as window_transform

    native = transform_geom("EPSG:4326", ds.crs, area) if area is not None and ds.crs is not None else area
    pixels: dict[int, int] = {}
    m2: dict[int, float] = {}
    for _, window in ds.block_windows(1):
        codes = ds.read(1, window=window)
        keep = np.ones(codes.shape, dtype=bool) if ds.nodata is None else codes != ds.nodata
        if native is not None:
            keep &= geometry_mask([native], out_shape=codes.shape, transform=window_transform(window, ds.transform),
                                  invert=True)
        if not keep.any():
            continue
        row_m2 = _row_areas_m2(ds, int(window.row_off), codes.shape[0])
        rows = np.broadcast_to(row_m2[:, None], codes.shape)[keep]
        values = codes[keep]
        for code in np.unique(values):
            hit = values == code
            pixels[int(code)] = pixels.get(int(code), 0) + int(hit.sum())
            m2[int(code)] = m2.get(int(code), 0.0) + float(rows[hit].sum())
    return pixels, m2
