"""Areas of interest by place name, through OpenStreetMap's Nominatim geocoder.

``place_geometry("Berlin")`` returns the place's boundary polygon (or its bounding box when
Nominatim has no polygon) as GeoJSON in EPSG:4326. The HTTP request is the only network
call, behind ``fetch`` so it can be replaced (tests, a self-hosted Nominatim).
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from eoengine.errors import EOError, NotFound, Unavailable

NOMINATIM = "https://nominatim.openstreetmap.org/search"


def http_get(url: str, timeout: float = 20.0) -> Any:
    """GET ``url`` as JSON, identifying eoengine as Nominatim's usage policy asks."""
    request = urllib.request.Request(url, headers={"User-Agent": "eoengine (https://github.com/eoengine)"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return json.loads(r.read())
    except OSError as exc:
        raise Unavailable(f"cannot reach the geocoder: {exc}", "check the network, or pass --bbox / --aoi instead") from None


def place_geometry(place: str, fetch: Callable[[str], Any] = http_get, endpoint: str = NOMINATIM) -> dict[str, Any]:
    """The GeoJSON geometry of ``place`` (its boundary, else its bounding box)."""
    query = urllib.parse.urlencode({"q": place, "format": "geojson", "polygon_geojson": 1, "limit": 1})
    data = fetch(f"{endpoint}?{query}")
    features = (data or {}).get("features") or []
    if not features:
        raise NotFound(f"no place called '{place}' was found", "spell it as on OpenStreetMap, add the country, or pass --bbox")
    feature = features[0]
    geometry = feature.get("geometry") or {}
    if geometry.get("type") in ("Polygon", "MultiPolygon"):
        return dict(geometry)
    w, s, e, n = feature.get("bbox") or [None] * 4
    if w is None:
        raise EOError(f"the geocoder gave no area for '{place}'", "pass --bbox or --aoi instead")
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
