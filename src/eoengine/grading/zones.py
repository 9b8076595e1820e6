"""Slices from outside the dataset: polygons of a vector file, values of a strata raster, STAC scene properties.

Regions are reprojected to each scene's CRS and burnt onto every chip's pixel grid (a pixel belongs to the
polygon holding its centre); strata rasters are warped onto the chip grids with nearest resampling; scene
properties are the STAC Item properties the dataset's manifest recorded for each scene (scenes given as
``stac_item``, or found by a catalog search).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from eoengine.errors import EOError, NotFound
from eoengine.grading.chips import GradedChips
from eoengine.grading.slices import SliceKeys, categorical, quantile_bins
from eoengine.raster.scene import Grid


def _chip_transforms(graded: GradedChips) -> list[tuple[str, Any, int, int]]:
    """Per chip: scene id, the chip's affine transform, and its window's row and column."""
    from affine import Affine

    grids = {s.id: Grid(s.grid.crs_wkt, tuple(s.grid.transform), s.grid.width, s.grid.height)  # type: ignore[arg-type]
             for s in graded.manifest.scenes}
    out = []
    for scene, row, col in zip(graded.rows["scene"], graded.rows["row"], graded.rows["col"], strict=True):
        out.append((scene, grids[scene].affine * Affine.translation(int(col), int(row)), int(row), int(col)))
    return out


def read_regions(path: Path, column: str) -> Any:
    """A region file's polygons with their slice column, checked.

    Args:
        path: The vector file.
        column: The slice column.

    Returns:
        A GeoDataFrame of the polygons with ``column``.

    Raises:
        NotFound: The file does not exist.
        EOError: It cannot be read, has no CRS, or has no such column.

    """
    import geopandas as gpd

    if not path.exists():
        raise NotFound(f"region file not found: {path}", "fix slices.regions[].path in the suite")
    try:
        frame = gpd.read_file(path)
    except Exception as exc:  # noqa: BLE001 - GDAL's reasons vary by driver; say which file
        raise EOError(f"cannot read region file {path}: {str(exc).splitlines()[0]}",
                      "pass a GeoPackage, GeoJSON or Shapefile") from None
    if frame.crs is None:
        raise EOError(f"region file {path} has no CRS", "set its CRS (e.g. ogr2ogr -a_srs EPSG:4326) so regions can be "
                      "placed on the scenes")
    if column not in frame.columns:
        raise EOError(f"region file {path} has no column '{column}' (it has {', '.join(map(str, frame.columns))})",
                      "set slices.regions[].column to one of those")
    return frame[[column, "geometry"]].dropna()


def region_slices(graded: GradedChips, path: Path, column: str, name: str) -> SliceKeys:
    """Pixels by the polygon they fall in (reprojected to each scene's CRS); -1 outside every polygon.

    Args:
        graded: The graded chips.
        path: The vector file.
        column: Its slice column.
        name: The dimension's name.

    Returns:
        The dimension (labels: the column's values).

    """
    from rasterio.features import rasterize

    frame = read_regions(path, column)
    labels = sorted({str(v) for v in frame[column]})
    code = {v: i for i, v in enumerate(labels)}
    h, w = graded.truth.shape[1:]
    size = graded.manifest.patch_size
    keys = np.full(graded.truth.shape, -1, dtype=np.int32)
    by_crs: dict[str, Any] = {}
    for i, (scene, transform, _, _) in enumerate(_chip_transforms(graded)):
        crs = next(s.grid.crs_wkt for s in graded.manifest.scenes if s.id == scene)
        if crs not in by_crs:
            local = frame.to_crs(crs)
            by_crs[crs] = [(g, code[str(v)]) for g, v in zip(local.geometry, local[column], strict=True)]
        if (h, w) != (size, size):  # chip classes: the region at the chip's centre
            transform = transform * transform.scale(size / w, size / h)
        keys[i] = rasterize(by_crs[crs], out_shape=(h, w), transform=transform, fill=-1, dtype="int32")
    return SliceKeys(name, keys, labels)


def strata_slices(graded: GradedChips, path: Path, band: int, name: str) -> SliceKeys:
    """Pixels by the value of a strata raster warped onto their chip (nearest); -1 where it has no data.

    Args:
        graded: The graded chips.
        path: The raster.
        band: Its band.
        name: The dimension's name.

    Returns:
        The dimension (labels: the raster's values).

    Raises:
        NotFound: The raster does not exist.
        EOError: It cannot be read or lacks the band.

    """
    import rasterio
    from rasterio.warp import Resampling, reproject

    if not path.exists():
        raise NotFound(f"strata raster not found: {path}", "fix slices.strata[].path in the suite")
    h, w = graded.truth.shape[1:]
    size = graded.manifest.patch_size
    values = np.full(graded.truth.shape, np.nan, dtype=np.float64)
    with rasterio.open(path) as src:
        if band > src.count:
            raise EOError(f"strata raster {path} has {src.count} band(s), not band {band}", "fix slices.strata[].band")
        data, nodata = src.read(band), src.nodata
        for i, (scene, transform, _, _) in enumerate(_chip_transforms(graded)):
            crs = next(s.grid.crs_wkt for s in graded.manifest.scenes if s.id == scene)
            dst = np.full((h, w), np.nan, dtype=np.float64)
            reproject(data.astype(np.float64), dst, src_transform=src.transform, src_crs=src.crs,
                      src_nodata=nodata, dst_transform=transform * transform.scale(size / w, size / h),
                      dst_crs=crs, dst_nodata=np.nan, resampling=Resampling.nearest)
            values[i] = dst
    labels = [f"{v:g}" for v in np.unique(values[np.isfinite(values)])]
    lookup = {float(v): k for k, v in enumerate(labels)}
    keys = np.full(values.shape, -1, dtype=np.int32)
    ok = np.isfinite(values)
    keys[ok] = [lookup[float(f"{v:g}")] for v in values[ok]]
    return SliceKeys(name, keys, labels)


def property_slices(graded: GradedChips, prop: str, bins: int) -> SliceKeys:
    """Chips by a STAC property of their scene: a slice per value, or quantile bins of a number with many values.

    Args:
        graded: The graded chips.
        prop: The property, e.g. ``eo:cloud_cover``, ``view:sun_elevation``, ``platform``.
        bins: Quantile bins for numbers with more distinct values than this.

    Returns:
        The dimension (named by the property).

    Raises:
        EOError: A graded scene has no STAC Item, or its Item lacks the property.

    """
    items = {s.id: s.properties or {} for s in graded.manifest.scenes}
    scenes = [str(s) for s in graded.rows["scene"].tolist()]
    missing = sorted({s for s in scenes if prop not in items.get(s, {})})
    if missing:
        raise EOError(f"slice property '{prop}': scene(s) {', '.join(missing[:5])} have no STAC Item with it",
                      "drop the property from slices.properties, or rebuild the dataset from scenes given as stac_item "
                      "(its manifest then records their properties)")
    values = [items[s][prop] for s in scenes]
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if numeric and len(set(values)) > bins:
        return quantile_bins(prop, np.asarray(values, dtype=np.float64), bins, graded.truth.shape)
    return categorical(prop, [f"{v:g}" if numeric else str(v) for v in values], graded.truth.shape)
