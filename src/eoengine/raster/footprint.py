"""A raster's footprint as a GeoJSON polygon in longitude/latitude (EPSG:4326)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import rasterio
from rasterio.errors import RasterioIOError
from rasterio.warp import transform_geom
from shapely.geometry import box, mapping

from eoengine.errors import EOError


def footprint_wgs84(path: str | Path) -> dict[str, Any]:
    """The outline of a raster's extent in EPSG:4326 (edges densified, so a projected grid stays exact).

    Args:
        path: The raster file.

    Returns:
        A GeoJSON Polygon geometry.

    Raises:
        EOError: The file cannot be read or has no CRS.

    """
    try:
        with rasterio.open(path) as ds:
            if ds.crs is None:
                raise EOError(f"{path} has no CRS", "assign one (gdal_edit.py -a_srs)")
            outline = box(*ds.bounds).segmentize(max(ds.width * abs(ds.res[0]), ds.height * abs(ds.res[1])) / 20)
            geometry: dict[str, Any] = transform_geom(ds.crs, "EPSG:4326", mapping(outline), precision=7)
    except RasterioIOError as exc:
        raise EOError(f"cannot read {path}: {str(exc).splitlines()[0]}", "check the file") from None
    return geometry
