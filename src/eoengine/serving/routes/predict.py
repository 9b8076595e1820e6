"""Maps over HTTP: ``POST /predict`` (a GeoTIFF upload → a COG map) and ``POST /predict/aoi``.

``/predict/aoi`` takes a search (an area, a time, filters) and maps the newest scene there
in the server's catalog (one per date for a multi-date model) or the scenes it chooses:
:func:`~eoengine.inference.area.map_area`, in a thread pool of its own. At most
``max_concurrent_maps`` maps are predicted at a time; the others wait.
"""

from __future__ import annotations

import asyncio
import contextvars
import shutil
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

from fastapi import APIRouter, File, UploadFile
from fastapi.responses import FileResponse, Response
from pydantic import Field
from starlette.background import BackgroundTask

from eoengine.config.query import BadQuery, SearchFields, SearchQuery
from eoengine.errors import EOError
from eoengine.serving.auth import KeyedRoute
from eoengine.serving.errors import error_response
from eoengine.serving.limits import thread_slot
from eoengine.serving.state import Server, ServerDep


class AOIRequest(SearchFields):
    """A search for the scenes to map: an area (bbox or GeoJSON geometry), an optional time and filters.

    The newest scene of the time window is mapped (of each window, for a multi-date model), or
    the scenes ``ids`` chooses; ``limit``, ``sort`` and ``descending`` do not apply.
    """

    intersects: dict[str, Any] | None = Field(default=None, alias="geometry", description="GeoJSON geometry in EPSG:4326")
    datetimes: list[str] | None = Field(default=None, description="for a multi-date model: one RFC 3339 interval per "
                                        "date, oldest first; the newest scene in each is used")

    def search_query(self, **changes: Any) -> SearchQuery:
        """The request's search, checked; it needs exactly one area.

        Args:
            **changes: fields to replace.

        Returns:
            The query.

        Raises:
            BadQuery: no area or two, or a field that does not parse.

        """
        if (self.bbox is None) == (self.intersects is None):
            raise BadQuery("give exactly one of bbox and geometry", "e.g. {'bbox': [w, s, e, n], 'datetime': '2024-06'}")
        return super().search_query(**changes)


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
        return error_response(422, problem, f"send one stack with the model's bands ({', '.join(meta.bands)}) in order, "
                                            "bands described by their names, or the stack the model was trained on")
    out = work / "map.tif"

    def run() -> None:
        with SceneReader(sources, meta.resampling) as reader:
            s.predictor.predict(reader, out, None, ["upload"])

    async with s.maps:
        await asyncio.to_thread(run)
    return FileResponse(out, media_type="image/tiff", filename="map.tif",
                        background=BackgroundTask(shutil.rmtree, work, ignore_errors=True))


async def predict_aoi(body: AOIRequest, s: ServerDep) -> Response:
    """Map the newest scene of the area and time (one per date), or the chosen ones: :func:`~eoengine.inference.area.map_area`.

    A query or dates that do not fit the model are a 400; no imagery a 404 (``NoImagery`` is a
    ``NotFound``); an unreachable catalog or scene a 503; a fetch that fails otherwise a 422.
    """
    from eoengine.inference.area import map_area

    settings = s.settings
    if settings.catalog is None:
        return error_response(404, "this server has no imagery catalog", "start it with --catalog CATALOG_OR_STAC_API_URL")
    work = Path(tempfile.mkdtemp(prefix="eoengine-serve-"))
    try:
        run = partial(map_area, body.search_query(), s.predictor, settings.catalog, Path(settings.cache), work / "map.tif",
                      body.datetimes, thread_slot(s.maps))
        # in this request's context, as asyncio.to_thread runs its function: the progress reporter goes along
        done = await asyncio.get_running_loop().run_in_executor(s.areas, contextvars.copy_context().run, run)
    except BadQuery as exc:
        shutil.rmtree(work, ignore_errors=True)
        return error_response(400, exc.problem, exc.fix or "")
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return FileResponse(done.map, media_type="image/tiff", filename="map.tif", headers={"X-EOEngine-Item": ",".join(done.scene_ids)},
                        background=BackgroundTask(shutil.rmtree, work, ignore_errors=True))


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
