"""A real platform server for the tests: a fresh home, migrated database, first admin, uvicorn on 127.0.0.1."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import morecantile
from conftest import serve_in_thread
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import select
from starlette.routing import BaseRoute

from eoengine.platform.admin import FirstAdmin, init_server
from eoengine.platform.app import create_platform_app
from eoengine.platform.db.models import Project
from eoengine.platform.events import record
from eoengine.platform.settings import Platform, PlatformSettings

API = "/api/v1"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
ADMIN_PASSWORD = "admin-password-1"


@dataclass
class LiveServer:
    """A running platform: its URL, state and first admin (with their token)."""

    url: str
    platform: Platform
    admin: FirstAdmin
    server: Any

    @property
    def app(self) -> FastAPI:
        """The application the server runs."""
        app: FastAPI = self.server.config.app
        return app

    def client(self, token: str | None = None) -> httpx.Client:
        """An HTTP client for the API with a bearer token (the admin's by default)."""
        return httpx.Client(base_url=f"{self.url}/api/v1", timeout=60,
                            headers={"Authorization": f"Bearer {token or self.admin.token}"})

    def user(self, username: str, password: str = "password-123", is_admin: bool = False) -> str:
        """Make a user (as the admin) and return an API token of theirs."""
        with self.client() as c:
            assert c.post("/users", json={"username": username, "password": password, "is_admin": is_admin}).status_code == 201
        with httpx.Client(base_url=f"{self.url}/api/v1", timeout=60) as anon:
            login = anon.post("/auth/login", json={"username": username, "password": password})
            assert login.status_code == 200, login.text
            made = anon.post("/tokens", json={"name": "tests"}, headers={"X-CSRF-Token": login.json()["csrf_token"]})
            assert made.status_code == 201, made.text
            return str(made.json()["token"])


@contextmanager
def live_platform(home: Path, db_url: str = "", logs: LogCapture | None = None, **settings: Any) -> Iterator[LiveServer]:
    """A platform server over a fresh home (and database) until the block ends; its logs go to ``logs`` if given."""
    config = PlatformSettings(home=home, db_url=db_url, secure_cookies=False, examples=EXAMPLES, **settings)
    platform = Platform(config)
    admin = init_server(platform, "admin", ADMIN_PASSWORD)
    url, server = serve_in_thread(create_platform_app(config, platform))
    if logs is not None:
        logs.attach()  # uvicorn set its loggers' levels as it started
    try:
        yield LiveServer(url, platform, admin, server)
    finally:
        server.should_exit = True
        platform.db.dispose()


def browsable_project(live: LiveServer, slug: str) -> dict[str, Any]:
    """A project (of the site admin) with one of everything its routes name, made as its jobs would make them.

    A built tiny dataset (the server needs the examples as a data root), a map, two MLflow runs
    and a model registered from the first, a finished job, and the dataset's lineage event.

    Returns:
        Path parameter → an existing value (``slug``, ``ref``, ``chip``, ``path``, ``map_id``,
        ``item``, ``z``/``x``/``y``, ``run_id``, ``name``, ``job_id``), plus ``runs`` (both run
        ids) and ``lineage`` (the dataset as TYPE:ID).

    """
    from browse_support import index_artifact, tiny_project  # they use this module

    folder, built = tiny_project(live, slug)
    ref = f"{slug}@{built.version[:12]}"
    with live.client() as c:
        chip = c.get(f"/projects/{slug}/datasets/{ref}/footprints").json()["features"][0]["id"]
        (folder / "out" / "maps").mkdir(parents=True)
        shutil.copy(EXAMPLES / "nc_landsat7_landclass96" / "data" / "strata.tif", folder / "out" / "maps" / "strata.tif")
        map_id = index_artifact(live, slug, "map", "strata", "out/maps/strata.tif")
        item = c.get(f"/projects/{slug}/imagery").json()[0]
        west, south, east, north = item["bbox"]
        tile = morecantile.tms.get("WebMercatorQuad").tile((west + east) / 2, (south + north) / 2, 12)
        job = c.post(f"/projects/{slug}/jobs", json={"spec": {"kind": "build"}}).json()["id"]
        assert c.post(f"/jobs/{job}/cancel").json()["state"] == "cancelled"  # finished: its log stream ends
    runs, model = _tracked_runs(folder, slug)
    with live.platform.db.write() as s:
        project = s.scalar(select(Project).where(Project.slug == slug))
        assert project is not None
        record(s, "dataset.version", "dataset", ref, actor_id=None, project_id=project.id,
               data={"inputs": [f"scene:{item['id']}"]})
    return {"slug": slug, "ref": ref, "chip": chip, "path": "manifest.json", "map_id": map_id, "item": item["id"],
            "z": tile.z, "x": tile.x, "y": tile.y, "run_id": runs[0], "runs": runs, "name": model, "job_id": job,
            "lineage": f"dataset:{ref}"}


def _tracked_runs(folder: Path, experiment: str) -> tuple[list[str], str]:
    """Two runs in the project's MLflow store (params and scores as training logs them), a model registered from the first."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{folder.resolve() / 'out' / 'mlflow.db'}")
    exp = client.create_experiment(experiment)
    runs = []
    for lr in ("0.01", "0.02"):
        run = client.create_run(exp, run_name=f"lr-{lr}")
        client.log_param(run.info.run_id, "training.optimizer.kwargs.lr", lr)
        client.log_metric(run.info.run_id, "test_miou", 0.3, step=0)
        client.set_terminated(run.info.run_id)
        runs.append(run.info.run_id)
    client.create_registered_model("landcover")
    client.create_model_version("landcover", f"runs:/{runs[0]}/model", run_id=runs[0])
    return runs, "landcover"


def app_routes(app: FastAPI) -> list[tuple[BaseRoute, str]]:
    """Every route of ``app`` with its full path (FastAPI ≥ 0.160 keeps included routers unflattened)."""
    try:
        from fastapi.routing import iter_route_contexts  # type: ignore[attr-defined]
    except ImportError:  # older FastAPI: app.routes is flat
        return [(r, str(getattr(r, "path", ""))) for r in app.routes]
    return [(rc.original_route, str(rc.path)) for rc in iter_route_contexts(app.routes)]


def api_routes(app: FastAPI) -> set[str]:
    """``METHOD PATH`` of every API route of ``app`` (under /api/v1)."""
    return {f"{method} {path}" for r, path in app_routes(app) if isinstance(r, APIRoute) and path.startswith(API)
            for method in r.methods}


def row_id_params(app: FastAPI) -> list[tuple[str, str]]:
    """(``METHOD PATH``, parameter) of every row id (an integer ``*_id``) in a path the API documents."""
    return [(f"{method.upper()} {path}", p["name"]) for path, item in app.openapi()["paths"].items()
            for method, op in item.items() for p in op.get("parameters", [])
            if p["in"] == "path" and p["schema"].get("type") == "integer" and p["name"].endswith("_id")]


SERVER_LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access")
"""The loggers a server writes to: the root (eoengine, libraries) and uvicorn's (access log, errors)."""


class LogCapture(logging.Handler):
    """Every record the server's loggers write while attached, formatted (with tracebacks)."""

    def __init__(self, level: int = logging.INFO) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []
        self.level_wanted = level
        self.levels_before: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the formatted record."""
        self.lines.append(self.format(record))

    @property
    def text(self) -> str:
        """Everything logged so far."""
        return "\n".join(self.lines)

    def attach(self) -> None:
        """Listen to the server loggers at the wanted level (again after uvicorn set its own levels)."""
        for name in SERVER_LOGGERS:
            logger = logging.getLogger(name)
            self.levels_before.setdefault(name, logger.level)
            logger.addHandler(self)
            logger.setLevel(self.level_wanted)

    def detach(self) -> None:
        """Stop listening; the loggers get their levels back."""
        for name, level in self.levels_before.items():
            logging.getLogger(name).removeHandler(self)
            logging.getLogger(name).setLevel(level)


@contextmanager
def capture_logs(level: int = logging.INFO) -> Iterator[LogCapture]:
    """Capture the server logs (uvicorn's access and error logs, the root logger) at ``level`` until the block ends.

    uvicorn sets its loggers' levels when a server starts: pass the capture to
    :func:`live_platform` (``logs=``), which attaches it again. uvicorn decides per connection
    whether to write access lines, so connections opened after that are logged.
    """
    capture = LogCapture(level)
    capture.attach()
    try:
        yield capture
    finally:
        capture.detach()
