"""A pixel's time series over a project's imagery: ``GET /projects/{slug}/imagery/series?lon=&lat=&index=NDVI``.

The explore page's chart. For each scene of the project's catalog whose footprint holds the point
(the catalog's own search, so the order is the STAC API's: oldest first), each band's value at that
pixel read with rasterio from its file (what the inspector's ``/imagery/{item}/pixel`` answers), and
the index computed from those values by the code that colours the ``index:NAME`` tiles, so the chart
and the map agree. A band without data there is null, and so is an index that needs it; a scene
lacking a band the index needs has a null index. ``bands=`` keeps some bands (by name or common
name), ``datetime=`` some dates (an RFC 3339 instant or interval, as in a STAC search).
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from eoengine.config.query import BadQuery, SearchQuery, parse_datetime
from eoengine.errors import EOError, Invalid
from eoengine.features.indices import index_names, required_symbols
from eoengine.platform.deps import DbSession, Reader
from eoengine.platform.imagery import item_bands
from eoengine.platform.routes.imagery import (
    LISTED_INDICES,
    BandValue,
    Recipe,
    band_values,
    catalog_of,
    check_point,
    index_values,
    parse_recipe,
)

router = APIRouter(prefix="/projects/{slug}/imagery", tags=["imagery"])
DATETIME_FIX = "use datetime=START/END in RFC 3339 (e.g. 2020-01-01T00:00:00Z/2021-12-31T00:00:00Z; an open end is ..)"


class SeriesPoint(BaseModel):
    """One scene at the point: its date, its bands' values there and the index they make."""

    item: str = Field(description="The scene's id (its tiles: /projects/SLUG/imagery/ITEM/tiles/...)")
    collection: str
    datetime: str | None
    bands: list[BandValue] = Field(description="Each band's names (common name first), pixel and value")
    index: float | None = Field(description="The index from these values; null without data or a band it needs")


class SeriesOut(BaseModel):
    """The point, the index and every scene holding the point, oldest first (empty when none does)."""

    lon: float
    lat: float
    index: str
    points: list[SeriesPoint]


def index_recipe(name: str) -> Recipe:
    """The ``index:NAME`` recipe of an index, refusing a name spyndex does not know.

    Args:
        name: An index name (``NDVI``).

    Returns:
        The recipe (its bands by common name).

    Raises:
        Invalid: An unknown index, with the closest names and the ones the page offers.

    """
    try:
        required_symbols(name)
    except EOError as exc:
        raise Invalid(exc.problem, f"{exc.fix} use index=NAME, one of spyndex's {len(index_names())} indices, "
                      f"e.g. {', '.join(LISTED_INDICES)}") from None
    return parse_recipe(f"index:{name}")


def _index_at(values: list[BandValue], recipe: Recipe) -> float | None:
    """The recipe's index from one pixel's band values (None when a band is missing or has no data)."""
    by_name = {n: v.value for v in values for n in v.names}
    wanted = [by_name.get(b) for b in recipe.bands]
    if any(v is None for v in wanted):
        return None
    value = float(index_values(np.array(wanted, np.float64)[:, None, None], recipe)[0, 0])
    return value if np.isfinite(value) else None


def _kept_bands(wanted: str | None, items: list[dict[str, Any]]) -> set[str] | None:
    """The band names ``bands=`` keeps (None: all), refusing one no scene of the project has."""
    if wanted is None:
        return None
    names = {b.strip() for b in wanted.split(",") if b.strip()}
    known = {n for item in items for n in item_bands(item)}
    unknown = sorted(names - known)
    if not names or unknown:
        raise Invalid(f"bands={wanted!r}: no scene has a band named {', '.join(unknown) or '(none given)'}",
                      f"name bands by name or common name, separated by ',': {', '.join(sorted(known))}")
    return names


def _window(datetime: str | None) -> str | None:
    """``datetime=`` checked (an RFC 3339 instant or interval), so a bad one is refused with the fix."""
    if datetime is not None:
        try:
            parse_datetime(datetime)
        except BadQuery as exc:
            raise Invalid(exc.problem, DATETIME_FIX) from None
    return datetime


@router.get("/series", response_model=SeriesOut)
def imagery_series(lon: float, lat: float, access: Reader, request: Request, session: DbSession,
                   index: Annotated[str, Query(description="A spyndex index name, e.g. NDVI")] = "NDVI",
                   bands: Annotated[str | None, Query(description="Bands to give (names or common names, "
                                                      "separated by ','); default all")] = None,
                   datetime: Annotated[str | None, Query(description="An RFC 3339 instant or START/END")] = None,
                   ) -> SeriesOut:
    """Each scene holding a point, oldest first: its bands' values there and an index computed from them."""
    check_point(lon, lat)
    recipe = index_recipe(index)
    catalog = catalog_of(request, access.project, session)
    kept = _kept_bands(bands, [r.item for r in catalog.records])
    found = catalog.search(SearchQuery.of({"intersects": {"type": "Point", "coordinates": [lon, lat]},
                                           "datetime": _window(datetime)}))
    points = []
    for record in found:
        values = band_values(record.item, lon, lat)
        if all(v.row is None for v in values):  # inside the footprint, outside every band's raster
            continue
        shown = values if kept is None else [v for v in values if kept & set(v.names)]
        points.append(SeriesPoint(item=record.item["id"], collection=record.collection,
                                  datetime=record.item["properties"].get("datetime"), bands=shown,
                                  index=_index_at(values, recipe)))
    return SeriesOut(lon=lon, lat=lat, index=index, points=points)
