"""An in-memory index over a static STAC catalog, and the search every STAC API answers.

Loads every Collection and Item of a catalog (a ``catalog.json`` or ``collection.json``, or a
folder holding several) with their geometries, and answers searches by collections, ids,
bbox, intersecting geometry, datetime (an instant, or an interval whose ends may be
open ``..``) and item properties (the STAC API query extension's operators), sorted by
datetime then id, with offset-based pages.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pystac
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry

from eoengine.errors import EOError, Invalid, NotFound, first_line


class BadQuery(Invalid):
    """A search parameter that is malformed; the message names it and what is expected (a ``ValueError`` too)."""


@dataclass
class Record:
    """One item with what searches need."""

    item: dict[str, Any]
    collection: str
    geometry: BaseGeometry
    start: datetime
    end: datetime


def parse_bbox(value: Any) -> BaseGeometry:
    """A bbox (list of 4 or 6 numbers, or 'w,s,e,n') as a polygon; raises :class:`BadQuery`."""
    parts = value.split(",") if isinstance(value, str) else value
    try:
        nums = [float(v) for v in parts]
    except (TypeError, ValueError):
        raise BadQuery(f"bbox must be 4 (or 6) numbers, got {value!r}") from None
    if len(nums) == 6:
        nums = [nums[0], nums[1], nums[3], nums[4]]
    if len(nums) != 4:
        raise BadQuery(f"bbox must be 4 (or 6) numbers, got {len(nums)}")
    w, s, e, n = nums
    if not (-180 <= w <= 180 and -180 <= e <= 180 and -90 <= s <= n <= 90):
        raise BadQuery(f"bbox {nums} is not west,south,east,north in degrees with south <= north")
    if w > e:  # crosses the antimeridian
        return box(w, s, 180, n).union(box(-180, s, e, n))
    return box(w, s, e, n)


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadQuery(f"'{text}' is not an RFC 3339 date-time (e.g. 2024-06-01T00:00:00Z)") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_datetime(value: str) -> tuple[datetime, datetime]:
    """An RFC 3339 instant or ``start/end`` interval (``..`` or empty for open ends)."""
    if "/" in value:
        a, b = value.split("/", 1)
        start = datetime.min.replace(tzinfo=UTC) if a in ("", "..") else _instant(a)
        end = datetime.max.replace(tzinfo=UTC) if b in ("", "..") else _instant(b)
        if start > end:
            raise BadQuery(f"datetime interval {value} ends before it starts")
        return start, end
    t = _instant(value)
    return t, t


def parse_geometry(value: Any) -> BaseGeometry:
    """A GeoJSON geometry as shapely; raises :class:`BadQuery`."""
    try:
        geom = shape(value)
    except Exception as exc:  # noqa: BLE001 - shapely raises several types for bad GeoJSON
        raise BadQuery(f"intersects is not a GeoJSON geometry: {exc}") from None
    if geom.is_empty or not geom.is_valid:
        raise BadQuery("intersects geometry is empty or invalid")
    return geom


QUERY_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq, "neq": operator.ne, "lt": operator.lt, "lte": operator.le, "gt": operator.gt, "gte": operator.ge,
    "startsWith": lambda a, b: isinstance(a, str) and a.startswith(b),
    "endsWith": lambda a, b: isinstance(a, str) and a.endswith(b),
    "contains": lambda a, b: b in a if isinstance(a, str | list) else False,
    "in": lambda a, b: a in b,
}


def parse_query(value: Any) -> dict[str, dict[str, Any]]:
    """A STAC API query (``{property: {op: value}}``, or its JSON text); a bare value means ``eq``.

    Args:
        value: the query as sent: a dict (POST) or its JSON text (GET).

    Returns:
        Each property's conditions, ``{op: value}``.

    Raises:
        BadQuery: the query is not JSON, not an object of objects, or uses an unknown operator.

    """
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise BadQuery('query must be JSON, e.g. {"eo:cloud_cover": {"lte": 20}}') from None
    if not isinstance(value, dict):
        raise BadQuery('query must be an object, e.g. {"eo:cloud_cover": {"lte": 20}}')
    parsed = {str(k): (v if isinstance(v, dict) else {"eq": v}) for k, v in value.items()}
    for prop, conds in parsed.items():
        unknown = sorted(set(conds) - set(QUERY_OPS))
        if unknown:
            raise BadQuery(f"unknown query operator(s) {unknown} for '{prop}'; use {', '.join(QUERY_OPS)}")
        if "in" in conds and not isinstance(conds["in"], list):
            raise BadQuery(f"query 'in' for '{prop}' takes a list")
    return parsed


def matches_query(props: dict[str, Any], query: dict[str, dict[str, Any]]) -> bool:
    """Whether item properties meet every condition of a parsed query (a missing property meets none).

    A number given as text (pystac-client's ``"eo:cloud_cover<20"`` form sends ``"20"``) is
    compared as a number with numeric properties.

    Args:
        props: an item's properties.
        query: conditions from :func:`parse_query`.

    Returns:
        True if every condition holds.

    """
    for prop, conds in query.items():
        value = props.get(prop)
        for op, ref in conds.items():
            if isinstance(value, int | float) and isinstance(ref, str):
                try:
                    ref = float(ref)
                except ValueError:
                    return False
            try:
                if value is None or not QUERY_OPS[op](value, ref):
                    return False
            except TypeError:  # e.g. a string compared with a number: no match
                return False
    return True


class PatientStacIO(pystac.stac_io.DefaultStacIO):
    """pystac's reader with a timeout and 3 retries with backoff for HTTP(S) documents."""

    def __init__(self, timeout: float = 20.0, attempts: int = 3) -> None:
        super().__init__()
        self.timeout, self.attempts = timeout, attempts

    def read_text_from_href(self, href: str) -> str:
        """The document at ``href``; a URL is retried on connection errors and 5xx answers."""
        if not href.startswith(("http://", "https://")):
            return super().read_text_from_href(href)
        import time
        import urllib.error
        import urllib.request

        for attempt in range(self.attempts):
            try:
                with urllib.request.urlopen(href, timeout=self.timeout) as answer:
                    return str(answer.read().decode("utf-8"))
            except urllib.error.HTTPError as exc:
                if exc.code < 500 or attempt == self.attempts - 1:
                    raise
            except OSError:
                if attempt == self.attempts - 1:
                    raise
            time.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")


def is_static_url(source: str) -> bool:
    """Whether ``source`` is a static catalog or collection over HTTP(S) (a ``.json`` URL)."""
    return source.startswith(("http://", "https://")) and source.split("?")[0].endswith(".json")


class CatalogIndex:
    """Every collection and item of a static catalog (a folder, a JSON file or a JSON URL), ready to search.

    Relative asset links are made absolute (paths, or URLs for a catalog read over HTTP(S)),
    so they resolve against the item's location, not the working directory.
    """

    def __init__(self, root: Path | str) -> None:
        remote = isinstance(root, str) and is_static_url(root)
        files: list[Path | str]
        if remote:
            files = [root]
        else:
            root = Path(root)
            files = [root] if root.is_file() else sorted(
                [*root.glob("*/collection.json"), *root.glob("collection.json"), *root.glob("catalog.json")])
        if not files:
            raise NotFound(f"no STAC catalog or collection at {root}", "scan a folder first: eoengine source scan FOLDER --out CATALOG")
        self.collections: dict[str, dict[str, Any]] = {}
        self.records: list[Record] = []
        seen: set[str] = set()
        for f in files:
            try:
                obj = pystac.read_file(str(f), stac_io=PatientStacIO())
            except Exception as exc:  # noqa: BLE001 - urllib, JSON and STAC errors
                raise EOError(f"cannot read the STAC catalog {f}: {type(exc).__name__}: {first_line(exc)}",
                              "check the path or URL (a catalog.json or collection.json)") from None
            cols = [obj] if isinstance(obj, pystac.Collection) else list(obj.get_all_collections())  # type: ignore[attr-defined]
            for col in cols:
                if col.id in seen:
                    continue
                seen.add(col.id)
                self.collections[col.id] = col.to_dict(include_self_link=False, transform_hrefs=False)
                for item in col.get_items(recursive=True):
                    item.make_asset_hrefs_absolute()
                    d = item.to_dict(include_self_link=False, transform_hrefs=False)
                    start = item.common_metadata.start_datetime or item.datetime
                    end = item.common_metadata.end_datetime or item.datetime
                    assert start is not None and end is not None
                    self.records.append(Record(d, col.id, shape(item.geometry), start, end))
        self.records.sort(key=lambda r: (r.start, r.item["id"]))

    def item(self, collection: str, item_id: str) -> dict[str, Any] | None:
        """One item by collection and id."""
        return next((r.item for r in self.records if r.collection == collection and r.item["id"] == item_id), None)

    def search(self, collections: list[str] | None = None, ids: list[str] | None = None, bbox: Any = None,
               intersects: Any = None, datetime_range: str | None = None, query: Any = None) -> list[Record]:
        """Items matching every given filter, in datetime order; ``query`` filters properties (see :func:`parse_query`)."""
        unknown = sorted(set(collections or []) - set(self.collections))
        if unknown:
            raise BadQuery(f"unknown collection(s) {unknown}; available: {sorted(self.collections)}")
        area = parse_bbox(bbox) if bbox is not None else None
        if intersects is not None:
            geom = parse_geometry(intersects)
            area = geom if area is None else area.intersection(geom)
        when = parse_datetime(datetime_range) if datetime_range else None
        props = parse_query(query) if query else None
        out = []
        for r in self.records:
            if collections and r.collection not in collections:
                continue
            if ids and r.item["id"] not in ids:
                continue
            if area is not None and not r.geometry.intersects(area):
                continue
            if when is not None and (r.end < when[0] or r.start > when[1]):
                continue
            if props is not None and not matches_query(r.item["properties"], props):
                continue
            out.append(r)
        return out
