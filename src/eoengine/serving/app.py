"""The FastAPI application: predictions over HTTP for one model package.

Routes, one router per concern (``serving/routes/``): ``POST /predict`` (a GeoTIFF upload →
a COG map) and ``POST /predict/aoi``; ``POST /v1/models/{name}:predict`` (``{"instances":
[...]}`` → ``{"predictions": [...]}``, the TF-Serving / Vertex AI contract, also mounted at
``AIP_PREDICT_ROUTE`` so the same container backs Earth Engine's ``ee.Model.fromVertexAi``);
``GET /tiles/{z}/{x}/{y}.png`` (map tiles predicted on the fly over a configured scene);
``GET /healthz`` and ``/readyz``; and Prometheus ``GET /metrics``. Every route except health
checks needs the API key (``X-API-Key`` or ``Authorization: Bearer``; ``serving/auth.py``).
Errors are JSON, ``{"error": ..., "fix": ...}``, for every status the server answers
(FastAPI's own 404, 405 and validation errors included; ``serving/errors.py``). Request
bodies are capped (uploads by ``max_upload_mb``, JSON by ``max_json_mb``): a declared
``Content-Length`` over the cap is refused before anything is read, a streamed (chunked)
body as soon as it passes it.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import Response

from eoengine.models.package import ModelPackage
from eoengine.serving.errors import ErrorMapper, error_response
from eoengine.serving.limits import BodyCap
from eoengine.serving.routes.health import health_router
from eoengine.serving.routes.metrics import count_requests, metrics_router
from eoengine.serving.routes.predict import predict_router
from eoengine.serving.routes.vertex import vertex_router
from eoengine.serving.state import Settings, server_state

__all__ = ["Settings", "body_limit", "create_app"]

MULTIPART_SLACK = 2**16
"""Bytes an upload's body may hold beyond the file itself (multipart boundaries and headers)."""


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


def create_app(pkg: ModelPackage, settings: Settings) -> FastAPI:
    """The application serving ``pkg`` (already loaded).

    Args:
        pkg: The model package.
        settings: The server settings.

    Returns:
        The application; ``app.state.server`` holds what its routes share (``app.state.predictor``
        and ``app.state.batcher`` are its engine and batcher).

    Raises:
        EOError: The engine cannot run the package, or the tile scene's bands do not match the model's.

    """
    meta = pkg.meta
    server = server_state(pkg, settings)
    app = FastAPI(title="eoengine model server", version=server.version,
                  description=f"Serves {meta['model']} ({meta.get('task', 'segmentation')}) on bands {', '.join(meta['bands'])}.")
    app.state.server, app.state.api_key = server, settings.api_key
    app.state.predictor, app.state.batcher = server.predictor, server.batcher
    ErrorMapper(too_large=lambda path: body_limit(settings, path)[1:]).install(app)

    def too_large(path: str, declared: int) -> Response:
        _, name, fix = body_limit(settings, path)
        return error_response(413, f"a request body of {declared / 2**20:.1f} MB exceeds {name}", fix)

    app.add_middleware(BodyCap, cap=lambda path: body_limit(settings, path)[0], refuse=too_large)  # inside the counter
    app.middleware("http")(count_requests)
    for router in (health_router(settings), metrics_router(), vertex_router(settings), predict_router()):
        app.include_router(router)
    if settings.tiles_scene:
        from eoengine.serving.routes.tiles import tile_router

        app.include_router(tile_router(pkg, settings.tiles_scene, server.model_lock, lambda batch: server.predictor.forward(batch)))
    return app
