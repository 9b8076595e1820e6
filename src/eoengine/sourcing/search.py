"""Search a catalog: a local static catalog (in process) or any STAC API (pystac-client).

Results come back sorted (by a property, newest or oldest first), limited, and as a
``pystac.ItemCollection`` that can be saved and fed to fetching or a project config. An
unreachable API fails fast with a clear message (timeouts, a few retries with backoff).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pystac

from eoengine.config.query import BadQuery, SearchQuery
from eoengine.errors import EOError, Unavailable
from eoengine.sourcing.catalog import CatalogIndex, is_static_url, sort_key


def aoi_geometry(aoi: str | None) -> dict[str, Any] | None:
    """An AOI from a GeoJSON file (its features' union) or inline GeoJSON; None if not given."""
    if not aoi:
        return None
    from shapely.geometry import mapping, shape
    from shapely.ops import unary_union

    inline = aoi.lstrip().startswith("{")  # GeoJSON text longer than a file name can be is no path to try
    try:
        data = json.loads(aoi) if inline or not Path(aoi).exists() else json.loads(Path(aoi).read_text())
    except (json.JSONDecodeError, OSError):
        raise EOError(f"--aoi {aoi!r} is neither a GeoJSON file nor GeoJSON text", "pass a .geojson file or a geometry") from None
    feats = data.get("features") or ([data] if data.get("type") == "Feature" else None)
    geoms = [shape(f["geometry"]) for f in feats] if feats else [shape(data)]
    return dict(mapping(unary_union(geoms)))


def search(source: str, query: SearchQuery, timeout: float = 20.0) -> pystac.ItemCollection:
    """Items from ``source`` matching ``query``, sorted and limited as it asks.

    Presets: ``earth-search`` and ``planetary-computer`` (whose asset URLs are signed).

    Args:
        source: a catalog folder or file, a static catalog's URL, a STAC API URL, or a preset name.
        query: the search.
        timeout: seconds to wait for each answer of a STAC API.

    Returns:
        The items found.

    Raises:
        BadQuery: the catalog refuses the query (an unknown collection, a datetime that is not RFC 3339).
        EOError: the STAC API cannot be reached or refuses the search.

    """
    from eoengine.sourcing.providers import Signer, is_planetary_computer, resolve

    source = resolve(source)
    if source.startswith(("http://", "https://")) and not is_static_url(source):
        items = _remote(source, query, timeout)
        if is_planetary_computer(source):
            signer = Signer()
            items = [signer.sign(i) for i in items]
    else:
        try:
            records = CatalogIndex(source if is_static_url(source) else Path(source)).search(query)
        except BadQuery as exc:
            raise BadQuery(exc.problem, "fix the search parameters") from None
        items = [pystac.Item.from_dict(r.item) for r in records]
    if query.sort:
        sort = query.sort
        items.sort(key=lambda i: sort_key(i.properties, sort), reverse=query.descending)
    return pystac.ItemCollection(items[: query.limit])


def _remote(url: str, query: SearchQuery, timeout: float) -> list[pystac.Item]:
    from pystac_client import Client
    from pystac_client.exceptions import APIError
    from pystac_client.stac_api_io import StacApiIO
    from urllib3 import Retry

    retry = Retry(total=3, backoff_factor=0.5, status_forcelist=[429, 502, 503, 504], allowed_methods=None)
    io = StacApiIO(max_retries=retry, timeout=timeout)
    try:
        client = Client.open(url, stac_io=io)
        found = client.search(bbox=query.bbox, intersects=query.intersects, datetime=query.datetime,
                              collections=query.collections, ids=query.ids, query=query.filters(),
                              max_items=query.limit, limit=min(query.limit, 100))
        return list(found.items())
    except APIError as exc:
        if getattr(exc, "status_code", None) is None:  # no HTTP answer at all: connection refused, timeout, DNS
            raise Unavailable(f"cannot reach the STAC API at {url}: {str(exc)[:200]}",
                              "check the URL and the network (tried 3 times with backoff)") from None
        raise EOError(f"the STAC API at {url} refused the search ({exc.status_code}): {str(exc)[:300]}",
                      "check the search parameters") from None
    except Exception as exc:  # noqa: BLE001 - connection errors come in many types
        raise Unavailable(f"cannot reach the STAC API at {url}: {type(exc).__name__}: {str(exc)[:200]}",
                          "check the URL and the network (tried 3 times with backoff)") from None
