"""Issue 11: errors by kind, one HTTP error mapper and body, one API-key check on every router."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pystac
import pytest
from conftest import four_band_stack, free_port, saved_package, serve_in_thread
from fastapi import FastAPI

from eoengine.errors import Conflict, EOError, Invalid, NotFound, Unavailable, from_worker, worker_error
from eoengine.serving.errors import ErrorMapper
from eoengine.sourcing.catalog import BadQuery, CatalogIndex

KEY = "i11-secret-key-7f3a"
AUTH = {"X-API-Key": KEY}
OPEN = {"/healthz", "/readyz", "/vertex/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def test_kinds_are_eoerrors_and_builtins() -> None:
    for kind, builtin in ((NotFound, FileNotFoundError), (Invalid, ValueError), (Unavailable, ConnectionError)):
        exc = kind("the problem", "the fix")
        assert isinstance(exc, EOError) and isinstance(exc, builtin)
        assert (exc.problem, exc.fix, str(exc)) == ("the problem", "the fix", "the problem — the fix")
    assert isinstance(Conflict("x"), EOError) and not isinstance(Conflict("x"), OSError)
    assert issubclass(BadQuery, Invalid) and issubclass(BadQuery, ValueError) and str(BadQuery("bad bbox")) == "bad bbox"


def test_a_worker_error_keeps_its_kind() -> None:
    try:
        raise worker_error(NotFound("raster not found: a.tif", "check the path"))
    except RuntimeError as exc:
        back = from_worker(exc)
    assert type(back) is NotFound and (back.problem, back.fix) == ("raster not found: a.tif", "check the path")


def test_raise_sites_say_their_kind(tmp_path: Path) -> None:
    from eoengine.config.load import load_config
    from eoengine.sourcing.search import search

    with pytest.raises(FileNotFoundError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(NotFound, match="no STAC catalog or collection"):
        CatalogIndex(tmp_path)
    with pytest.raises(ConnectionError, match="cannot reach the STAC API"):
        search(f"http://127.0.0.1:{free_port()}", [0, 0, 1, 1])


@pytest.fixture(scope="module")
def kinds_server() -> Any:
    """A real server whose routes raise each kind, with the mapper every app installs."""
    app = FastAPI()
    ErrorMapper().install(app)
    raised = {"missing": NotFound("no run 'x'", "list the runs"), "invalid": Invalid("bad value", "give a number"),
              "down": Unavailable("cannot reach the STAC API", "check the network"), "busy": Conflict("still training", "wait"),
              "plain": EOError("bad input", "fix it")}

    @app.get("/raise/{kind}")
    async def raise_kind(kind: str) -> None:
        raise raised[kind]

    @app.get("/number")
    async def number(n: int) -> dict[str, int]:
        return {"n": n}

    @app.get("/bug")
    async def bug() -> None:
        raise RuntimeError("a bug")

    url, server = serve_in_thread(app)
    yield url
    server.should_exit = True


@pytest.mark.parametrize(("kind", "status"), [("missing", 404), ("invalid", 422), ("plain", 422), ("busy", 409), ("down", 503)])
def test_each_kind_has_its_status_and_the_one_body(kinds_server: str, kind: str, status: int) -> None:
    r = httpx.get(f"{kinds_server}/raise/{kind}")
    assert r.status_code == status and set(r.json()) == {"error", "fix"} and r.json()["fix"], r.text


def test_validation_errors_http_errors_and_bugs_are_the_one_body(kinds_server: str) -> None:
    invalid = httpx.get(f"{kinds_server}/number", params={"n": "many"})
    assert invalid.status_code == 422 and set(invalid.json()) == {"error", "fix"} and "query.n" in invalid.json()["error"]
    for path, status in (("/nowhere", 404), ("/bug", 500)):
        r = httpx.get(kinds_server + path)
        assert r.status_code == status and set(r.json()) == {"error", "fix"} and r.json()["fix"], r.text
    assert "RuntimeError" in httpx.get(f"{kinds_server}/bug").json()["error"]


@pytest.fixture(scope="module")
def model_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The model server with every router on (tiles, Vertex AI routes), over a STAC API nobody answers."""
    from eoengine.models.package import load_package
    from eoengine.serving.app import Settings, create_app

    tmp = tmp_path_factory.mktemp("i11serve")
    pkg = load_package(saved_package(tmp / "model"))
    settings = Settings(api_key=KEY, model_name="m", engine="torch", tiles_scene=[str(four_band_stack(tmp / "s.tif"))],
                        catalog=f"http://127.0.0.1:{free_port()}", predict_route="/vertex/predict",
                        health_route="/vertex/health")
    app = create_app(pkg, settings)
    url, server = serve_in_thread(app)
    yield url, app
    server.should_exit = True


def test_an_unreachable_catalog_is_a_503(model_server: tuple[str, FastAPI]) -> None:
    url, _ = model_server
    r = httpx.post(f"{url}/predict/aoi", json={"bbox": [-93.34, 15.70, -93.30, 15.74]}, headers=AUTH, timeout=60)
    assert r.status_code == 503 and set(r.json()) == {"error", "fix"}, r.text
    assert "cannot reach the STAC API" in r.json()["error"] and "network" in r.json()["fix"]


def test_a_request_validation_error_names_the_field(model_server: tuple[str, FastAPI]) -> None:
    url, _ = model_server
    r = httpx.post(f"{url}/v1/models/m:predict", json={"instances": "all"}, headers=AUTH)
    assert r.status_code == 422 and set(r.json()) == {"error", "fix"} and "body.instances" in r.json()["error"], r.text


def _calls(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route the OpenAPI document lists, path parameters filled in."""
    filled = {"{name}": "m", "{z}": "0", "{x}": "0", "{y}": "0", "{cid}": "c", "{iid}": "i", "{job_id}": "j", "{path}": "a.tif"}
    calls = []
    for path, operations in app.openapi()["paths"].items():
        for param, value in filled.items():
            path = path.replace(param, value)
        calls += [(method.upper(), path) for method in operations]
    return calls


def test_every_route_of_the_model_server_needs_the_key_but_health(model_server: tuple[str, FastAPI],
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    url, app = model_server
    calls = _calls(app)
    assert {p for _, p in calls} >= {"/predict", "/predict/aoi", "/v1/models/m:predict", "/vertex/predict",
                                     "/tiles/0/0/0.png", "/metrics", "/healthz", "/readyz", "/vertex/health"}
    caplog.set_level(logging.DEBUG)
    for method, path in calls:
        for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}):
            r = httpx.request(method, url + path, headers=headers, content=b"{not json",
                              timeout=30)  # refused before its body is parsed
            if path in OPEN:
                assert r.status_code == 200, (method, path, r.text)
            else:
                assert r.status_code == 401 and r.json() == {
                    "error": "missing or wrong API key", "fix": "send it as 'X-API-Key: KEY' or 'Authorization: Bearer KEY'"}, (
                    method, path, r.text)
    assert httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    assert KEY not in caplog.text


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("i11stac")
    extent = pystac.Extent(pystac.SpatialExtent([[10, 50, 11, 51]]),
                           pystac.TemporalExtent([[datetime(2024, 1, 1, tzinfo=UTC), None]]))
    col = pystac.Collection("scenes", "one scene", extent, license="other")
    geom = {"type": "Polygon", "coordinates": [[[10, 50], [11, 50], [11, 51], [10, 51], [10, 50]]]}
    col.add_item(pystac.Item("one", geom, [10, 50, 11, 51], datetime(2024, 1, 1, tzinfo=UTC), {}))
    col.normalize_hrefs(str(root / "scenes"))
    col.save(pystac.CatalogType.SELF_CONTAINED)
    return root


def _stac(catalog: Path, private: bool) -> tuple[str, Any, FastAPI]:
    from eoengine.serving.stac_api import create_stac_app

    app = create_stac_app(CatalogIndex(catalog), cache=catalog.parent / "cache", api_key=KEY, private=private)
    url, server = serve_in_thread(app)
    return url, server, app


def test_stac_errors_are_the_one_body_with_stac_s_fields(catalog: Path) -> None:
    url, server, _ = _stac(catalog, private=False)
    try:
        cases = [("GET", "/collections/nope", {}, 404, "NotFound"), ("GET", "/fetch/nope", {}, 404, "NotFound"),
                 ("GET", "/search", {"params": {"bbox": "1,2,3"}}, 400, "BadRequest"),
                 ("POST", "/search", {"json": {"limit": "many"}}, 400, "BadRequest"),
                 ("POST", "/fetch", {"json": {"bands": ["red"]}}, 401, "Unauthorized"),
                 ("GET", "/nowhere", {}, 404, "NotFound")]
        for method, path, kwargs, status, code in cases:
            r = httpx.request(method, url + path, **kwargs)
            body = r.json()
            assert r.status_code == status and set(body) == {"error", "fix", "code", "description"}, (path, r.text)
            assert body["code"] == code and body["description"] == body["error"] and body["fix"], (path, body)
        assert "limit" in httpx.post(f"{url}/search", json={"limit": "many"}).json()["error"]
    finally:
        server.should_exit = True


def test_the_stac_api_needs_the_key_to_write_and_to_read_when_private(catalog: Path) -> None:
    for private in (False, True):
        url, server, app = _stac(catalog, private)
        try:
            for method, path in _calls(app):
                r = httpx.request(method, url + path, json={"bands": ["red"]})
                needs_key = private or (method, path) == ("POST", "/fetch")
                assert (r.status_code == 401) == needs_key and r.status_code < 500, (private, method, path, r.text)
            assert httpx.get(f"{url}/openapi.json").status_code == 200
            assert httpx.get(f"{url}/collections", headers=AUTH).status_code == 200
        finally:
            server.should_exit = True

