"""A project map within an area: hectares per class, the COG itself, and its class polygons as a GeoPackage.

The area is ``?area=`` (a GeoJSON Polygon or MultiPolygon in lon/lat, or a Feature holding
one; checked as a subscription's area is), or by default the area of the ``predict-area`` job
that made the map (its ``aoi`` or ``bbox``); a map without either is measured whole. Hectares
are :func:`~eoengine.inference.class_areas.class_areas`' (block by block, any map size); the
polygons are :func:`~eoengine.inference.map_polygons.map_polygons`' (refused above
:data:`~eoengine.inference.map_polygons.MAX_POLYGON_PIXELS` pixels), written to a temporary
GeoPackage that is streamed and removed once sent. Every route needs the read role.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from eoengine.errors import Invalid
from eoengine.jobs.specs import PredictAreaSpec, parse_spec
from eoengine.platform.browse import ROW_ID, project_folder
from eoengine.platform.db.models import Artifact, Job
from eoengine.platform.deps import DbSession, Reader
from eoengine.platform.routes.maps import describe_map, map_file
from eoengine.platform.schemas import MapClassArea

router = APIRouter(prefix="/projects/{slug}/maps", tags=["maps"])
AreaParam = Annotated[str | None, Query(max_length=8_000, description=(  # a URL longer than ~16 KiB is cut off by the HTTP server
    "The area: a GeoJSON Polygon or MultiPolygon in lon/lat, or a Feature holding one (default: the area of the "
    "predict-area job that made the map, else the whole map)"))]
COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"


def _parsed_area(text: str) -> dict[str, Any]:
    from eoengine.subscriptions.spec import AREA_FIX, area_geometry

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Invalid(f"area is not JSON: {exc}", AREA_FIX) from None
    return area_geometry(value)


def _job_area(session: DbSession, found: Artifact, folder: Path) -> dict[str, Any] | None:
    """The area of the predict-area job that made the map (its aoi, or its bbox as a polygon), if any."""
    from shapely.geometry import box, mapping

    from eoengine.sourcing.search import aoi_geometry

    job = session.get(Job, found.job_id) if found.job_id is not None else None
    if job is None or job.kind != "predict-area":
        return None
    spec = parse_spec(job.spec)
    assert isinstance(spec, PredictAreaSpec)
    if spec.aoi:
        inline = spec.aoi.lstrip().startswith("{")
        return aoi_geometry(spec.aoi if inline else str(folder / spec.aoi))
    if spec.bbox:
        return dict(mapping(box(*(float(v) for v in spec.bbox.split(",")))))
    return None


def map_and_area(request: Request, access: Any, session: DbSession, map_id: int,
                 area: str | None) -> tuple[Artifact, Path, dict[str, Any] | None]:
    """The map's row and file, and the area asked for (or its job's, or None for the whole map).

    Args:
        request: The request (for the project folder).
        access: The caller's access to the project.
        session: The request's session.
        map_id: The map's artefact id.
        area: The ``area`` parameter's text, or None.

    Returns:
        (row, file, area geometry in lon/lat or None).

    Raises:
        NotFound: No such map in the project, or its file is gone.
        Invalid: The area is not a valid Polygon/MultiPolygon (or too large), or the map is not a class map.

    """
    found, path = map_file(request, access, session, map_id)
    if describe_map(path)["kind"] != "classes":
        raise Invalid(f"map {map_id} ({found.name}) holds values, not classes", "choose a class map")
    geometry = _parsed_area(area) if area is not None else _job_area(session, found, project_folder(request, access.project))
    return found, path, geometry


@router.get("/{map_id}/areas", response_model=list[MapClassArea])
def map_class_areas(map_id: ROW_ID, access: Reader, request: Request, session: DbSession,
                    area: AreaParam = None) -> list[MapClassArea]:
    """Pixels and hectares of each class of a class map within the area (with the class colours)."""
    from eoengine.inference.class_areas import class_areas

    _, path, geometry = map_and_area(request, access, session, map_id, area)
    colours = {c.code: c.color for c in describe_map(path)["classes"]}
    return [MapClassArea(code=a.code, name=a.name, color=colours.get(a.code, "#808080"), pixels=a.pixels,
                         hectares=a.hectares) for a in class_areas(path, geometry)]


@router.get("/{map_id}/download", response_class=FileResponse, responses={200: {"content": {COG_TYPE: {}}}})
def download_map(map_id: ROW_ID, access: Reader, request: Request, session: DbSession) -> FileResponse:
    """The map's COG as it is on disk (it opens in QGIS as it is)."""
    found, path = map_file(request, access, session, map_id)
    return FileResponse(path, media_type=COG_TYPE, filename=Path(found.path).name)


@router.get("/{map_id}/polygons", response_class=FileResponse,
            responses={200: {"content": {"application/geopackage+sqlite3": {}},
                             "description": "a GeoPackage layer 'classes': code, name, hectares per polygon"}})
def map_polygons_gpkg(map_id: ROW_ID, access: Reader, request: Request, session: DbSession,
                      area: AreaParam = None) -> FileResponse:
    """The class map's polygons within the area as a GeoPackage (the map's CRS; class code, name and hectares)."""
    from eoengine.inference.map_polygons import map_polygons, write_geopackage

    found, path, geometry = map_and_area(request, access, session, map_id, area)
    polygons = map_polygons(path, geometry)
    scratch = Path(tempfile.mkdtemp(prefix="eoengine-polygons-"))
    try:
        gpkg = write_geopackage(polygons, scratch / f"{Path(found.path).stem}.gpkg")
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return FileResponse(gpkg, media_type="application/geopackage+sqlite3", filename=gpkg.name,
                        background=BackgroundTask(shutil.rmtree, scratch, ignore_errors=True))
