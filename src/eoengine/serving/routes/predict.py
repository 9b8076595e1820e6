"""Maps over HTTP: ``POST /predict`` (a GeoTIFF upload → a COG map) and ``POST /predict/aoi``.

``/predict/aoi`` takes an area and a time, sources the newest scene there from the server's
catalog (one per date for a multi-date model), fetches the model's bands and maps them.
At most ``max_concurrent_maps`` maps are predicted at a time; the others wait.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, File, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from eoengine.errors import EOError, Unavailable
from eoengine.serving.auth import KeyedRoute
from eoengine.serving.errors import error_response
from eoengine.serving.state import Server, ServerDep


class AOIRequest(BaseModel):
    """An area (bbox or GeoJSON geometry) and optional time and collections to map."""

    bbox: list[float] | None = Field(default=None, description="west, south, east, north in degrees")
    geometry: dict[str, Any] | None = Field(default=None, description="GeoJSON geometry in EPSG:4326")
    datetime: str | None = Field(default=None, description="RFC 3339 instant or interval; the newest scene is used")
    datetimes: list[str] | None = Field(default=None, description="for a multi-date model: one RFC 3339 interval per "
                                        "date, oldest first; the newest scene in each is used")
    collections: list[str] | None = None


def date_windows(body: AOIRequest, steps: int) -> list[str | None] | JSONResponse:
    """The time windows to source one scene each from: one per date the model takes.

    Args:
        body: the ``/predict/aoi`` request.
        steps: the model's number of dates.

    Returns:
        The windows in date order, or the 400 answer when they do not fit the model.

    """
    if body.datetime is not None and body.datetimes is not None:
        return error_response(400, "give datetime or datetimes, not both",
                              "datetime for one date, datetimes for a multi-date model")
    windows: list[str | None] = list(body.datetimes) if body.datetimes is not None else [body.datetime]
    if len(windows) != steps:
        example = ", ".join(f"'{2020 + t}-06-01T00:00:00Z/{2020 + t}-09-01T00:00:00Z'" for t in range(steps))
        return error_response(400, f"the model takes {steps} date(s); the request gives {len(windows)} time window(s)",
                              f"send 'datetimes' with one interval per date, oldest first, e.g. [{example}]"
                              if steps > 1 else "send one 'datetime'")
    return windows


async def predict_upload(s: ServerDep, file: UploadFile = File(...)) -> Response:  # noqa: B008 - FastAPI idiom
    """Map an uploaded GeoTIFF; the answer is the map as a COG."""
    work = Path(tempfile.mkdtemp(prefix="eoengine-serve-"))
    try:
        src = work / "upload.tif"
        with src.open("wb") as f:
            while chunk := await file.read(2**20):
                f.write(chunk)
        return await predict_files(s, [src], work, "the upload")
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


async def predict_files(s: Server, srcs: list[Path], work: Path, what: str) -> Response:
    """Map the rasters ``srcs`` (in ``work``, removed once answered) as the CLI reads them.

    Args:
        s: The server.
        srcs: The rasters: one stack, or one per date.
        work: Their temporary folder.
        what: What they are, for error messages ("the upload").

    Returns:
        The map as a COG, or the error answer.

    """
    import rasterio
    from rasterio.errors import RasterioIOError

    from eoengine.inference.sources import sources_for_package
    from eoengine.raster.scene import SceneReader

    meta = s.meta
    try:
        for src in srcs:
            with rasterio.open(src):
                pass
    except RasterioIOError:
        shutil.rmtree(work, ignore_errors=True)
        return error_response(400, f"{what} is not a raster GDAL can read", "send a GeoTIFF with the model's bands")
    try:  # the CLI's reading: the model's bands in order, by their descriptions, or the training stack
        sources = sources_for_package(meta, [str(src) for src in srcs])
    except EOError as exc:
        shutil.rmtree(work, ignore_errors=True)
        problem = exc.problem
        for src in srcs:
            problem = problem.replace(str(src), what if len(srcs) == 1 else f"{what} ({src.name})")
        return error_response(422, problem, f"send one stack with the model's bands ({', '.join(meta['bands'])}) in order, "
                                            "bands described by their names, or the stack the model was trained on")
    out = work / "map.tif"

    def run() -> None:
        with SceneReader(sources, meta.get("resampling", "bilinear")) as reader:
            s.predictor.predict(reader, out, None, ["upload"])

    async with s.maps:
        await asyncio.to_thread(run)
    return FileResponse(out, media_type="image/tiff", filename="map.tif",
                        background=BackgroundTask(shutil.rmtree, work, ignore_errors=True))


async def predict_aoi(body: AOIRequest, s: ServerDep) -> Response:
    """Source the newest scene of the area and time (one per date), fetch it and map it."""
    from shapely.geometry import box, shape

    from eoengine.sourcing.catalog import BadQuery, parse_bbox, parse_geometry

    settings = s.settings
    if settings.catalog is None:
        return error_response(404, "this server has no imagery catalog", "start it with --catalog CATALOG_OR_STAC_API_URL")
    if (body.bbox is None) == (body.geometry is None):
        return error_response(400, "give exactly one of bbox and geometry", "e.g. {'bbox': [w, s, e, n], 'datetime': '2024-06'}")
    try:
        area = parse_bbox(body.bbox) if body.bbox is not None else parse_geometry(body.geometry)
    except BadQuery as exc:
        return error_response(400, str(exc), "bbox is west, south, east, north in degrees; geometry is GeoJSON")
    if not area.is_valid:
        area = shape(area.buffer(0)) if body.geometry else box(*area.bounds)
    windows = date_windows(body, int(s.meta.get("timesteps", 1)))
    if isinstance(windows, JSONResponse):
        return windows
    paths, ids = [], []
    for window in windows:
        got = await newest_scene(s, settings.catalog, area, window, body.collections)
        if isinstance(got, JSONResponse):
            return got
        paths.append(got[0])
        ids.append(got[1])
    response = await predict_files(s, paths, Path(tempfile.mkdtemp(prefix="eoengine-serve-")),
                                   "the fetched scene" + ("s" if len(paths) > 1 else ""))
    response.headers["X-EOEngine-Item"] = ",".join(ids)
    return response


async def newest_scene(s: Server, catalog: str, area: Any, window: str | None,
                       collections: list[str] | None) -> tuple[Path, str] | JSONResponse:
    """The newest scene over ``area`` in ``window``, fetched (its path and item id), or the error answer.

    A catalog or asset that cannot be reached raises :class:`~eoengine.errors.Unavailable` (a 503),
    a fetch that fails otherwise its :class:`~eoengine.errors.EOError` (a 422).
    """
    from eoengine.sourcing.fetch import fetch_item
    from eoengine.sourcing.search import search

    try:
        found = await asyncio.to_thread(search, catalog, list(area.bounds), None, window,
                                        collections, None, None, None, 1, "datetime", True)
    except Unavailable:
        raise
    except EOError as exc:
        return error_response(400, exc.problem, "datetime is RFC 3339 (an instant or start/end); collections must exist")
    when = f" in {window}" if window else ""
    if not len(found):
        return error_response(404, f"no imagery for that area{when}", "widen the datetime or check the area")
    bands = [b.get("common_name") or b["name"] for b in s.meta["band_specs"]]
    fetched = await asyncio.to_thread(fetch_item, found.items[0], bands, Path(s.settings.cache), area)
    if fetched.path is None:
        return error_response(404, f"the newest scene{when} does not cover that area", "check the area")
    return fetched.path, fetched.item_id


def predict_router() -> APIRouter:
    """The map routes (need the API key).

    Returns:
        The router.

    """
    router = APIRouter(route_class=KeyedRoute)
    router.add_api_route("/predict", predict_upload, methods=["POST"], summary="Predict a GeoTIFF upload; answers with a COG map",
                         responses={200: {"content": {"image/tiff": {}}, "description": "the map as a Cloud-Optimized GeoTIFF"}})
    router.add_api_route("/predict/aoi", predict_aoi, methods=["POST"],
                         summary="Source the newest scene for an area and time, and map it (COG)",
                         responses={200: {"content": {"image/tiff": {}}}, 404: {"description": "no imagery"}})
    return router
