"""The Python client over real HTTP against a live platform: typed answers, and every error as its eoengine kind."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port, serve_in_thread
from platform_server import ADMIN_PASSWORD, LiveServer, live_platform
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from eoengine.client import Client, sign_in_token
from eoengine.client.http import server_url
from eoengine.errors import (
    Conflict,
    Denied,
    EOError,
    Invalid,
    NotFound,
    TooManyRequests,
    Unauthenticated,
    Unavailable,
)
from eoengine.platform.db.models import BrowserSession
from eoengine.platform.schemas import MemberOut, NewTokenOut, OverviewOut, ProjectOut, UserOut


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    with live_platform(tmp_path / "home") as server:
        yield server


@pytest.fixture
def admin(live: LiveServer) -> Iterator[Client]:
    with Client(live.url, live.admin.token, timeout=60) as client:
        yield client


def _nc_config(live: LiveServer) -> str:
    assert live.platform.settings.examples is not None
    return (live.platform.settings.examples / "nc_landsat7_landclass96" / "eoengine.yaml").read_text()


def test_import_is_light() -> None:
    code = "import sys, eoengine.client; print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'rasterio', " \
           "'lightning', 'mlflow', 'sqlalchemy', 'fastapi', 'numpy', 'geopandas'}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_me_users_and_tokens(live: LiveServer, admin: Client) -> None:
    me = admin.me()
    assert isinstance(me, UserOut) and (me.username, me.is_admin) == ("admin", True)
    made = admin.create_user("carla", "password-123")
    assert isinstance(made, UserOut) and made.username == "carla" and not made.is_admin
    assert [u.username for u in admin.users()] == ["admin", "carla"]
    assert admin.update_user(made.id, disabled=True).disabled is True

    token = admin.create_token("ci", expires_days=2)
    assert isinstance(token, NewTokenOut) and token.token.startswith("eoe_") and token.prefix == token.token[:8]
    assert token.expires_at is not None and 1.9 < (token.expires_at - token.created_at).total_seconds() / 86400 < 2.1
    listed = admin.tokens()
    assert [t.name for t in listed] == ["ci", "server init"] and not hasattr(listed[0], "token")
    with Client(live.url, token.token) as other:
        assert other.me().username == "admin"
        admin.revoke_token(token.id)
        with pytest.raises(Unauthenticated, match="revoked"):
            other.me()
    assert next(t for t in admin.tokens() if t.id == token.id).revoked_at is not None
    with pytest.raises(NotFound, match="no token 9999"):
        admin.revoke_token(9999)


def test_projects_overview_config_and_delete(live: LiveServer, admin: Client) -> None:
    made = admin.create_project("NC landcover", template="nc-landsat")
    assert isinstance(made, ProjectOut) and (made.slug, made.role) == ("nc-landcover", "admin")
    assert [(p.slug, p.name, p.role) for p in admin.projects()] == [("nc-landcover", "NC landcover", "admin")]
    overview = admin.project("nc-landcover")
    assert isinstance(overview, OverviewOut) and "name: nc-landcover" in overview.config
    [scene] = overview.footprints["features"]
    lon, lat = scene["geometry"]["coordinates"][0][0]
    assert -80 < lon < -78 and 35 < lat < 36.5  # Raleigh, North Carolina
    assert overview.jobs == [] and overview.datasets == []

    changed = admin.set_config("nc-landcover", overview.config + "\n# edited by the client\n")
    assert changed.config.endswith("# edited by the client\n")
    assert changed.config == (live.platform.settings.projects_dir / "nc-landcover" / "eoengine.yaml").read_text()
    from_text = admin.create_project("From text", config=_nc_config(live).replace("../../out/demo", "out"))
    assert from_text.slug == "from-text"
    admin.delete_project("from-text")
    assert [p.slug for p in admin.projects()] == ["nc-landcover"]
    assert not (live.platform.settings.projects_dir / "from-text").exists()


def test_members_and_roles(live: LiveServer, admin: Client) -> None:
    admin.create_project("NC", template="nc-landsat")
    live.user("vera")
    added = admin.add_member("nc", "vera", "viewer")
    assert isinstance(added, MemberOut) and (added.username, added.role) == ("vera", "viewer")
    assert [(m.username, m.role) for m in admin.members("nc")] == [("admin", "admin"), ("vera", "viewer")]
    assert admin.set_role("nc", "vera", "reviewer").role == "reviewer"
    assert dict((m.username, m.role) for m in admin.members("nc"))["vera"] == "reviewer"
    admin.remove_member("nc", "vera")
    assert [m.username for m in admin.members("nc")] == ["admin"]


def test_api_errors_are_their_kinds(live: LiveServer, admin: Client) -> None:
    admin.create_project("NC", template="nc-landsat")
    vera = live.user("vera")
    admin.add_member("nc", "vera", "viewer")
    with pytest.raises(Conflict, match="exists already") as conflict:
        admin.create_project("NC", template="nc-landsat")
    assert conflict.value.fix == "choose another name"
    with pytest.raises(NotFound, match="no project 'missing'"):
        admin.project("missing")
    with pytest.raises(Invalid, match="eoengine.yaml"):
        admin.create_project("bad", config="name: x\nimagery: {bands: []}\n")
    with pytest.raises(Invalid, match="username"):
        admin.add_member("nc", "", "viewer")  # the server's request validation
    with pytest.raises(Invalid, match="either a config or a template"):
        admin.create_project("neither")
    with Client(live.url, vera) as viewer:
        with pytest.raises(Denied, match="may not manage") as denied:
            viewer.set_config("nc", "name: nc\n")
        assert "admin" in (denied.value.fix or "")
        with pytest.raises(Denied, match="site admin"):
            viewer.users()
    with Client(live.url, "eoe_not-a-token") as stranger, pytest.raises(Unauthenticated, match="unknown") as unknown:
        stranger.projects()
    assert "eoe_not-a-token" not in str(unknown.value)


def test_sign_in_makes_a_token_and_ends_the_session(live: LiveServer) -> None:
    made = sign_in_token(live.url, "admin", ADMIN_PASSWORD, "laptop", expires_days=None)
    assert made.name == "laptop" and made.expires_at is None
    with Client(live.url, made.token) as c:
        assert c.me().username == "admin"
    with live.platform.db.read() as s:
        assert s.scalars(select(BrowserSession)).all() == []
    for _ in range(5):
        with pytest.raises(Unauthenticated, match="wrong user name or password"):
            sign_in_token(live.url, "admin", "wrong-password", "x")
    with pytest.raises(TooManyRequests) as limited:
        sign_in_token(live.url, "admin", ADMIN_PASSWORD, "x")
    assert limited.value.retry_after > 60 and "wait" in (limited.value.fix or "")


def _status_app() -> Starlette:
    """A server that answers whatever status it is asked for, with or without the JSON error body."""

    async def status(request: Request) -> Response:
        code = int(request.path_params["code"])
        if request.query_params.get("plain"):
            return PlainTextResponse("upstream broke", code)
        headers = {"Retry-After": "7"} if code == 429 else None
        return JSONResponse({"error": f"problem {code}", "fix": f"fix {code}"}, code, headers=headers)

    async def slow(request: Request) -> Response:
        await asyncio.sleep(3)
        return JSONResponse({})

    async def odd(request: Request) -> Response:
        return JSONResponse({"id": "not a number"})

    return Starlette(routes=[Route("/api/v1/status/{code}", status), Route("/api/v1/slow", slow),
                             Route("/api/v1/auth/me", odd)])


@pytest.mark.parametrize(("code", "kind"), [(400, Invalid), (401, Unauthenticated), (403, Denied), (404, NotFound),
                                            (409, Conflict), (413, Invalid), (422, Invalid), (418, EOError),
                                            (429, TooManyRequests), (500, Unavailable), (503, Unavailable)])
def test_each_status_is_its_kind(code: int, kind: type[EOError]) -> None:
    url, server = serve_in_thread(_status_app())
    try:
        with Client(url, "eoe_x") as c:
            with pytest.raises(kind) as raised:
                c.http.request("GET", f"/status/{code}")
            assert type(raised.value) is kind and raised.value.problem.endswith(f"problem {code}")
            assert raised.value.fix == f"fix {code}"
            if code >= 500:
                assert url in raised.value.problem
            if code == 429:
                assert isinstance(raised.value, TooManyRequests) and raised.value.retry_after == 7
            with pytest.raises(kind) as plain:
                c.http.request("GET", f"/status/{code}", params={"plain": 1})
            assert f"answered {code}" in plain.value.problem and plain.value.problem.endswith(": upstream broke")
            assert type(plain.value) is kind and plain.value.fix
    finally:
        server.should_exit = True


def test_unreachable_slow_and_odd_servers_are_unavailable() -> None:
    port = free_port()
    with Client(f"http://127.0.0.1:{port}", "eoe_secret-token") as c, pytest.raises(Unavailable) as refused:
        c.projects()
    assert f"cannot reach http://127.0.0.1:{port}" in refused.value.problem
    assert "server run" in (refused.value.fix or "")
    assert "eoe_secret-token" not in str(refused.value)
    url, server = serve_in_thread(_status_app())
    try:
        with Client(url, "eoe_x", timeout=0.5) as c:
            with pytest.raises(Unavailable, match="did not answer in time"):
                c.http.request("GET", "/slow")
            with pytest.raises(EOError, match="does not understand"):
                c.me()
    finally:
        server.should_exit = True


@pytest.mark.parametrize("url", ["ftp://host/", "not a url", "http://", ""])
def test_bad_urls_are_invalid(url: str) -> None:
    with pytest.raises(Invalid, match="not a server URL"):
        Client(url, "eoe_x")


def test_urls_and_tokens_are_normalised() -> None:
    assert server_url(" http://127.0.0.1:8000/api/v1/ ") == "http://127.0.0.1:8000"
    assert server_url("https://eo.example.org/team") == "https://eo.example.org/team"
    with pytest.raises(Invalid, match="blanks") as bad:
        Client("http://127.0.0.1:1", "eoe_abc def")
    assert "eoe_abc" not in str(bad.value)
    assert "eoe_" not in repr(Client("http://127.0.0.1:1", " eoe_secret\n"))


def test_events_by_project_and_object(live: LiveServer, admin: Client) -> None:
    admin.create_project("NC", template="nc-landsat")
    live.user("vera")
    admin.add_member("nc", "vera", "viewer")
    events = admin.events(project="nc")
    assert [(e.action, e.actor, e.project, e.object_type, e.object_id) for e in events] == [
        ("project.create", "admin", "nc", "project", "nc"), ("member.add", "admin", "nc", "project", "nc")]
    assert events[1].data == {"username": "vera", "role": "viewer"} and len(events[1].payload_hash) == 64
    assert [e.id for e in admin.events(object="project:nc", after=events[0].id)] == [events[1].id]
    assert [e.action for e in admin.events(limit=1)] == ["user.create"]  # oldest first: the first admin
    with pytest.raises(Invalid, match="is not TYPE:ID"):
        admin.events(object="nc")
    with pytest.raises(NotFound, match="no project"):
        admin.events(project="missing")


def test_lineage_of_an_unknown_object(admin: Client) -> None:
    admin.create_project("NC", template="nc-landsat")
    with pytest.raises(NotFound, match="in no lineage"):
        admin.lineage("nc", "dataset:nc@0000")
    with pytest.raises(Invalid, match="is not TYPE:ID"):
        admin.lineage("nc", "nc")


def _stream_app(offsets: list[int]) -> Starlette:
    """A job whose log stream closes after each line (as a proxy's timeout would), until the last one says ``end``."""
    lines = ["first line", "second line", "third line"]
    job = {"id": 1, "project": "p", "kind": "build", "spec": {}, "state": "running", "cancel_requested": False,
           "progress": None, "result": None, "error": None, "created_by": "admin", "created_at": "2026-01-01T00:00:00",
           "started_at": None, "finished_at": None, "attempts": 1, "worker": None}

    async def stream(request: Request) -> Response:
        offset = int(request.query_params.get("offset", "0"))
        offsets.append(offset)
        ends = [sum(len(x) + 1 for x in lines[: i + 1]) for i in range(len(lines))]
        i = ends.index(offset) + 1 if offset else 0
        body = f"id: {ends[i]}\nevent: log\ndata: {lines[i]}\n\n"
        if i == len(lines) - 1:
            body += 'event: state\ndata: {"state": "succeeded", "attempts": 1}\n\nevent: end\ndata: succeeded\n\n'
        return Response(body, media_type="text/event-stream")

    async def show(request: Request) -> Response:
        return JSONResponse(job)

    return Starlette(routes=[Route("/api/v1/jobs/1/log/stream", stream), Route("/api/v1/jobs/1", show)])


def test_a_log_stream_closed_early_is_opened_again_from_the_last_line() -> None:
    offsets: list[int] = []
    url, server = serve_in_thread(_stream_app(offsets))
    try:
        with Client(url, "eoe_x") as c:
            job = c.job(1)
            assert job.state == "running"
            assert list(job.logs(follow=True)) == ["first line", "second line", "third line"]
            assert job.state == "succeeded"  # from the stream's state event
    finally:
        server.should_exit = True
    assert offsets == [0, 11, 23]
