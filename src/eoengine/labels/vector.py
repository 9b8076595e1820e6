"""Vector labels: read, check, repair, reproject, clip and rasterize per window.

Labels are features with a class column, or all of one class (GeoJSON, GeoPackage,
Shapefile, anything GDAL/OGR reads). Pixels no feature covers are *unlabelled*
(:data:`IGNORE`) unless a background class is configured for them (over the scene or a
labelled area): a footprint file says where buildings are, not that the rest was checked.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS
from rasterio.features import rasterize
from rasterio.windows import Window
from shapely.geometry import box
from shapely.strtree import STRtree

from eoengine.config.schema import BufferConfig, ClassSpec, class_key, class_lookup
from eoengine.errors import EOError, NotFound, check_not_folder
from eoengine.labels import IGNORE
from eoengine.raster.crs import crs_equivalent
from eoengine.raster.scene import Grid

log = logging.getLogger(__name__)

def read_vector_file(path: Path, layer: str | None = None, what: str = "labels", setting: str = "labels.path",
                     repair: bool = True) -> gpd.GeoDataFrame:
    """Read a vector file's non-empty features with their CRS, repairing invalid geometries.

    Args:
        path: GeoJSON, GeoPackage, Shapefile or anything else GDAL/OGR reads.
        layer: the layer to read (GeoPackage), or None for the first.
        what: what the file holds, for messages ("labels", "labelled area").
        setting: the config setting that names the file, for messages.
        repair: drop empty geometries and repair invalid ones (``make_valid``, logged), as a dataset
            build does; False keeps every feature as the file has it, in file order, for a caller that
            refuses bad ones by their position (the annotation import).

    Returns:
        The features, each with a valid, non-empty geometry (``repair``), else all of them.

    Raises:
        EOError: the file is missing or unreadable, has no features, or has no CRS.

    """
    if not path.exists():
        raise NotFound(f"{what} file not found: {path}", f"check {setting} in the config")
    try:
        gdf = gpd.read_file(path, layer=layer) if layer else gpd.read_file(path)
    except Exception as exc:  # noqa: BLE001 - pyogrio raises many types; all mean "unreadable"
        check_not_folder(path, "a labels file", "pass the labels file itself (e.g. a .gpkg or .shp inside the folder)")
        raise EOError(
            f"cannot read {what} {path}: {str(exc).splitlines()[0]}",
            "pass a GeoJSON, GeoPackage or Shapefile",
        ) from None
    if len(gdf) == 0:
        raise EOError(f"{what} {path} contain no features", "add features to the file")
    if gdf.crs is None:
        raise EOError(
            f"{what} {path} have no CRS",
            "add a .prj / set the CRS (e.g. ogr2ogr -a_srs EPSG:4326 out.gpkg in.shp)",
        )
    if not repair:
        return gdf
    gdf = gdf[~gdf.geometry.is_empty & gdf.geometry.notna()].copy()
    invalid = ~gdf.geometry.is_valid
    if invalid.any():
        log.warning("%s %s: repaired %d invalid geometries", what, path, int(invalid.sum()))
        gdf.loc[invalid, "geometry"] = shapely.make_valid(gdf.geometry[invalid].values)
    return gdf


def read_labelled_area(path: Path) -> gpd.GeoDataFrame:
    """Read the polygons inside which unlabelled pixels are background.

    Args:
        path: a vector file of polygons.

    Returns:
        The polygons (geometry only).

    Raises:
        EOError: the file is unusable (see :func:`read_vector_file`) or holds no polygons.

    """
    gdf = read_vector_file(path, what="labelled area", setting="labels.labelled_area")
    polygons = gdf.geometry.geom_type.isin(["Polygon", "MultiPolygon"])
    if not polygons.any():
        raise EOError(f"labelled area {path} holds no polygons (found {sorted(set(gdf.geometry.geom_type))})",
                      "give labels.labelled_area as polygons of the area that was labelled")
    return gdf.loc[polygons, ["geometry"]]


def read_vector_labels(
    path: Path, class_column: str | None, classes: list[ClassSpec], layer: str | None = None,
    class_value: int | str | None = None,
) -> gpd.GeoDataFrame:
    """Read labels and return a frame with ``class_index`` and valid geometries.

    Args:
        path: the labels file.
        class_column: the column holding each feature's class (value or name), or None
            when every feature is ``class_value``.
        classes: the configured classes.
        layer: the layer to read (GeoPackage), or None for the first.
        class_value: the class (value or name) of every feature, when there is no column.

    Returns:
        The features with their ``class_index`` (and ``geometry``).

    Raises:
        EOError: for a missing file, missing CRS, missing class column, an empty set, or
            no feature of a configured class. Invalid geometries are repaired (and counted).

    """
    gdf = read_vector_file(path, layer)
    lookup = class_lookup(classes)
    if class_column is None:
        if class_value is None or class_key(class_value) not in lookup:
            raise EOError(f"labels {path}: class_value {class_value!r} is not a configured class",
                          f"set labels.class_value to one of {sorted(lookup)}")
        gdf["class_index"] = np.int32(lookup[class_key(class_value)])
        return gdf[["class_index", "geometry"]]
    if class_column not in gdf.columns:
        cols = [c for c in gdf.columns if c != "geometry"]
        raise EOError(
            f"labels {path} have no column '{class_column}' (columns: {cols})",
            "set labels.class_column to the column that holds the class, or labels.class_value if all features are one class",
        )
    keys = gdf[class_column].map(class_key)
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


def buffer_on_grid(gdf: gpd.GeoDataFrame, grid: Grid, buffer: BufferConfig) -> gpd.GeoDataFrame:
    """Buffer features already in the grid's CRS by metres on the ground or by pixels.

    A metre buffer is never applied to degrees: in a geographic CRS the features are
    buffered in their local UTM zone and brought back; in a projected CRS the distance is
    converted to the CRS's unit (feet, ...).

    Args:
        gdf: features in ``grid``'s CRS.
        grid: the scene grid.
        buffer: the distance and its units.

    Returns:
        The features with buffered geometries.

    """
    crs = CRS.from_user_input(grid.crs_wkt)
    if buffer.units == "pixels":
        return gdf.assign(geometry=gdf.geometry.buffer(buffer.distance * grid.res))
    if crs.is_geographic:
        metric = gdf.estimate_utm_crs()
        buffered = gdf.to_crs(metric)
        buffered["geometry"] = buffered.geometry.buffer(buffer.distance)
        return buffered.to_crs(grid.crs_wkt)
    metres_per_unit = crs.axis_info[0].unit_conversion_factor
    return gdf.assign(geometry=gdf.geometry.buffer(buffer.distance / metres_per_unit))


def labels_for_grid(
    gdf: gpd.GeoDataFrame, grid: Grid, source: str, buffer: BufferConfig | None = None
) -> gpd.GeoDataFrame:
    """Reproject labels to the grid's CRS, buffer them, and clip them to the grid.

    Args:
        gdf: features with a CRS.
        grid: the scene grid.
        source: where the features came from, for messages.
        buffer: a buffer to apply in the grid's CRS before clipping, or None.

    Returns:
        The features that overlap the grid, clipped to it.

    Raises:
        EOError: no feature overlaps the grid.

    """
    if not crs_equivalent(grid.crs_wkt, gdf.crs.to_wkt(), grid.bounds):
        gdf = gdf.to_crs(grid.crs_wkt)
    else:
        gdf = gdf.set_crs(grid.crs_wkt, allow_override=True)
    if buffer is not None:
        gdf = buffer_on_grid(gdf, grid, buffer)
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
    """Rasterize labels onto windows of a grid; pixels no feature covers get the background.

    The background is :data:`IGNORE` (unlabelled) unless a background class index is given:
    then it covers the whole grid, or only the ``area`` polygons when they are given.
    """

    def __init__(
        self, gdf: gpd.GeoDataFrame, grid: Grid, all_touched: bool = False,
        background: int | None = None, area: gpd.GeoDataFrame | None = None,
    ) -> None:
        self.grid = grid
        self.geoms = np.asarray(gdf.geometry.values)
        self.values = gdf["class_index"].to_numpy()
        self.tree = STRtree(self.geoms)
        self.all_touched = all_touched
        self.background = background
        self.area = np.asarray(area.geometry.values) if area is not None and background is not None else None
        self.area_tree = STRtree(self.area) if self.area is not None else None

    def read(self, window: Window) -> np.ndarray:
        """Class indices (h, w) uint8 for ``window``."""
        h, w = int(window.height), int(window.width)
        a = self.grid.affine
        transform = a @ a.translation(window.col_off, window.row_off)
        frame = box(*self.grid.window_bounds(window.row_off, window.col_off, h, w))
        fill = self.background if self.background is not None and self.area is None else IGNORE
        shapes: list[tuple[Any, int]] = []
        if self.area_tree is not None and self.area is not None and self.background is not None:
            shapes += [(self.area[i], self.background) for i in np.sort(self.area_tree.query(frame))]
        shapes += [(self.geoms[i], int(self.values[i])) for i in np.sort(self.tree.query(frame))]
        if not shapes:
            return np.full((h, w), fill, dtype=np.uint8)
        return rasterize(
            shapes,
            out_shape=(h, w),
            transform=transform,
            fill=fill,
            dtype="uint8",
            all_touched=self.all_touched,
        )
