"""Import labels into an annotation set: vector files and label rasters (or class-map COGs), checked all together.

A vector file (GeoJSON, GeoPackage, a zipped Shapefile, anything ``read_vector_file`` reads,
with its messages) gives its features with their ``label`` (and ``item``, ``from``, ``to``)
columns; a raster gives a polygon per run of equal pixels (``rasterio.features.shapes``), its
value the label, nodata left out. Features are reprojected to EPSG:4326 and put in the task
whose cell holds them; one spanning cells is cut per cell (in the grid's CRS, where cells are
exact rectangles; a feature inside one cell keeps its coordinates as they were). Each piece
passes the checks a drawn feature passes (:mod:`eoengine.platform.annotation.checks`), and
lands only in a primary task (never a gold or double copy, which measure the person drawing it)
the caller may import into (:func:`may_import`), stored as a drawn one is. Nothing is stored
unless every feature passes: :class:`ImportRefused` lists every bad one with its index in the
file and the reason.

Features are checked as the file has them: an invalid geometry is refused with shapely's reason
(``read_vector_file(repair=False)``: a dataset build repairs them, an import says which to fix),
and an empty one is refused too, so every index is the feature's position in the file. A model's
class map (a prediction COG, ``EOENGINE_CLASS_CODES`` = ``positions``) holds class positions:
each is read as the set's class of the name its tags give it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from rasterio.features import shapes
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy.orm import Session

from eoengine.errors import EOError, Invalid
from eoengine.labels.vector import read_vector_file
from eoengine.platform.annotation import store
from eoengine.platform.annotation.checks import Checked, check_feature, check_geometry
from eoengine.platform.annotation.grid import Cell, cell, from_lonlat, geojson, grid_of, to_lonlat
from eoengine.platform.annotation.schemas import ImportRefused
from eoengine.platform.db.models import AnnotationSet, AnnotationTask
from eoengine.platform.deps import ProjectAccess
from eoengine.raster.scene import Grid

RASTER_SUFFIXES = (".tif", ".tiff", ".gtif", ".gtiff", ".geotiff")
COLUMNS = ("label", "item", "from", "to")
READ_FIX = "send a GeoJSON, GeoPackage, zipped Shapefile (with its .prj) or a label raster with a CRS"


@dataclass(frozen=True)
class Piece:
    """A checked part of an imported feature, for one task."""

    index: int
    task: AnnotationTask
    checked: Checked


def _class_names(tags: Mapping[str, str], classes: list[dict[str, Any]]) -> dict[int, Any]:
    """A model class map's codes → the set's class values, by the class names its tags give (positions maps only)."""
    if tags.get("EOENGINE_CLASS_CODES") != "positions":
        return {}
    try:
        names = json.loads(tags.get("EOENGINE_CLASS_VALUES") or "{}")
    except ValueError:
        return {}
    values = {c["name"]: c["value"] for c in classes}
    return {int(code): values[name] for code, name in names.items() if name in values}


def _raster_features(path: Path, classes: list[dict[str, Any]]) -> gpd.GeoDataFrame:
    """A label raster (or class map) as polygons of equal value (``label``), nodata left out, in its CRS."""
    try:
        ds = rasterio.open(path)
    except rasterio.errors.RasterioError as exc:
        raise Invalid(f"cannot read the label raster: {str(exc).splitlines()[0]}", READ_FIX) from None
    with ds:
        if ds.crs is None:
            raise Invalid("the label raster has no CRS", "assign the CRS of the imagery (gdal_edit.py -a_srs)")
        band = ds.read(1)
        mask = band != ds.nodata if ds.nodata is not None else None
        named = _class_names(ds.tags(), classes)
        geoms, labels = [], []
        for geom, value in shapes(band, mask=mask, transform=ds.transform):
            geoms.append(shape(geom))
            code = int(value) if float(value).is_integer() else value
            labels.append(named.get(code, code) if isinstance(code, int) else code)
        crs = ds.crs.to_wkt()
    if not geoms:
        raise Invalid("the label raster holds no labelled pixel (all nodata)", "import a raster with class values")
    return gpd.GeoDataFrame({"label": labels}, geometry=geoms, crs=crs)


def read_import(path: Path, classes: list[dict[str, Any]]) -> gpd.GeoDataFrame:
    """The features of an imported file in EPSG:4326 with their ``label`` (and ``item``, ``from``, ``to``) columns.

    Args:
        path: The file (its name's suffix says a raster from a vector file).
        classes: The set's classes (a model class map's positions are read as these, by name).

    Returns:
        The features, in file order, as the file has them (none repaired or left out).

    Raises:
        EOError: The file cannot be read, has no CRS or no features (the labels stage's messages),
            or a vector file has no ``label`` column (nor ``from``/``to``).

    """
    if path.suffix.lower() in RASTER_SUFFIXES:
        frame = _raster_features(path, classes)
    else:
        frame = read_vector_file(path, what="imported labels", setting="the imported file", repair=False)
        if "label" not in frame.columns and not {"from", "to"} <= set(frame.columns):
            raise Invalid(f"the imported labels have no 'label' column (columns: {[c for c in frame.columns if c != 'geometry']})",
                          "name the class column 'label' (values of the set's classes)")
    frame = frame[[c for c in COLUMNS if c in frame.columns] + ["geometry"]]
    return frame.to_crs("EPSG:4326").reset_index(drop=True) if frame.crs.to_epsg() != 4326 else frame.reset_index(drop=True)


def _same_dimension(part: BaseGeometry, dim: int) -> BaseGeometry | None:
    """The parts of a clipped geometry of the original's dimension (a polygon cut at an edge leaves lines too)."""
    kept = [p for p in shapely.get_parts(part) if shapely.get_dimensions(p) == dim and not p.is_empty]
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else shapely.union_all(kept)


def _pieces(lonlat: BaseGeometry, grid: Grid, cells: list[tuple[Cell, AnnotationTask]]) -> list[tuple[BaseGeometry, AnnotationTask]]:
    """A feature cut by the cells it overlaps (kept whole, coordinates untouched, when one cell holds it)."""
    native = from_lonlat(lonlat, grid.crs_wkt)
    touched = [(c, t) for c, t in cells if native.intersects(c.native)]
    half = grid.res / 2
    for c, t in touched:
        if native.within(c.native.buffer(half)):
            return [(lonlat, t)]
    out = []
    for c, t in touched:
        part = _same_dimension(native.intersection(c.native), shapely.get_dimensions(native))
        if part is not None:
            out.append((to_lonlat(part, grid.crs_wkt), t))
    return out


def _properties(row: Mapping[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for key in COLUMNS:
        value = row.get(key)
        if value is not None and not (isinstance(value, float) and np.isnan(value)):
            props[key] = value.item() if isinstance(value, np.generic) else value
    return props


def may_import(access: ProjectAccess, task: AnnotationTask) -> None:
    """Check that the caller may import into a primary task.

    A reviewer may into any task that is not accepted (whoever holds it); anyone else only
    where they may draw (:func:`~eoengine.platform.annotation.store.may_write`: a task assigned
    to them, open, in progress or rejected).

    Raises:
        Conflict: The task is frozen (accepted; submitted, for an annotator).
        Denied: The task is not assigned to the caller (who is no reviewer).

    """
    if not (access.allows("review") and task.state != "accepted"):
        store.may_write(access, task)


def _whole(geometry: BaseGeometry | None) -> None:
    """A feature's geometry as the file has it, checked before it is cut (invalid: shapely's reason).

    Raises:
        Invalid: None, or what :func:`~eoengine.platform.annotation.checks.check_geometry` refuses.

    """
    if geometry is None or geometry.is_empty:
        raise Invalid("the feature has no geometry", "give every feature a geometry, or leave it out of the file")
    check_geometry(geojson(geometry))


def check_import(frame: gpd.GeoDataFrame, access: ProjectAccess, aset: AnnotationSet, tasks: list[AnnotationTask],
                 grids: Mapping[str, Grid]) -> list[Piece]:
    """Every feature of an import checked whole, cut per cell and checked again; refused as a whole if any is bad.

    Args:
        frame: The features (EPSG:4326), from :func:`read_import`.
        access: The caller (who may import only where :func:`may_import` lets them).
        aset: The set.
        tasks: Its tasks (copies are left out: only primary tasks receive imports).
        grids: The pixel grid of each of the set's items.

    Returns:
        The pieces to store.

    Raises:
        ImportRefused: Some features are bad (every one listed).

    """
    grid = grid_of(aset.grid)
    cells = [(cell(grid, aset.block_size, t.row, t.col), t) for t in tasks if t.copy_kind == ""]
    pieces: list[Piece] = []
    problems: list[dict[str, Any]] = []
    for index, row in enumerate(frame.to_dict("records")):
        try:
            _whole(row["geometry"])
        except EOError as exc:
            problems.append({"index": index, "reason": exc.problem})
            continue
        parts = _pieces(row["geometry"], grid, cells)
        if not parts:
            problems.append({"index": index, "reason": "the feature lies in no task's cell of the set"})
        for geometry, task in parts:
            try:
                may_import(access, task)
                feature = {"type": "Feature", "geometry": geojson(geometry), "properties": _properties(row)}
                pieces.append(Piece(index, task, check_feature(feature, store.target(aset, task, grids))))
            except EOError as exc:
                problems.append({"index": index, "reason": exc.problem})
    if problems:
        raise ImportRefused(problems)
    return pieces


def store_import(session: Session, access: ProjectAccess, pieces: list[Piece]) -> dict[str, int]:
    """Store checked pieces as features (``source`` import) as drawn ones are stored: each with its event.

    Args:
        session: The request's session.
        access: The caller.
        pieces: From :func:`check_import`.

    Returns:
        ``{"imported": features stored, "tasks": tasks that received some}``.

    """
    for piece in pieces:
        store.create_feature(session, access, piece.task, piece.checked, source="import", allow=may_import)
    return {"imported": len(pieces), "tasks": len({p.task.id for p in pieces})}
