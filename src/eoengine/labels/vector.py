"""Vector labels: read, check, repair, reproject, clip and rasterize per window.

Labels are features with a class column (GeoJSON, GeoPackage, Shapefile, anything GDAL/OGR
reads). Pixels no feature covers are *unlabelled* (:data:`IGNORE`), never a class.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from rasterio.features import rasterize
from rasterio.windows import Window
from shapely.geometry import box
from shapely.strtree import STRtree

from eoengine.config.schema import ClassSpec
from eoengine.errors import EOError, check_not_folder
from eoengine.raster.crs import crs_equivalent
from eoengine.raster.scene import Grid

log = logging.getLogger("eoengine")

IGNORE = 255
"""Label value for unlabelled or nodata pixels; losses and metrics skip it."""


def class_lookup(classes: list[ClassSpec]) -> dict[str, int]:
    """Map every accepted spelling of a class (value or name, as text) to its index."""
    out: dict[str, int] = {}
    for i, c in enumerate(classes):
        out[str(c.value)] = i
        out.setdefault(c.name, i)
    return out


def _normalise_key(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def read_vector_labels(
    path: Path, class_column: str, classes: list[ClassSpec], layer: str | None = None
) -> gpd.GeoDataFrame:
    """Read labels and return a frame with ``class_index`` and valid geometries.

    Raises :class:`EOError` for a missing file, missing CRS, missing class column, an empty
    set, or no feature of a configured class. Invalid geometries are repaired (and counted).
    """
    if not path.exists():
        raise EOError(f"labels file not found: {path}", "check labels.path in the config")
    try:
        gdf = gpd.read_file(path, layer=layer) if layer else gpd.read_file(path)
    except Exception as exc:  # noqa: BLE001 - pyogrio raises many types; all mean "unreadable"
        check_not_folder(path, "a labels file", "pass the labels file itself (e.g. a .gpkg or .shp inside the folder)")
        raise EOError(
            f"cannot read labels {path}: {str(exc).splitlines()[0]}",
            "pass a GeoJSON, GeoPackage or Shapefile",
        ) from None
    if len(gdf) == 0:
        raise EOError(f"labels {path} contain no features", "add labelled features to the file")
    if gdf.crs is None:
        raise EOError(
            f"labels {path} have no CRS",
            "add a .prj / set the CRS (e.g. ogr2ogr -a_srs EPSG:4326 out.gpkg in.shp)",
        )
    if class_column not in gdf.columns:
        cols = [c for c in gdf.columns if c != "geometry"]
        raise EOError(
            f"labels {path} have no column '{class_column}' (columns: {cols})",
            "set labels.class_column to the column that holds the class",
        )
    gdf = gdf[~gdf.geometry.is_empty & gdf.geometry.notna()].copy()
    invalid = ~gdf.geometry.is_valid
    if invalid.any():
        log.warning("labels %s: repaired %d invalid geometries", path, int(invalid.sum()))
        gdf.loc[invalid, "geometry"] = shapely.make_valid(gdf.geometry[invalid].values)
    lookup = class_lookup(classes)
    keys = gdf[class_column].map(_normalise_key)
    gdf["class_index"] = keys.map(lookup)
    unknown = gdf["class_index"].isna()
    if unknown.all():
        raise EOError(
            f"labels {path}: no value of '{class_column}' matches a configured class "
            f"(found {sorted(set(keys))[:8]}, classes are {sorted(lookup)[:8]})",
            "make the classes' 'value' or 'name' match the label column",
        )
    if unknown.any():
        log.warning(
            "labels %s: ignored %d features with unknown classes %s",
            path,
            int(unknown.sum()),
            sorted(set(keys[unknown]))[:8],
        )
        gdf = gdf[~unknown]
    gdf["class_index"] = gdf["class_index"].astype("int32")
    return gdf[["class_index", "geometry"]]


def labels_for_grid(gdf: gpd.GeoDataFrame, grid: Grid, source: str) -> gpd.GeoDataFrame:
    """Reproject labels to the grid's CRS and clip them to it; error if none overlap."""
    if not crs_equivalent(grid.crs_wkt, gdf.crs.to_wkt(), grid.bounds):
        gdf = gdf.to_crs(grid.crs_wkt)
    else:
        gdf = gdf.set_crs(grid.crs_wkt, allow_override=True)
    frame = box(*grid.bounds)
    inside = gdf.geometry.intersects(frame)
    if not inside.any():
        raise EOError(
            f"labels {source} do not overlap the scene (scene bounds {tuple(round(b) for b in grid.bounds)})",
            "check the labels are for this scene and their CRS is right",
        )
    partial = inside & ~gdf.geometry.within(frame)
    if (~inside).any() or partial.any():
        log.warning(
            "labels %s: dropped %d features outside the scene, clipped %d at its edge",
            source,
            int((~inside).sum()),
            int(partial.sum()),
        )
    gdf = gdf[inside].copy()
    gdf["geometry"] = gdf.geometry.intersection(frame)
    return gdf[~gdf.geometry.is_empty]


class VectorLabeler:
    """Rasterize labels onto windows of a grid; unlabelled pixels get :data:`IGNORE`."""

    def __init__(self, gdf: gpd.GeoDataFrame, grid: Grid, all_touched: bool = False) -> None:
        self.grid = grid
        self.geoms = np.asarray(gdf.geometry.values)
        self.values = gdf["class_index"].to_numpy()
        self.tree = STRtree(self.geoms)
        self.all_touched = all_touched

    def read(self, window: Window) -> np.ndarray:
        """Class indices (h, w) uint8 for ``window``."""
        h, w = int(window.height), int(window.width)
        a = self.grid.affine
        transform = a @ a.translation(window.col_off, window.row_off)
        bounds = self.grid.window_bounds(window.row_off, window.col_off, h, w)
        hits = self.tree.query(box(*bounds))
        if len(hits) == 0:
            return np.full((h, w), IGNORE, dtype=np.uint8)
        hits = np.sort(hits)
        shapes = ((self.geoms[i], int(self.values[i])) for i in hits)
        return rasterize(
            shapes,
            out_shape=(h, w),
            transform=transform,
            fill=IGNORE,
            dtype="uint8",
            all_touched=self.all_touched,
        )
