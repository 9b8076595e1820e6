"""An in-memory index over a static STAC catalog, and the search every STAC API answers.

Loads every Collection and Item of a catalog (a ``catalog.json`` or ``collection.json``, or a
folder holding several) with their geometries, and answers searches by collections, ids,
bbox, intersecting geometry, datetime (an instant, or an interval whose ends may be
open ``..``) and item properties (the STAC API query extension's operators), sorted by
datetime then id, with offset-based pages.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pystac
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from eoengine.config.query import QUERY_OPS, BadQuery, SearchFields, SearchQuery, parse_datetime, parse_query
from eoengine.errors import EOError, NotFound, first_line


@dataclass
class Record:
    """One item with what searches need."""

    item: dict[str, Any]
    collection: str
    geometry: BaseGeometry
    start: datetime
    end: datetime


def sort_key(properties: dict[str, Any], sort: str) -> tuple[bool, str]:
    """Where an item goes when items are sorted by the property ``sort``: by its value as text, items without it last.

    Args:
        properties: the item's properties.
        sort: the property.

    Returns:
        The sort key.

    """
    return properties.get(sort) is None, str(properties.get(sort, ""))


def in_asked_order(records: list[Record], request: SearchFields) -> list[Record]:
    """``records`` in the order a request asks for with ``sort`` or ``descending``, else as they are.

    Args:
        records: what a search found, in the catalog's order (datetime, then id).
        request: the request (its fields set tell whether it asks for an order).

    Returns:
        The records in that order.

    """
    if not {"sort", "descending"} & request.model_fields_set or not request.sort:
        return records
    sort = request.sort
    return sorted(records, key=lambda r: sort_key(r.item["properties"], sort), reverse=request.descending)


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

    def joined(self, other: CatalogIndex) -> CatalogIndex:
        """A new index of this one's collections and items and ``other``'s (this one's win a shared collection id).

        Args:
            other: Another index.

        Returns:
            The joined index (both stay as they were).

        """
        joined = copy.copy(self)
        extra = set(other.collections) - set(self.collections)
        joined.collections = self.collections | {k: other.collections[k] for k in extra}
        joined.records = sorted(self.records + [r for r in other.records if r.collection in extra],
                                key=lambda r: (r.start, r.item["id"]))
        return joined

    def item(self, collection: str, item_id: str) -> dict[str, Any] | None:
        """One item by collection and id."""
        return next((r.item for r in self.records if r.collection == collection and r.item["id"] == item_id), None)

    def search(self, query: SearchQuery) -> list[Record]:
        """Items matching every filter of ``query``, in datetime order (its sort and limit are the caller's).

        Args:
            query: the search.

        Returns:
            The matching records.

        Raises:
            BadQuery: an unknown collection, or a datetime that is not RFC 3339.

        """
        unknown = sorted(set(query.collections or []) - set(self.collections))
        if unknown:
            raise BadQuery(f"unknown collection(s) {unknown}; available: {sorted(self.collections)}")
        area = query.area()
        when = parse_datetime(query.datetime) if query.datetime else None
        filters = query.filters()
        props = parse_query(filters) if filters else None
        out = []
        for r in self.records:
            if query.collections and r.collection not in query.collections:
                continue
            if query.ids and r.item["id"] not in query.ids:
                continue
            if area is not None and not r.geometry.intersects(area):
                continue
            if when is not None and (r.end < when[0] or r.start > when[1]):
                continue
            if props is not None and not matches_query(r.item["properties"], props):
                continue
            out.append(r)
        return out
