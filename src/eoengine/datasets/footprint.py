"""The training footprint of a dataset: its chips' footprints dissolved into one lon/lat shape.

A model's catalog card shows where it learned. The chips of ``chips.parquet`` tile the labelled
area; dissolving them (and simplifying to a fraction of a chip) keeps the shape small enough to
send to a web map while still saying "inside" or "outside" honestly at chip scale.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eoengine.datasets.store import INDEX
from eoengine.errors import NotFound

SIMPLIFY_DEGREES = 1e-4
"""Tolerance of the simplification in degrees (about 11 m at the equator: below a chip's size)."""


def training_footprint(root: Path) -> dict[str, Any]:
    """The dissolved, simplified footprint of a dataset's chips as a GeoJSON geometry in lon/lat.

    Args:
        root: The dataset folder (holding ``chips.parquet``).

    Returns:
        A GeoJSON geometry mapping (Polygon or MultiPolygon, EPSG:4326).

    Raises:
        NotFound: The folder has no chip index.

    """
    import geopandas as gpd
    from shapely.geometry import mapping

    index = root / INDEX
    if not index.is_file():
        raise NotFound(f"dataset {root} has no {INDEX}", "build the dataset (eoengine dataset build) on this machine")
    chips = gpd.read_parquet(index, columns=["geometry"])
    lonlat = chips.to_crs(4326) if chips.crs is not None else chips
    shape = lonlat.geometry.union_all().simplify(SIMPLIFY_DEGREES, preserve_topology=True)
    return dict(mapping(shape))
