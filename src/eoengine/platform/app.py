"""The platform's FastAPI application: the API under ``/api/v1`` and the web app at ``/``.

Every route but ``/api/v1/health`` and sign-in needs a caller (API token or browser session)
and checks the caller's role on the project it names (``deps.py``, ``roles.py``); the OpenAPI
document says so per operation (an API token, or the session cookie, with the CSRF header on a
change), so /docs's Authorize button works. Errors are
the JSON ``{"error", "fix"}`` of every eoengine server (``serving/errors.py``); request bodies
are capped while they stream in (uploads by ``max_upload_mb``, everything else by
``max_json_mb``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from eoengine.platform.deps import BEARER, CSRF, SAFE_METHODS, SESSION
from eoengine.platform.routes import (
    annotation,
    annotation_assist,
    annotation_io,
    annotation_quality,
    auth,
    catalog,
    datasets,
    events,
    imagery,
    imagery_series,
    jobs,
    map_areas,
    maps,
    members,
    models,
    projects,
    runs,
    subscription_results,
    subscriptions,
    tokens,
    uploads,
    users,
)
from eoengine.platform.settings import Platform, PlatformSettings
from eoengine.serving.errors import ErrorMapper, error_response
from eoengine.serving.limits import BodyCap

API = "/api/v1"
WEB_DIST = Path(__file__).with_name("web_dist")
UPLOAD_SUFFIXES = ("/uploads", "/import")
"""Paths whose bodies are files (an upload, a label import): the upload limit, not the JSON one."""
MULTIPART_SLACK = 2**16


def body_limit(settings: PlatformSettings, path: str) -> tuple[int, str, str]:
    """The body cap of a route, what it is called, and how to stay under it.

    Args:
        settings: The server settings.
        path: The request path.

    Returns:
        (bytes allowed, the limit's description, the fix).

    """
    if path.endswith(UPLOAD_SUFFIXES):
        return (int(settings.max_upload_mb * 2**20) + MULTIPART_SLACK, f"{settings.max_upload_mb:g} MB, the upload limit",
                "upload a smaller file, or put it in a data root of the server")
    return (int(settings.max_json_mb * 2**20), f"{settings.max_json_mb:g} MB, the limit for JSON bodies",
            "send a smaller body")


def _health() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/health")
    def health() -> dict[str, str]:
        """Liveness: the server answers."""
        return {"status": "ok"}

    return router


def _precise_security(app: FastAPI) -> None:
    """Have the OpenAPI document state what a route's caller sends: a token, or the cookie (and, on a change, the CSRF header).

    FastAPI lists each security dependency as an alternative of its own; the cookie and the CSRF
    header go together, and a read needs no CSRF header.
    """
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            for item in plain()["paths"].values():
                for method, operation in item.items():
                    if "security" in operation:
                        session: dict[str, list[str]] = {SESSION.scheme_name: []}
                        if method.upper() not in SAFE_METHODS:
                            session[CSRF.scheme_name] = []
                        operation["security"] = [{BEARER.scheme_name: []}, session]
        return app.openapi_schema or plain()

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to change the document


def _web(app: FastAPI) -> None:
    """The built web app at ``/`` (its assets under ``/assets``), or a page saying how to build it."""
    if (WEB_DIST / "assets").is_dir():
        app.mount("/assets", StaticFiles(directory=WEB_DIST / "assets"), name="assets")

    @app.get("/", include_in_schema=False, response_model=None)
    def index() -> Response:
        page = WEB_DIST / "index.html"
        if page.exists():
            return FileResponse(page, headers={"Cache-Control": "no-cache"})
        return HTMLResponse("<h1>eoengine</h1><p>The web app is not built: run <code>make setup</code>.</p>", 503)


def create_platform_app(settings: PlatformSettings, platform: Platform | None = None) -> FastAPI:
    """The platform application over ``settings`` (its database migrated beforehand).

    Args:
        settings: The server settings.
        platform: The shared state (made from ``settings`` when None).

    Returns:
        The application; ``app.state.platform`` holds the settings and database.

    """
    app = FastAPI(title="eoengine platform", version="1", docs_url="/docs", openapi_url="/openapi.json",
                  description="Projects, people, jobs, datasets, runs, models and maps of a team.")
    app.state.platform = platform or Platform(settings)
    ErrorMapper(too_large=lambda path: body_limit(settings, path)[1:]).install(app)

    def too_large(path: str, declared: int) -> Response:
        _, name, fix = body_limit(settings, path)
        return error_response(413, f"a request body of {declared / 2**20:.1f} MB exceeds {name}", fix)

    app.add_middleware(BodyCap, cap=lambda path: body_limit(settings, path)[0], refuse=too_large)
    for module in (auth, tokens, users, projects, members, events, jobs, datasets, runs, models, maps, map_areas, uploads, imagery,
                   imagery_series, annotation, annotation_io, annotation_assist, annotation_quality, subscriptions,
                   subscription_results, catalog):
        app.include_router(module.router, prefix=API)
    app.include_router(_health(), prefix=API)
    app.mount(f"{API}/projects/{{slug}}/stac", imagery.ProjectStac())
    _precise_security(app)
    _web(app)
    return app
