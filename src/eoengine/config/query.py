"""One search query: the area, time, collections, items and properties a catalog search filters by.

:class:`SearchQuery` is the query every caller builds — the CLI from its flags, the project
config (``imagery.source`` extends it), the model server's ``/predict/aoi`` and the STAC
API's ``/search`` and fetch jobs from their bodies — and :func:`eoengine.sourcing.search.search`
takes. It lives in the config stage so that the config can extend it. :class:`SearchFields`
holds its fields with their types and ranges only: an HTTP request extends it, so that a
body of the wrong shape is FastAPI's validation error while a query that does not parse is
the route's own (400) answer, from :meth:`SearchFields.search_query`.

A query's checks are those of a STAC API: bbox (4 or 6 numbers, in degrees), a GeoJSON
geometry to intersect, not both, and the query extension's operators. Text forms are
accepted where flags and URL parameters send text: ``"w,s,e,n"``, JSON geometries and
queries, comma-separated collections and ids. The datetime is checked by the catalog
searched (a STAC API may take forms a local catalog does not, e.g. ``2024-06``).
Problems are :class:`BadQuery`, naming the value and the fix.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Self

from pydantic import BaseModel, Field, ValidationError, model_validator

from eoengine.errors import Invalid

if TYPE_CHECKING:
    from shapely.geometry.base import BaseGeometry


class BadQuery(Invalid):
    """A search parameter that is malformed; the message names it and what is expected (a ``ValueError`` too)."""


QUERY_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq, "neq": operator.ne, "lt": operator.lt, "lte": operator.le, "gt": operator.gt, "gte": operator.ge,
    "startsWith": lambda a, b: isinstance(a, str) and a.startswith(b),
    "endsWith": lambda a, b: isinstance(a, str) and a.endswith(b),
    "contains": lambda a, b: b in a if isinstance(a, str | list) else False,
    "in": lambda a, b: a in b,
}
"""The STAC API query extension's operators."""

QUERY_EXAMPLE = '{"eo:cloud_cover": {"lte": 20}}'

BBOX_FIX = "bbox is west, south, east, north in degrees"
GEOMETRY_FIX = "give a valid GeoJSON geometry in EPSG:4326 (longitude, latitude)"
QUERY_FIX = f"give {{property: {{operator: value}}}}, e.g. {QUERY_EXAMPLE}"


def bbox_numbers(value: Any) -> list[float]:
    """The numbers of a bbox.

    Args:
        value: a list, or the text ``"w,s,e,n"``.

    Returns:
        The numbers (not yet checked as a bbox: see :func:`parse_bbox`).

    Raises:
        BadQuery: they are not numbers.

    """
    parts = value.split(",") if isinstance(value, str) else value
    try:
        return [float(v) for v in parts]
    except (TypeError, ValueError):
        raise BadQuery(f"bbox must be 4 (or 6) numbers, got {value!r}") from None


def parse_bbox(value: Any) -> BaseGeometry:
    """A bbox as a polygon (two, across the antimeridian).

    Args:
        value: 4 (or 6, with heights) numbers west, south, east, north, as a list or ``"w,s,e,n"``.

    Returns:
        The area.

    Raises:
        BadQuery: not 4 or 6 numbers, or not degrees with south <= north.

    """
    from shapely.geometry import box

    nums = bbox_numbers(value)
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
    """The time span of an RFC 3339 instant or ``start/end`` interval.

    Args:
        value: an instant, or an interval whose ends may be open (``..`` or empty).

    Returns:
        (start, end), in UTC when the text gives no zone.

    Raises:
        BadQuery: an end is not RFC 3339, or the interval ends before it starts.

    """
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
    """A GeoJSON geometry as shapely.

    Args:
        value: the geometry (a dict).

    Returns:
        The geometry.

    Raises:
        BadQuery: it is not GeoJSON, or it is empty or invalid.

    """
    from shapely.geometry import shape

    try:
        geom = shape(value)
    except Exception as exc:  # noqa: BLE001 - shapely raises several types for bad GeoJSON
        raise BadQuery(f"intersects is not a GeoJSON geometry: {exc}") from None
    if geom.is_empty or not geom.is_valid:
        raise BadQuery("intersects geometry is empty or invalid")
    return geom


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
            raise BadQuery(f"query must be JSON, e.g. {QUERY_EXAMPLE}") from None
    if not isinstance(value, dict):
        raise BadQuery(f"query must be an object, e.g. {QUERY_EXAMPLE}")
    parsed = {str(k): (v if isinstance(v, dict) else {"eq": v}) for k, v in value.items()}
    for prop, conds in parsed.items():
        unknown = sorted(set(conds) - set(QUERY_OPS))
        if unknown:
            raise BadQuery(f"unknown query operator(s) {unknown} for '{prop}'; use {', '.join(QUERY_OPS)}")
        if "in" in conds and not isinstance(conds["in"], list):
            raise BadQuery(f"query 'in' for '{prop}' takes a list")
    return parsed


class SearchFields(BaseModel):
    """A search's fields, typed and ranged but not yet parsed; :meth:`search_query` checks them."""

    bbox: list[float] | None = Field(default=None, description="west, south, east, north in degrees")
    intersects: dict[str, Any] | None = Field(default=None, description="GeoJSON geometry in EPSG:4326")
    datetime: str | None = Field(default=None, description="RFC 3339 instant or interval start/end ('..' open)")
    collections: list[str] | None = None
    ids: list[str] | None = Field(default=None, description="item ids")
    max_cloud: float | None = Field(default=None, ge=0, le=100, description="largest eo:cloud_cover")
    query: dict[str, Any] | None = Field(default=None, description=f"property filters (STAC query), e.g. {QUERY_EXAMPLE}")
    limit: int = Field(default=10, ge=1, description="at most this many items")
    sort: str | None = Field(default="datetime", description="property to sort by")
    descending: bool = Field(default=False, description="newest / largest first")

    def search_query(self, **changes: Any) -> SearchQuery:
        """The search, checked, as a plain :class:`SearchQuery`.

        Args:
            **changes: fields to replace (checked with the others), e.g. ``datetime=...``.

        Returns:
            The query.

        Raises:
            BadQuery: a field does not parse (see :meth:`SearchQuery.of`).

        """
        return SearchQuery.of(self.model_dump(include=set(SearchFields.model_fields)) | changes)


def _text_forms(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with the text forms flags and URL parameters send turned into lists and objects."""
    out = dict(data)
    for key in ("collections", "ids", "intersects", "query"):
        if out.get(key) == "":  # an empty URL parameter: no filter
            out[key] = None
    for key in ("collections", "ids"):
        if isinstance(out.get(key), str):
            out[key] = [v.strip() for v in out[key].split(",")]
    if isinstance(out.get("bbox"), str):
        try:
            out["bbox"] = bbox_numbers(out["bbox"])
        except BadQuery as exc:
            raise BadQuery(exc.problem, BBOX_FIX) from None
    if isinstance(out.get("intersects"), str):
        try:
            out["intersects"] = json.loads(out["intersects"])
        except json.JSONDecodeError:
            raise BadQuery("intersects must be a GeoJSON geometry (JSON)", GEOMETRY_FIX) from None
    if out.get("query") is not None:
        try:
            parse_query(out["query"])
        except BadQuery as exc:
            raise BadQuery(exc.problem, QUERY_FIX) from None
        if isinstance(out["query"], str):
            out["query"] = json.loads(out["query"])
    return out


class SearchQuery(SearchFields):
    """A checked search query: what :func:`eoengine.sourcing.search.search` takes (see the module docs)."""

    @model_validator(mode="before")
    @classmethod
    def _texts(cls, data: Any) -> Any:
        return _text_forms(data) if isinstance(data, dict) else data

    @model_validator(mode="after")
    def _checked(self) -> Self:
        if self.bbox is not None and self.intersects is not None:
            raise BadQuery("give bbox or intersects, not both", "use one area filter")
        try:
            self.area()
        except BadQuery as exc:
            raise BadQuery(exc.problem, BBOX_FIX if self.bbox is not None else GEOMETRY_FIX) from None
        return self

    @classmethod
    def of(cls, data: dict[str, Any]) -> Self:
        """The query ``data`` gives, with any problem as one :class:`BadQuery`.

        Args:
            data: the fields, in their JSON or text forms.

        Returns:
            The checked query.

        Raises:
            BadQuery: the first problem, with its fix.

        """
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            cause = first.get("ctx", {}).get("error")
            if isinstance(cause, BadQuery):
                raise BadQuery(cause.problem, cause.fix) from None
            where = ".".join(str(p) for p in first["loc"])
            raise BadQuery(f"{where}: {first['msg']}" if where else first["msg"], "fix the search parameters") from None

    def area(self) -> BaseGeometry | None:
        """The area searched: the bbox or the geometry as shapely, or None.

        Returns:
            The area (in EPSG:4326).

        Raises:
            BadQuery: the bbox or geometry does not parse.

        """
        if self.bbox is not None:
            return parse_bbox(self.bbox)
        return parse_geometry(self.intersects) if self.intersects is not None else None

    def filters(self) -> dict[str, Any] | None:
        """The property filters: ``query`` with ``max_cloud`` as an ``eo:cloud_cover`` condition.

        Returns:
            The STAC query, or None when there is none.

        """
        filters = dict(self.query or {})
        if self.max_cloud is not None:
            filters["eo:cloud_cover"] = {"lte": self.max_cloud}
        return filters or None
