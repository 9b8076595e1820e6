"""A subscription's spec: the area, the model, the imagery, the cadence, the compositing and the notifications.

The same typed spec is what ``POST /api/v1/subscriptions`` takes, what ``eoengine subscription
create`` sends and what ``eoengine subscription run SPEC.yaml`` reads (YAML, with ``area`` also
allowed as a path to a GeoJSON file next to the spec). Everything is checked when the spec is
made, so a bad spec is refused before anything is scheduled: the area (a valid Polygon or
MultiPolygon in lon/lat, at most :data:`MAX_VERTICES` vertices and :data:`MAX_AREA_KM2` km²), the
model reference, the cadence (:mod:`eoengine.subscriptions.cadence`), the dates and the webhooks.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from eoengine.config.query import parse_query
from eoengine.errors import Invalid, NotFound
from eoengine.subscriptions.cadence import check_cadence, utc

MAX_VERTICES = 10_000
"""The most vertices an area may have."""
MAX_AREA_KM2 = 10_000.0
"""The largest area (km², on the ellipsoid) a subscription may watch."""
Topic = Literal["run.succeeded", "run.failed", "change.detected", "drift.alert"]
TOPICS: tuple[Topic, ...] = get_args(Topic)
"""What a webhook can be told."""
Composite = Literal["newest", "least-cloudy", "median"]
AREA_FIX = "send a GeoJSON Polygon or MultiPolygon in lon/lat (EPSG:4326), or a Feature holding one"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Webhook(_Model):
    """Where to POST a subscription's notifications, signed with ``secret`` (HMAC-SHA256 of the body)."""

    url: str = Field(pattern=r"^https?://[^\s]+$", description="http(s) URL to POST to")
    secret: str = Field(min_length=16, max_length=256, description="shared secret the signature is made with")
    topics: list[Topic] = Field(default_factory=lambda: list(TOPICS), min_length=1, description="what to send")


class SubscriptionSpec(_Model):
    """An area watched with a model on a schedule; see the module docs."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")
    area: dict[str, Any] = Field(description="GeoJSON Polygon or MultiPolygon (lon/lat), or a Feature holding one")
    model: str = Field(min_length=1, description="models:/NAME@ALIAS (resolved at each run), models:/NAME/VERSION, "
                                                 "runs:/ID or a model package folder")
    source: str = Field(min_length=1, description="Imagery: a static STAC catalog folder or a STAC API URL")
    collections: list[str] | None = Field(None, description="Search only these collections")
    max_cloud: float | None = Field(None, ge=0, le=100, description="Largest eo:cloud_cover")
    query: dict[str, Any] | None = Field(None, description="STAC query on any property, e.g. {'platform': {'eq': 'x'}}")
    cadence: str = Field("each-new-scene", description="daily, weekly, monthly, a cron expression (UTC) or each-new-scene")
    composite: Composite = Field("newest", description="newest scene, least cloudy scene, or per-pixel median of the period")
    start: dt.datetime = Field(description="Imagery acquired from this time on is mapped")
    end: dt.datetime | None = Field(None, description="The subscription completes after this time")
    backfill: bool = Field(False, description="Process the history from start at the first run (one run per period)")
    change_threshold_ha: float = Field(0.0, ge=0, description="change.detected is sent when more hectares changed class")
    webhooks: list[Webhook] = Field(default_factory=list, max_length=10)
    engine: str = Field("auto", pattern=r"^(auto|torch|onnx|onnx-int8)$", description="auto, torch, onnx or onnx-int8")

    @field_validator("area")
    @classmethod
    def _area(cls, value: dict[str, Any]) -> dict[str, Any]:
        return area_geometry(value)

    @field_validator("cadence")
    @classmethod
    def _cadence(cls, value: str) -> str:
        return check_cadence(value)

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        if value.startswith("models:/"):
            rest = value.removeprefix("models:/")
            name, _, version = rest.partition("/")
            alias_name, at, alias = rest.partition("@")
            if not ((at and alias_name and alias and "/" not in rest) or (name and version.isdigit())):
                raise Invalid(f"the model {value!r} is not a registry reference",
                              "write models:/NAME@ALIAS (e.g. models:/landcover@champion) or models:/NAME/VERSION")
        return value

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: dt.datetime | None) -> dt.datetime | None:
        return None if value is None else utc(value)

    @field_validator("query")
    @classmethod
    def _query(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            parse_query(value)
        return value

    @model_validator(mode="after")
    def _dates(self) -> SubscriptionSpec:
        if self.end is not None and self.end <= self.start:
            raise Invalid(f"the subscription ends ({self.end.isoformat()}) before it starts ({self.start.isoformat()})",
                          "set end after start, or leave end out to run until cancelled")
        return self

    @property
    def is_registry_model(self) -> bool:
        """Whether the model is a registry alias, resolved again at each run."""
        return self.model.startswith("models:/") and "@" in self.model


def area_geometry(value: Any) -> dict[str, Any]:
    """The subscription area as a GeoJSON geometry, checked.

    Args:
        value: a Polygon or MultiPolygon geometry, a Feature holding one, or a FeatureCollection of one feature.

    Returns:
        The geometry (a dict).

    Raises:
        Invalid: not such a geometry, out of lon/lat range, self-intersecting or otherwise invalid, more than
            :data:`MAX_VERTICES` vertices, or larger than :data:`MAX_AREA_KM2`.

    """
    import shapely
    from shapely.geometry import shape
    from shapely.validation import explain_validity

    geometry = _geometry_of(value)
    try:
        made = shape(geometry)
    except Exception as exc:  # noqa: BLE001 - shapely raises several types for malformed coordinates
        raise Invalid(f"the area's coordinates are malformed ({exc})", AREA_FIX) from None
    if made.is_empty:
        raise Invalid("the area is empty", "draw a polygon of at least three vertices")
    count = int(shapely.get_num_coordinates(made))
    if count > MAX_VERTICES:
        raise Invalid(f"the area has {count} vertices, more than {MAX_VERTICES}", "simplify it (e.g. in QGIS) and send it again")
    west, south, east, north = made.bounds
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        raise Invalid(f"the area has coordinates out of lon/lat range ({made.bounds})", AREA_FIX)
    if not made.is_valid:
        raise Invalid(f"the area is not valid: {explain_validity(made)}",
                      "redraw it without self-intersections (holes inside their shell)")
    km2 = area_km2(geometry)
    if km2 > MAX_AREA_KM2:
        raise Invalid(f"the area is {km2:,.0f} km², larger than the {MAX_AREA_KM2:,.0f} km² a subscription may watch",
                      "split it into several subscriptions, or draw a smaller area")
    return dict(geometry)


def _geometry_of(value: Any) -> dict[str, Any]:
    if isinstance(value, dict) and value.get("type") == "FeatureCollection":
        features = value.get("features") or []
        if len(features) != 1:
            raise Invalid(f"the area is a FeatureCollection of {len(features)} features", "send one feature (one area)")
        value = features[0]
    if isinstance(value, dict) and value.get("type") == "Feature":
        value = value.get("geometry")
    if not isinstance(value, dict) or value.get("type") not in ("Polygon", "MultiPolygon"):
        kind = value.get("type") if isinstance(value, dict) else type(value).__name__
        raise Invalid(f"the area is a {kind!r}, not a Polygon or MultiPolygon", AREA_FIX)
    return value


def area_km2(geometry: dict[str, Any]) -> float:
    """The geodesic area of a lon/lat GeoJSON geometry in km² (on the WGS 84 ellipsoid)."""
    from pyproj import Geod
    from shapely.geometry import shape

    return abs(Geod(ellps="WGS84").geometry_area_perimeter(shape(geometry))[0]) / 1e6


def parse_spec(data: Any) -> SubscriptionSpec:
    """A subscription spec from its JSON/YAML data, with every problem named.

    Args:
        data: the spec as a dict.

    Returns:
        The checked spec.

    Raises:
        Invalid: it is not an object, or a field is missing or does not check (the fields named).

    """
    if not isinstance(data, dict):
        raise Invalid(f"a subscription spec must be an object, not {type(data).__name__}",
                      "write name, area, model, source, cadence and start as keys")
    try:
        return SubscriptionSpec.model_validate(data)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            where = ".".join(str(p) for p in e["loc"]) or "spec"
            cause = e.get("ctx", {}).get("error")
            problems.append(f"{where}: {cause.problem if isinstance(cause, Invalid) else e['msg']}")
        fixes = [c.fix for e in err.errors() if isinstance(c := e.get("ctx", {}).get("error"), Invalid) and c.fix]
        raise Invalid(f"bad subscription spec: {'; '.join(problems)}",
                      fixes[0] if len(fixes) == 1 else f"fix the named field(s); a spec takes: "
                                                         f"{', '.join(SubscriptionSpec.model_fields)}") from None


def load_spec(path: Path) -> SubscriptionSpec:
    """Read a subscription spec file (YAML or JSON); ``area`` may name a GeoJSON file and ``source`` a folder next to it.

    Args:
        path: the spec file.

    Returns:
        The checked spec, with relative paths resolved against the spec's folder.

    Raises:
        NotFound: the spec, or the area file it names, does not exist.
        Invalid: the file does not parse, or the spec does not check.

    """
    return parse_spec(read_spec(path))


def read_spec(path: Path, local: bool = True) -> Any:
    """A spec file's data, unchecked: its YAML with the area file it names read in.

    Args:
        path: the spec file.
        local: also resolve a relative ``source`` and model folder against the spec's folder (False for a spec
            sent to a server, whose paths are relative to the project folder).

    Returns:
        The data (a dict, if the file holds a mapping).

    Raises:
        NotFound: the spec, or the area file it names, does not exist.
        Invalid: the file does not parse, or the area file is not JSON.

    """
    import yaml

    if not path.is_file():
        raise NotFound(f"no subscription spec at {path}", "write one (see the README's 'Subscriptions') or check the path")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise Invalid(f"{path} is not YAML: {exc}".splitlines()[0], "fix its syntax") from None
    if isinstance(data, dict):
        data = dict(data)
        if isinstance(data.get("area"), str):
            area = (path.parent / data["area"]).resolve()
            if not area.is_file():
                raise NotFound(f"the area file {area} named by {path} does not exist", "check the spec's 'area' path")
            try:
                data["area"] = json.loads(area.read_text())
            except json.JSONDecodeError as exc:
                raise Invalid(f"the area file {area} is not GeoJSON: {exc}", AREA_FIX) from None
        if local:
            _resolve_local(data, path.parent)
    return data


def _resolve_local(data: dict[str, Any], folder: Path) -> None:
    source = data.get("source")
    if isinstance(source, str) and "://" not in source and not Path(source).is_absolute():
        data["source"] = str((folder / source).resolve())
    model = data.get("model")
    if isinstance(model, str) and ":/" not in model and not Path(model).is_absolute() and (folder / model).exists():
        data["model"] = str((folder / model).resolve())
