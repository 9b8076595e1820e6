"""Change between two class maps of a subscription: class-transition hectares and change polygons.

The previous map is put on the new map's grid (nearest neighbour), and each pixel's transition is
coded ``previous × BASE + new`` in a transition map written beside the new one, so the hectares of
each transition within the area are measured by the same :func:`eoengine.inference.class_areas.class_areas`
that measures the classes (projected pixel areas, geodesic rows for lon/lat maps). The changed pixels are
vectorised with :func:`eoengine.labels.polygons.class_polygons` and written in lon/lat as GeoJSON,
one feature per polygon with its from/to classes and hectares.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from eoengine.inference.class_areas import class_areas, class_names
from eoengine.subscriptions.state import ChangeSummary, Transition, write_json_atomic

BASE = 1000
"""Transition codes are ``previous × BASE + new`` (class codes stay below it)."""
NODATA = 2**31 - 1


def change(previous: Path, current: Path, area: dict[str, Any], previous_key: str, folder: Path) -> ChangeSummary:
    """The transitions from ``previous`` to ``current`` within ``area``, and the change polygons.

    Args:
        previous: the previous successful run's class map.
        current: this run's class map.
        area: the subscription's area (GeoJSON, lon/lat).
        previous_key: the previous run's key (recorded).
        folder: where ``transitions.tif`` and ``change.geojson`` are written.

    Returns:
        Every transition between different classes with its hectares, the total, and the polygons file.

    """
    codes, valid, profile, names = _transitions(previous, current)
    tif = folder / "transitions.tif"
    _write(tif, codes, profile)
    transitions = []
    for found in class_areas(tif, area):
        before, after = divmod(found.code, BASE)
        if before != after and found.pixels:
            transitions.append(Transition(from_class=names.get(before, str(before)), to_class=names.get(after, str(after)),
                                          hectares=round(found.hectares, 4)))
    polygons = folder / "change.geojson"
    count = _polygons(codes, valid, profile, names, area, polygons)
    return ChangeSummary(previous_key=previous_key, changed_hectares=round(sum(t.hectares for t in transitions), 4),
                         transitions=transitions, polygons=str(polygons), polygon_count=count)


def _transitions(previous: Path, current: Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any], dict[int, str]]:
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    with rasterio.open(current) as cur, rasterio.open(previous) as prev_src:
        grid = {"crs": cur.crs, "transform": cur.transform, "width": cur.width, "height": cur.height,
                "resampling": Resampling.nearest}
        with WarpedVRT(prev_src, **grid) as prev:
            new = cur.read(1, masked=True)
            old = prev.read(1, masked=True)
        names = class_names(cur.tags()) | class_names(prev_src.tags())
        profile = {"crs": cur.crs, "transform": cur.transform, "width": cur.width, "height": cur.height}
    valid = ~np.ma.getmaskarray(new) & ~np.ma.getmaskarray(old)
    codes = np.where(valid, old.filled(0).astype("int32") * BASE + new.filled(0).astype("int32"), NODATA).astype("int32")
    return codes, valid, profile, names


def _write(path: Path, codes: np.ndarray, profile: dict[str, Any]) -> None:
    import rasterio

    with rasterio.open(path, "w", driver="GTiff", count=1, dtype="int32", nodata=NODATA, tiled=True,
                       compress="deflate", **profile) as dst:
        dst.write(codes, 1)


def _polygons(codes: np.ndarray, valid: np.ndarray, profile: dict[str, Any], names: dict[int, str],
              area: dict[str, Any], out: Path) -> int:
    """Write the changed pixels' polygons (within the area, lon/lat) to ``out``; return how many."""
    from pyproj import Geod
    from rasterio.warp import transform_geom
    from shapely.geometry import mapping, shape

    from eoengine.labels.polygons import class_polygons

    changed = valid & (codes // BASE != codes % BASE)
    within = shape(area)
    geod = Geod(ellps="WGS84")
    features = []
    for poly in class_polygons(codes, changed, profile["transform"], min_pixels=1):
        geom = shape(transform_geom(profile["crs"], "EPSG:4326", mapping(poly.geometry))).intersection(within)
        if geom.is_empty:
            continue
        before, after = divmod(poly.code, BASE)
        features.append({"type": "Feature", "geometry": mapping(geom),
                         "properties": {"from": names.get(before, str(before)), "to": names.get(after, str(after)),
                                        "hectares": round(abs(geod.geometry_area_perimeter(geom)[0]) / 1e4, 4)}})
    write_json_atomic(out, json.dumps({"type": "FeatureCollection", "features": features}))
    return len(features)
