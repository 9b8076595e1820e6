"""Checks of a label feature before anything stores it: drawn in the browser or imported, the same checks.

A feature is a GeoJSON Feature in EPSG:4326 (lon, lat). Its geometry must be a Polygon,
MultiPolygon, Point, LineString or MultiLineString, valid (shapely), within lon/lat range,
without a ``crs`` member naming another CRS, of at most :data:`MAX_VERTICES` vertices, inside
its task's cell and inside its imagery item's footprint (both with half a pixel of tolerance,
tested in the grids' own CRSs, where cells and footprints are exact rectangles). Its label is a
class value of the set (a change set's: ``from``/``to`` class values, or ``change`` /
``no-change``), and its item one of the set's items. Every failure is an
:class:`~eoengine.errors.Invalid` naming the problem and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import shapely
from shapely.errors import ShapelyError
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from eoengine.errors import Invalid
from eoengine.platform.annotation.grid import from_lonlat
from eoengine.raster.scene import Grid

GEOMETRY_TYPES = ("Polygon", "MultiPolygon", "Point", "LineString", "MultiLineString")
MAX_VERTICES = 10_000
CHANGE_LABELS = ("change", "no-change")
LONLAT_NAMES = frozenset({"urn:ogc:def:crs:ogc:1.3:crs84", "urn:ogc:def:crs:ogc::crs84", "ogc:crs84", "crs84",
                          "epsg:4326", "urn:ogc:def:crs:epsg::4326", "http://www.opengis.net/def/crs/epsg/0/4326",
                          "http://www.opengis.net/def/crs/ogc/1.3/crs84"})
LONLAT_FIX = "send lon/lat in EPSG:4326 (GeoJSON's CRS84), without a 'crs' member"


@dataclass(frozen=True)
class Checked:
    """A feature that passed: its geometry (as sent), label, item(s), the item's CRS, and change classes."""

    geometry: dict[str, Any]
    shape: BaseGeometry
    label: str
    item: str
    items: list[str]
    native_crs: str
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """Where a feature must lie, and what it may say: the set's kind, classes and items, the task's cell.

    ``grids`` holds the pixel grid of each of the set's items (their footprints), ``grid`` the
    set's block grid, and ``cell`` the task's cell in that grid's CRS.
    """

    kind: str
    classes: Sequence[Mapping[str, Any]]
    items: Sequence[str]
    grids: Mapping[str, Grid]
    grid: Grid
    cell: BaseGeometry
    where: str = "the task's cell"


def _crs_member(obj: Mapping[str, Any]) -> None:
    crs = obj.get("crs")
    if crs is None:
        return
    name = crs.get("properties", {}).get("name") if isinstance(crs, dict) else crs
    if not isinstance(name, str) or name.strip().lower() not in LONLAT_NAMES:
        raise Invalid(f"the geometry is in CRS {name!r}, not lon/lat", LONLAT_FIX)


def vertices(geometry: BaseGeometry) -> int:
    """The number of coordinates of a geometry (rings' closing points included)."""
    return int(shapely.get_num_coordinates(geometry))


def check_geometry(geometry: Any, feature: Mapping[str, Any] | None = None) -> BaseGeometry:
    """A GeoJSON geometry in EPSG:4326, checked on its own (type, CRS, range, size, validity).

    Args:
        geometry: The GeoJSON geometry (a dict).
        feature: The feature holding it (its ``crs`` member is checked too).

    Returns:
        The shapely geometry.

    Raises:
        Invalid: Not a geometry of an allowed type, another CRS, out of lon/lat range, more
            than :data:`MAX_VERTICES` vertices, empty or invalid (with shapely's reason).

    """
    if not isinstance(geometry, dict) or geometry.get("type") not in GEOMETRY_TYPES:
        kind = geometry.get("type") if isinstance(geometry, dict) else type(geometry).__name__
        raise Invalid(f"the geometry is a {kind!r}", f"send a GeoJSON geometry of type {', '.join(GEOMETRY_TYPES)}")
    _crs_member(feature or {})
    _crs_member(geometry)
    try:
        made = shape(geometry)
    except (ShapelyError, ValueError, TypeError, IndexError, KeyError, AttributeError) as exc:
        raise Invalid(f"the {geometry['type']} has malformed coordinates ({exc})",
                      "send coordinates as GeoJSON nests them: [lon, lat] pairs, rings closed") from None
    if made.is_empty:
        raise Invalid(f"the {geometry['type']} is empty", "draw at least one vertex (a polygon: three)")
    count = vertices(made)
    if count > MAX_VERTICES:
        raise Invalid(f"the {geometry['type']} has {count} vertices, more than {MAX_VERTICES}",
                      "simplify it, or split it into several features")
    west, south, east, north = made.bounds
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        raise Invalid(f"the {geometry['type']} has coordinates out of lon/lat range ({made.bounds})",
                      f"{LONLAT_FIX}: longitude in [-180, 180], latitude in [-90, 90]")
    if not made.is_valid:
        raise Invalid(f"the {geometry['type']} is not valid: {explain_validity(made)}",
                      "redraw it without self-intersections (holes inside their shell, rings of 3+ vertices)")
    return made


def _inside(made: BaseGeometry, grid: Grid, area: BaseGeometry, problem: str, fix: str) -> None:
    native = from_lonlat(made, grid.crs_wkt)
    if not native.within(area.buffer(grid.res / 2)):
        raise Invalid(problem, fix)


def class_value(classes: Sequence[Mapping[str, Any]], value: Any, what: str = "label") -> Any:
    """The class value of a set that ``value`` names (by value; ``5`` and ``"5"`` are one).

    Raises:
        Invalid: No class of the set has that value.

    """
    for c in classes:
        if value is not None and str(c["value"]) == str(value):
            return c["value"]
    names = ", ".join(f"{c['value']} ({c['name']})" for c in classes)
    raise Invalid(f"{what} {value!r} is no class of the set", f"use one of the set's class values: {names}")


def check_label(target: Target, props: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """A feature's label (as stored, text) and its change classes (``from``, ``to``) for a change set.

    Raises:
        Invalid: A class set's label is no class value; a change set's ``from``/``to`` are not
            class values, or it has neither them nor the label ``change``/``no-change``.

    """
    if target.kind != "change":
        return str(class_value(target.classes, props.get("label"))), {}
    label = props.get("label")
    if "from" in props or "to" in props:
        extra = {"from": class_value(target.classes, props.get("from"), "from"),
                 "to": class_value(target.classes, props.get("to"), "to")}
        derived = "change" if str(extra["from"]) != str(extra["to"]) else "no-change"
        if label is not None and label != derived:
            raise Invalid(f"label {label!r} contradicts from {extra['from']!r} → to {extra['to']!r}",
                          f"leave the label out or send {derived!r}")
        return derived, extra
    if label not in CHANGE_LABELS:
        raise Invalid(f"label {label!r} of a change set is neither 'change' nor 'no-change', and no from/to is given",
                      "send properties.from and properties.to (class values), or label 'change' / 'no-change'")
    return str(label), {}


def check_items(target: Target, props: Mapping[str, Any]) -> tuple[str, list[str]]:
    """A feature's item (default: the set's first) and items (a change set's: both dates; default all the set's).

    Raises:
        Invalid: An item that is not one of the set's.

    """
    item = props.get("item") or target.items[0]
    items = props.get("items") or ([item] if target.kind != "change" else list(target.items))
    if not isinstance(items, list):
        raise Invalid(f"items {items!r} is not a list", "send properties.items as a list of the set's item ids")
    for name in [item, *items]:
        if name not in target.items:
            raise Invalid(f"item {name!r} is not one of the set's", f"use one of {', '.join(target.items)}")
    return str(item), [str(i) for i in items]


def check_feature(feature: Any, target: Target) -> Checked:
    """A GeoJSON Feature checked against its task: geometry, place, label and items.

    Args:
        feature: The Feature (a dict with ``geometry`` and ``properties``).
        target: The set and task it is for.

    Returns:
        The checked feature.

    Raises:
        Invalid: Whatever is wrong with it (the first problem found).

    """
    if not isinstance(feature, dict) or not isinstance(feature.get("properties") or {}, dict):
        raise Invalid("the body is not a GeoJSON Feature", "send {type: Feature, geometry, properties: {label, item?}}")
    props = feature.get("properties") or {}
    made = check_geometry(feature.get("geometry"), feature)
    label, extra = check_label(target, props)
    item, items = check_items(target, props)
    _inside(made, target.grid, target.cell, f"the {made.geom_type} is outside {target.where}",
            "draw inside the cell (half a pixel of tolerance), or in the task whose cell holds it")
    for name in dict.fromkeys([item, *items]):
        grid = target.grids[name]
        _inside(made, grid, box(*grid.bounds), f"the {made.geom_type} is outside the imagery of item {name!r}",
                "draw where the item has pixels (its footprint)")
    geometry = {"type": feature["geometry"]["type"], "coordinates": feature["geometry"]["coordinates"]}
    return Checked(geometry, made, label, item, items, target.grids[item].crs_wkt, extra)
