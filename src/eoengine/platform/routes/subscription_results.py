"""What a subscription's runs made: their maps and STAC Items by time, and the per-class area time series.

``/results?datetime=`` takes a STAC ``datetime`` (an instant, or ``start/end`` with ``..`` for an
open end) and answers the runs with a map whose imagery period ``[start, end)`` meets it, each with
its map's index row (so the maps routes tile and describe it) and its STAC Item, from the run
records stored. ``/stats`` serves the series the runs write themselves: one row per run and class
(the period's end, the class, pixels and hectares within the area) as JSON, CSV or GeoParquet
(each row with the subscription's area as its geometry, EPSG:4326). Readers of the project may call them.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from eoengine.config.query import parse_datetime
from eoengine.errors import Invalid, NotFound
from eoengine.platform.browse import project_config, project_folder
from eoengine.platform.db.models import Artifact, Subscription, SubscriptionRun
from eoengine.platform.deps import DbSession, Reader, RowId
from eoengine.platform.routes.subscriptions import find_subscription
from eoengine.platform.subscriptions import output_folder
from eoengine.subscriptions.state import RunRecord

router = APIRouter(prefix="/projects/{slug}/subscriptions", tags=["subscriptions"])
MEDIA = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}
DATETIME_FIX = "give datetime as an RFC 3339 instant or START/END (.. for an open end), e.g. 2026-01-01T00:00:00Z/.."


class ResultOut(BaseModel):
    """A run's outputs: its period, model version, map (with its index id for the maps routes) and STAC Item."""

    run_id: int
    key: str
    period_start: dt.datetime
    period_end: dt.datetime
    model_version: str | None
    scene_ids: list[str]
    map_id: int | None = Field(description="The map's id in GET /projects/SLUG/maps (tiles, description)")
    map_path: str = Field(description="The COG, relative to the project folder")
    item: dict[str, Any] | None = Field(description="The map's STAC Item (None if its file is gone)")


class StatRow(BaseModel):
    """The area of one class in one run's map, within the subscription's area (a row of the core's ``stats.json``)."""

    model_config = ConfigDict(populate_by_name=True)

    run: str = Field(description="The run's key")
    datetime: dt.datetime = Field(description="The end of the run's imagery period")
    model_version: str | None
    class_name: str = Field(alias="class")
    code: int
    pixels: int
    hectares: float


class StatsOut(BaseModel):
    """A subscription's per-class area time series over its successful runs, oldest first."""

    subscription: str
    series: list[StatRow]


def _records(session: DbSession, sub: Subscription) -> list[tuple[SubscriptionRun, RunRecord]]:
    """The subscription's runs that made a map, oldest period first."""
    rows = session.scalars(select(SubscriptionRun).where(SubscriptionRun.subscription_id == sub.id))
    found = [(row, RunRecord.model_validate(row.record)) for row in rows]
    return sorted(((row, rec) for row, rec in found if rec.map_path), key=lambda pair: pair[1].period_start)


def _item(path: str | None, request: Request, access: Reader) -> dict[str, Any] | None:
    if not path:
        return None
    file = project_folder(request, access.project) / path
    return json.loads(file.read_text()) if file.is_file() else None


@router.get("/{sub_id}/results", response_model=list[ResultOut])
def subscription_results(sub_id: RowId, access: Reader, request: Request, session: DbSession,
                         datetime: str = "../..") -> list[ResultOut]:
    """The maps and STAC Items of the runs whose imagery period meets ``datetime`` (default: all), oldest first."""
    sub = find_subscription(session, access, sub_id)
    try:
        start, end = parse_datetime(datetime)
    except Invalid as exc:
        raise Invalid(f"datetime: {exc.problem}", DATETIME_FIX) from None
    out = []
    for row, rec in _records(session, sub):
        if rec.period_end <= start or rec.period_start > end:
            continue
        map_id = session.scalar(select(Artifact.id).where(Artifact.project_id == access.project.id,
                                                          Artifact.kind == "map", Artifact.path == rec.map_path))
        out.append(ResultOut(run_id=row.id, key=row.key, period_start=rec.period_start, period_end=rec.period_end,
                             model_version=rec.model_version, scene_ids=rec.scene_ids, map_id=map_id,
                             map_path=rec.map_path or "", item=_item(rec.item_path, request, access)))
    return out


@router.get("/{sub_id}/stats", response_model=StatsOut, response_model_by_alias=True,
            responses={200: {"content": {"application/json": {}, **{m: {} for m in MEDIA.values()}},
                             "description": "the per-class area time series"}})
def subscription_stats(sub_id: RowId, access: Reader, request: Request, session: DbSession,
                       format: Literal["json", "csv", "parquet"] = "json") -> StatsOut | Response:
    """The per-class area (hectares within the area) of every successful run: JSON, CSV or GeoParquet (``?format=``).

    The series is the one the runs write (``stats.json``, ``stats.csv``, ``stats.parquet`` in the
    subscription's output folder); before a first successful run it is empty (CSV and GeoParquet: a 404).
    """
    sub = find_subscription(session, access, sub_id)
    name = sub.name
    session.commit()
    folder = output_folder(project_config(request, access.project).output_path, sub_id)
    path = folder / f"stats.{format}"
    if format == "json":
        return StatsOut.model_validate_json(path.read_text()) if path.is_file() else StatsOut(subscription=name,
                                                                                              series=[])
    if not path.is_file():
        raise NotFound(f"subscription {sub_id} has no statistics yet", "wait for its first successful run")
    return FileResponse(path, media_type=MEDIA[format], filename=f"{name}-stats.{format}")
