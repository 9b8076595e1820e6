"""A class map's polygons within an area, with their class names and hectares, as a GeoPackage.

Only the window of the map under the area is read (the whole map without an area), and
:func:`~eoengine.labels.polygons.class_polygons` needs that window whole in memory: a window of
more than :data:`MAX_POLYGON_PIXELS` pixels is refused before anything is read. The pixels
vectorised are those :func:`~eoengine.inference.class_areas.class_areas` counts (not nodata, the
pixel's centre inside the area), so the polygons' hectares per class are the map's, up to the
simplification of shared edges (half a pixel) and the polygons of fewer than
:data:`~eoengine.labels.polygons.MIN_PIXELS` pixels that are dropped.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from eoengine.errors import Invalid
from eoengine.inference.class_areas import M2_PER_HA, class_names, open_class_map

MAX_POLYGON_PIXELS = 16_000_000
"""The largest window (pixels; 4000 x 4000) vectorised at once: about 200 MB of arrays and polygons."""
POLYGON_FIX = "draw a smaller area (or vectorise the COG download yourself, e.g. with gdal_polygonize.py)"


def _window(ds: Any, native: dict[str, Any] | None) -> Any:
    """The window of the map under ``native`` (the whole map without it); Invalid when too large or outside."""
    from rasterio.features import bounds as geometry_bounds
    from rasterio.windows import Window, from_bounds

    whole = Window(0, 0, ds.width, ds.height)
    if native is None:
        window = whole
    else:
        west, south, east, north = geometry_bounds(native)
        exact = from_bounds(west, south, east, north, ds.transform)
        col, row = math.floor(exact.col_off), math.floor(exact.row_off)
        window = Window(col, row, math.ceil(exact.col_off + exact.width) - col, math.ceil(exact.row_off + exact.height) - row)
        try:
            window = window.intersection(whole)
        except Exception:  # noqa: BLE001 - rasterio raises WindowError for windows that do not meet
            window = Window(0, 0, 0, 0)
    if window.width <= 0 or window.height <= 0:
        raise Invalid("the area does not overlap the map", "draw the area over the map's footprint")
    pixels = int(window.width) * int(window.height)
    if pixels > MAX_POLYGON_PIXELS:
        raise Invalid(f"the area covers {pixels:,} pixels of the map; polygons are made of at most "
                      f"{MAX_POLYGON_PIXELS:,} at once", POLYGON_FIX)
    return window


def _hectares(geometries: list[Any], crs: Any) -> list[float]:
    """Each geometry's area in hectares: geodesic for a lon/lat CRS, planar (in metres) for a projected one."""
    if crs is not None and crs.is_geographic:
        from pyproj import Geod

        geod = Geod(ellps="WGS84")
        return [abs(geod.geometry_area_perimeter(g)[0]) / M2_PER_HA for g in geometries]
    factor = crs.linear_units_factor[1] if crs is not None else 1.0
    return [g.area * factor * factor / M2_PER_HA for g in geometries]


def map_polygons(map_path: Path, area: dict[str, Any] | None = None, tolerance: float | None = None,
                 min_pixels: float | None = None) -> Any:
    """The polygons of a class map within ``area``: one row per polygon with its class and hectares.

    Args:
        map_path: A class map (single band, integer codes) as ``predict`` writes it.
        area: A GeoJSON geometry in lon/lat to keep the pixels of (their centres inside), or None for all.
        tolerance: Simplification tolerance in pixels (default :data:`~eoengine.labels.polygons.TOLERANCE_PX`).
        min_pixels: Smallest polygon kept, in pixels (default :data:`~eoengine.labels.polygons.MIN_PIXELS`).

    Returns:
        A GeoDataFrame (the map's CRS) with columns ``code``, ``name``, ``hectares`` and ``geometry``.

    Raises:
        NotFound: There is no file at ``map_path``.
        Invalid: Not a single-band integer class map, the area misses the map, or its window is larger
            than :data:`MAX_POLYGON_PIXELS`.

    """
    import geopandas as gpd
    from rasterio.features import geometry_mask
    from rasterio.warp import transform_geom
    from rasterio.windows import transform as window_transform

    from eoengine.labels.polygons import MIN_PIXELS, TOLERANCE_PX, class_polygons

    with open_class_map(map_path) as ds:
        native = transform_geom("EPSG:4326", ds.crs, area) if area is not None and ds.crs is not None else area
        window = _window(ds, native)
        codes = ds.read(1, window=window)
        transform, crs, nodata, names = window_transform(window, ds.transform), ds.crs, ds.nodata, class_names(ds.tags())
    valid = np.ones(codes.shape, dtype=bool) if nodata is None or math.isnan(nodata) else codes != nodata
    if native is not None:
        valid &= geometry_mask([native], out_shape=codes.shape, transform=transform, invert=True)
    found = class_polygons(codes, valid, transform, TOLERANCE_PX if tolerance is None else tolerance,
                           MIN_PIXELS if min_pixels is None else min_pixels)
    geometries = [p.geometry for p in found]
    return gpd.GeoDataFrame({"code": [p.code for p in found], "name": [names.get(p.code, str(p.code)) for p in found],
                             "hectares": _hectares(geometries, crs)}, geometry=geometries, crs=crs)


def write_geopackage(polygons: Any, path: Path, layer: str = "classes") -> Path:
    """Write :func:`map_polygons`' rows as a GeoPackage layer (with pyogrio).

    Args:
        polygons: The GeoDataFrame.
        path: The ``.gpkg`` file to write (replaced if there).
        layer: The layer's name.

    Returns:
        ``path``.

    """
    polygons.to_file(path, layer=layer, driver="GPKG", engine="pyogrio")
    return Path(path)
