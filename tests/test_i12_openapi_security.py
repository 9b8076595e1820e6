"""The OpenAPI document states which routes need a caller, and how they authenticate, so /docs's Authorize works.

Every /api/v1 operation but sign-in and the health check requires an API token (HTTP bearer) or
the session cookie, with the CSRF header on a change; the document's claim is checked against
a real server on 127.0.0.1: each secured route refuses an anonymous caller (401), the open ones
answer one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from platform_server import API, LiveServer, api_routes, live_platform

OPEN = {f"POST {API}/auth/login", f"GET {API}/health"}
"""The operations anyone may call."""
HIDDEN = {f"HEAD {API}/projects/{{slug}}/datasets/{{ref}}/files/{{path}}"}
"""API routes the document leaves out (the GET route's handler, for a file's size)."""
SAFE = {"GET", "HEAD", "OPTIONS"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_platform(tmp_path_factory.mktemp("openapi") / "home") as server:
        yield server


@pytest.fixture(scope="module")
def document(live: LiveServer) -> dict[str, object]:
    r = httpx.get(f"{live.url}/openapi.json", timeout=60)
    assert r.status_code == 200
    return dict(r.json())


def _operations(document: dict[str, object]) -> dict[str, dict[str, object]]:
    paths = document["paths"]
    assert isinstance(paths, dict)
    return {f"{method.upper()} {path}": op for path, item in paths.items() for method, op in item.items()
            if path.startswith(API)}


def test_the_security_schemes_are_declared(document: dict[str, object]) -> None:
    schemes = document["components"]["securitySchemes"]  # type: ignore[index]
    assert schemes["bearer"] | {"description": ""} == {"type": "http", "scheme": "bearer", "description": "",
                                                      "bearerFormat": "eoengine API token"}
    assert {k: schemes["session"][k] for k in ("type", "in", "name")} == {"type": "apiKey", "in": "cookie",
                                                                       "name": "eoengine_session"}
    assert {k: schemes["csrf"][k] for k in ("type", "in", "name")} == {"type": "apiKey", "in": "header",
                                                                    "name": "X-CSRF-Token"}


def test_every_api_route_but_the_open_ones_declares_security(live: LiveServer, document: dict[str, object]) -> None:
    operations = _operations(document)
    routes = {re.sub(r":\w+}", "}", route) for route in api_routes(live.app)}  # {path:path} is {path} there
    assert set(operations) == routes - HIDDEN  # every route is in the document
    assert {route for route, op in operations.items() if "security" not in op} == OPEN
    for route, op in operations.items():
        if route in OPEN:
            continue
        session = {"session": []} | ({} if route.split()[0] in SAFE else {"csrf": []})
        assert op["security"] == [{"bearer": []}, session], route  # a token, or the cookie (+ CSRF on a change)


def test_the_document_says_what_the_server_does(live: LiveServer, document: dict[str, object]) -> None:
    with httpx.Client(base_url=live.url, timeout=60) as anonymous:
        for route in _operations(document):
            method, template = route.split(" ", 1)
            path = re.sub(r"{(\w+)}", lambda m: "1" if m.group(1).endswith("_id") or m.group(1) in "zxy" else "x",
                          template)
            r = anonymous.request(method, path, json={"username": "nobody", "password": "wrong-password"})
            if route in OPEN:
                assert r.status_code in (200, 401) and "sign in" not in r.text, (route, r.text)  # health; a wrong password
            else:
                assert r.status_code == 401 and r.json()["error"] == "this route needs you to sign in", (route, r.text)


def test_docs_page_is_served(live: LiveServer) -> None:
    r = httpx.get(f"{live.url}/docs", timeout=60)
    assert r.status_code == 200 and "swagger-ui" in r.text and "/openapi.json" in r.text


def test_inputs_the_fuzzer_found_are_bad_input_not_server_errors(live: LiveServer) -> None:
    """Found by schemathesis once the document declared security (its generated cases changed)."""
    with live.client() as c:
        assert c.post("/projects", json={"name": "fz", "template": "nc-landsat"}).status_code == 201
        too_far = c.get("/events", params={"after": 2**63})
        assert too_far.status_code == 422 and "after" in too_far.json()["error"], too_far.text
        folder = live.platform.settings.projects_dir / "fz" / "out"
        folder.mkdir(parents=True, exist_ok=True)
        from mlflow.tracking import MlflowClient

        MlflowClient(tracking_uri=f"sqlite:///{folder.resolve() / 'mlflow.db'}").create_experiment("fz")
        quoted = c.get("/projects/fz/runs", params={"sort": 'test_miou"'})
        assert quoted.status_code == 422 and "is not a metric name" in quoted.json()["error"], quoted.text
        assert c.get("/projects/fz/runs", params={"sort": "test_miou"}).json() == []
