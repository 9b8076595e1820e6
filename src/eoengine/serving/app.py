"""The FastAPI application: predictions over HTTP for one model package.

Routes: ``POST /predict`` (a GeoTIFF upload → a COG map), ``POST /v1/models/{name}:predict``
(``{"instances": [...]}`` → ``{"predictions": [...]}``, the TF-Serving / Vertex AI contract,
also mounted at ``AIP_PREDICT_ROUTE`` so the same container backs Earth Engine's
``ee.Model.fromVertexAi``), ``GET /tiles/{z}/{x}/{y}.png`` (map tiles predicted on the fly
over a configured scene), ``GET /healthz`` and ``/readyz``, and Prometheus ``GET /metrics``.
Every route except health checks needs the API key (``X-API-Key`` or ``Authorization:
Bearer``). Errors are JSON, ``{"error": ..., "fix": ...}``, for every status the server
answers (FastAPI's own 404, 405 and validation errors included). Request bodies are capped
(uploads by ``max_upload_mb``, JSON by ``max_json_mb``): a declared ``Content-Length`` over
the cap is refused before anything is read, a streamed (chunked) body as soon as it passes it.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException as StarletteHTTPException

from eoengine.deploy.package import ModelPackage
from eoengine.errors import EOError
from eoengine.inference.predict import Predictor
from eoengine.serving.auth import key_matches
from eoengine.serving.batching import Batcher
from eoengine.serving.inputs import BadInput, answer, instance_array, pad_to, prepare
from eoengine.serving.limits import BodyCap
from eoengine.training.heads import heads_from_meta


@dataclass
class Settings:
    """Server settings (the CLI fills them from options and ``AIP_*`` / ``EOENGINE_*`` variables)."""

    api_key: str
    model_name: str = "model"
    max_upload_mb: float = 200.0
    max_json_mb: float = 20.0
    max_instances: int = 64
    max_concurrent_maps: int = 2
    max_batch: int = 16
    max_wait_ms: float = 5.0
    engine: str = "auto"
    tiles_scene: list[str] = field(default_factory=list)
    catalog: str | None = None
    cache: str = "eoengine-cache"
    predict_route: str | None = None
    health_route: str | None = None


class Instances(BaseModel):
    """A TF-Serving / Vertex AI prediction request."""

    instances: list[Any] = Field(description="raw band values per instance: {band: (H, W)}, {'image': (C, H, W)} or (C, H, W)")
    parameters: dict[str, Any] | None = None


class AOIRequest(BaseModel):
    """An area (bbox or GeoJSON geometry) and optional time and collections to map."""

    bbox: list[float] | None = Field(default=None, description="west, south, east, north in degrees")
    geometry: dict[str, Any] | None = Field(default=None, description="GeoJSON geometry in EPSG:4326")
    datetime: str | None = Field(default=None, description="RFC 3339 instant or interval; the newest scene is used")
    datetimes: list[str] | None = Field(default=None, description="for a multi-date model: one RFC 3339 interval per "
                                        "date, oldest first; the newest scene in each is used")
    collections: list[str] | None = None


class Predictions(BaseModel):
    """A TF-Serving / Vertex AI prediction answer, one entry per instance."""

    predictions: list[dict[str, Any]]
    model: str
    version: str


MULTIPART_SLACK = 2**16
"""Bytes an upload's body may hold beyond the file itself (multipart boundaries and headers)."""


def _error(status: int, message: str, fix: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "fix": fix}, status_code=status, headers=dict(headers or {}))


def body_limit(settings: Settings, path: str) -> tuple[int, str, str]:
    """The body cap of a route, what it is called, and how to stay under it.

    Args:
        settings: the server settings.
        path: the request path.

    Returns:
        (bytes allowed, the limit's description, the fix for a body over it).

    """
    if path == "/predict":
        return (int(settings.max_upload_mb * 2**20) + MULTIPART_SLACK, f"{settings.max_upload_mb:g} MB, the upload limit",
                "send a smaller scene, or use 'eoengine predict' for large ones (--max-upload-mb raises the limit)")
    return (int(settings.max_json_mb * 2**20), f"{settings.max_json_mb:g} MB, the limit for JSON bodies",
            "split the instances over several requests (--max-json-mb raises the limit)")


def date_windows(body: AOIRequest, steps: int) -> list[str | None] | JSONResponse:
    """The time windows to source one scene each from: one per date the model takes.

    Args:
        body: the ``/predict/aoi`` request.
        steps: the model's number of dates.

    Returns:
        The windows in date order, or the 400 answer when they do not fit the model.

    """
    if body.datetime is not None and body.datetimes is not None:
        return _error(400, "give datetime or datetimes, not both", "datetime for one date, datetimes for a multi-date model")
    windows: list[str | None] = list(body.datetimes) if body.datetimes is not None else [body.datetime]
    if len(windows) != steps:
        example = ", ".join(f"'{2020 + t}-06-01T00:00:00Z/{2020 + t}-09-01T00:00:00Z'" for t in range(steps))
        return _error(400, f"the model takes {steps} date(s); the request gives {len(windows)} time window(s)",
                      f"send 'datetimes' with one interval per date, oldest first, e.g. [{example}]"
                      if steps > 1 else "send one 'datetime'")
    return windows


def add_error_handlers(app: FastAPI, settings: Settings) -> None:
    """Answer FastAPI's and Starlette's own errors (404, 405, 413, validation) as ``{"error", "fix"}``.

    Args:
        app: the application.
        settings: its settings (for the body limits named in a 413).

    """
    fixes = {404: "see /docs for the routes", 400: "send the body the OpenAPI document (/docs) describes"}

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 413:
            _, name, fix = body_limit(settings, request.url.path)
            return _error(413, f"the request body exceeds {name}", fix)
        if exc.status_code == 405:
            allowed = (exc.headers or {}).get("allow", "")
            return _error(405, f"{request.method} is not allowed on {request.url.path}", f"use {allowed or 'another method'}",
                          exc.headers)
        message = f"no route {request.url.path}" if exc.status_code == 404 else str(exc.detail)
        return _error(exc.status_code, message, fixes.get(exc.status_code, "see /docs"), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return _error(422, (problems or "malformed request")[:500], "send the body the OpenAPI document (/docs) describes")

    @app.exception_handler(EOError)
    async def eo_error(request: Request, exc: EOError) -> JSONResponse:
        return _error(422, exc.problem, exc.fix or "")


def create_app(pkg: ModelPackage, settings: Settings) -> FastAPI:
    """The application serving ``pkg`` (already loaded)."""
    meta = pkg.meta
    heads = heads_from_meta(meta)
    version = str(meta.get("run_id") or meta.get("created") or "unversioned")
    registry = CollectorRegistry()
    requests = Counter("eoengine_requests", "HTTP requests", ["route", "status"], registry=registry)
    latency = Histogram("eoengine_request_seconds", "Request latency", ["route"], registry=registry,
                        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
    Gauge("eoengine_model_info", "The model being served", ["name", "model", "run", "dataset_version"], registry=registry).labels(
        settings.model_name, meta["model"], str(meta.get("run_id", "")), str(meta.get("dataset", {}).get("version", ""))).set(1)
    batch_sizes = Histogram("eoengine_batch_size", "Instances per forward pass", registry=registry, buckets=(1, 2, 4, 8, 16, 32, 64))
    multiple = int(meta.get("size_multiple", 1))
    model_lock = asyncio.Lock()

    predictor = Predictor(pkg, engine=settings.engine)  # its engine (PyTorch or ONNX Runtime) serves every route

    def forward(batch: np.ndarray) -> np.ndarray:
        batch_sizes.observe(len(batch))
        return app.state.predictor.forward(batch).numpy()  # type: ignore[no-any-return]

    batcher = Batcher(forward, settings.max_batch, settings.max_wait_ms)
    maps = asyncio.Semaphore(settings.max_concurrent_maps)
    open_paths = {"/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
    if settings.health_route:
        open_paths.add(settings.health_route)
    app = FastAPI(title="eoengine model server", version=version,
                  description=f"Serves {meta['model']} ({meta.get('task', 'segmentation')}) on bands {', '.join(meta['bands'])}.")
    add_error_handlers(app, settings)
    app.state.batcher = batcher
    app.state.predictor = predictor

    def too_large(path: str, declared: int) -> Response:
        _, name, fix = body_limit(settings, path)
        return _error(413, f"a request body of {declared / 2**20:.1f} MB exceeds {name}", fix)

    app.add_middleware(BodyCap, cap=lambda path: body_limit(settings, path)[0], refuse=too_large)  # inside the guard

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        start = time.perf_counter()
        route = request.url.path if not request.url.path.startswith("/tiles/") else "/tiles"
        if request.url.path not in open_paths and not key_matches(request, settings.api_key):
            response: Response = _error(401, "missing or wrong API key", "send it as 'X-API-Key: KEY' or 'Authorization: Bearer KEY'")
        else:
            response = await call_next(request)
        requests.labels(route, str(response.status_code)).inc()
        latency.labels(route).observe(time.perf_counter() - start)
        return response

    @app.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness: the model is loaded and answers")
    async def readyz() -> dict[str, Any]:
        return {"ready": True, "model": settings.model_name, "version": version, "bands": meta["bands"],
                "classes": [c["name"] for c in meta["classes"]], "engine": predictor.engine}

    @app.get("/metrics", summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def predict_instances(body: Instances) -> Predictions | JSONResponse:
        if not body.instances:
            return _error(400, "no instances", "send {'instances': [...]} with at least one instance")
        if len(body.instances) > settings.max_instances:
            return _error(413, f"{len(body.instances)} instances; at most {settings.max_instances} per request",
                          "split the request")
        try:
            raws = [instance_array(inst, meta) for inst in body.instances]
        except BadInput as exc:
            return _error(exc.status, str(exc), "send raw band values for every model band, in order")
        out = []
        for raw in raws:
            x, h, w = pad_to(prepare(raw, pkg), multiple)
            y = await batcher.submit(x)
            out.append(answer(y, heads, h, w, np.isnan(raw).any(axis=0)))
        return Predictions(predictions=out, model=settings.model_name, version=version)

    @app.post("/v1/models/{name}:predict", response_model=Predictions, summary="TF-Serving / Vertex AI prediction")
    async def predict_v1(name: str, body: Instances) -> Predictions | JSONResponse:
        if name != settings.model_name:
            return _error(404, f"no model '{name}' here", f"this server serves '{settings.model_name}'")
        return await predict_instances(body)

    if settings.predict_route:
        app.post(settings.predict_route, response_model=Predictions, summary="Vertex AI predict route (AIP_PREDICT_ROUTE)")(
            predict_instances)
    if settings.health_route and settings.health_route != "/healthz":
        app.get(settings.health_route, summary="Vertex AI health route (AIP_HEALTH_ROUTE)")(healthz)

    @app.post("/predict", summary="Predict a GeoTIFF upload; answers with a COG map",
              responses={200: {"content": {"image/tiff": {}}, "description": "the map as a Cloud-Optimized GeoTIFF"}})
    async def predict_upload(file: UploadFile = File(...)) -> Response:  # noqa: B008 - FastAPI idiom
        work = Path(tempfile.mkdtemp(prefix="eoengine-serve-"))
        try:
            src = work / "upload.tif"
            with src.open("wb") as f:
                while chunk := await file.read(2**20):
                    f.write(chunk)
            return await _predict_files([src], work, "the upload")
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise

    async def _predict_files(srcs: list[Path], work: Path, what: str) -> Response:
        import rasterio
        from rasterio.errors import RasterioIOError

        from eoengine.inference.sources import sources_for_package
        from eoengine.raster.scene import SceneReader

        try:
            for src in srcs:
                with rasterio.open(src):
                    pass
        except RasterioIOError:
            shutil.rmtree(work, ignore_errors=True)
            return _error(400, f"{what} is not a raster GDAL can read", "send a GeoTIFF with the model's bands")
        try:  # the CLI's reading: the model's bands in order, by their descriptions, or the training stack
            sources = sources_for_package(meta, [str(src) for src in srcs])
        except EOError as exc:
            shutil.rmtree(work, ignore_errors=True)
            problem = exc.problem
            for src in srcs:
                problem = problem.replace(str(src), what if len(srcs) == 1 else f"{what} ({src.name})")
            return _error(422, problem, f"send one stack with the model's bands ({', '.join(meta['bands'])}) in order, "
                                        "bands described by their names, or the stack the model was trained on")
        out = work / "map.tif"

        def run() -> None:
            with SceneReader(sources, meta.get("resampling", "bilinear")) as reader:
                predictor.predict(reader, out, None, ["upload"])

        async with maps:
            await asyncio.to_thread(run)
        return FileResponse(out, media_type="image/tiff", filename="map.tif",
                            background=BackgroundTask(shutil.rmtree, work, ignore_errors=True))

    @app.post("/predict/aoi", summary="Source the newest scene for an area and time, and map it (COG)",
              responses={200: {"content": {"image/tiff": {}}}, 404: {"description": "no imagery"}})
    async def predict_aoi(body: AOIRequest) -> Response:
        from shapely.geometry import box, shape

        from eoengine.sourcing.catalog import BadQuery, parse_bbox, parse_geometry

        if settings.catalog is None:
            return _error(404, "this server has no imagery catalog", "start it with --catalog CATALOG_OR_STAC_API_URL")
        if (body.bbox is None) == (body.geometry is None):
            return _error(400, "give exactly one of bbox and geometry", "e.g. {'bbox': [w, s, e, n], 'datetime': '2024-06'}")
        try:
            area = parse_bbox(body.bbox) if body.bbox is not None else parse_geometry(body.geometry)
        except BadQuery as exc:
            return _error(400, str(exc), "bbox is west, south, east, north in degrees; geometry is GeoJSON")
        if not area.is_valid:
            area = shape(area.buffer(0)) if body.geometry else box(*area.bounds)
        windows = date_windows(body, int(meta.get("timesteps", 1)))
        if isinstance(windows, JSONResponse):
            return windows
        paths, ids = [], []
        for window in windows:
            got = await newest_scene(settings.catalog, area, window, body.collections)
            if isinstance(got, JSONResponse):
                return got
            paths.append(got[0])
            ids.append(got[1])
        response = await _predict_files(paths, Path(tempfile.mkdtemp(prefix="eoengine-serve-")),
                                        "the fetched scene" + ("s" if len(paths) > 1 else ""))
        response.headers["X-EOEngine-Item"] = ",".join(ids)
        return response

    async def newest_scene(catalog: str, area: Any, window: str | None,
                           collections: list[str] | None) -> tuple[Path, str] | JSONResponse:
        """The newest scene over ``area`` in ``window``, fetched (its path and item id), or the error answer."""
        from eoengine.sourcing.fetch import fetch_item
        from eoengine.sourcing.search import search

        try:
            found = await asyncio.to_thread(search, catalog, list(area.bounds), None, window,
                                            collections, None, None, None, 1, "datetime", True)
        except EOError as exc:
            return _error(400, exc.problem, "datetime is RFC 3339 (an instant or start/end); collections must exist")
        when = f" in {window}" if window else ""
        if not len(found):
            return _error(404, f"no imagery for that area{when}", "widen the datetime or check the area")
        bands = [b.get("common_name") or b["name"] for b in meta["band_specs"]]
        try:
            fetched = await asyncio.to_thread(fetch_item, found.items[0], bands, Path(settings.cache), area)
        except EOError as exc:
            return _error(422, exc.problem, exc.fix or "")
        if fetched.path is None:
            return _error(404, f"the newest scene{when} does not cover that area", "check the area")
        return fetched.path, fetched.item_id

    if settings.tiles_scene:
        from eoengine.serving.routes.tiles import add_tile_route

        add_tile_route(app, pkg, settings.tiles_scene, model_lock, lambda batch: app.state.predictor.forward(batch))
    return app
