"""The platform's core over real HTTP: sign-in, tokens, users, projects from a config or a sample, members, roles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from platform_server import ADMIN_PASSWORD, LiveServer, live_platform
from sqlalchemy import select

from eoengine.platform.db.models import ApiToken, BrowserSession, Event, User


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    with live_platform(tmp_path / "home") as server:
        yield server


def _error(r: httpx.Response, status: int) -> dict[str, str]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) >= {"error", "fix"} and body["error"] and body["fix"]
    return body


def test_secrets_are_stored_hashed(live: LiveServer) -> None:
    with live.platform.db.read() as s:
        admin = s.scalar(select(User).where(User.username == "admin"))
        tokens = s.scalars(select(ApiToken)).all()
    assert admin is not None and admin.password_hash.startswith("$argon2id$") and ADMIN_PASSWORD not in admin.password_hash
    assert [t.token_hash for t in tokens] != [live.admin.token] and len(tokens[0].token_hash) == 64
    assert live.admin.token.startswith("eoe_") and tokens[0].prefix == live.admin.token[:8]


def test_production_password_hashes_keep_their_cost() -> None:
    """The tests' servers hash at argon2id's least cost (platform_fixtures); the platform's own hasher does not."""
    import platform_fixtures
    from argon2 import PasswordHasher, Type

    hasher = platform_fixtures.PRODUCTION_HASHER
    assert isinstance(hasher, PasswordHasher) and hasher.type is Type.ID
    default = PasswordHasher()  # argon2-cffi's RFC 9106 low-memory profile
    assert (hasher.time_cost, hasher.memory_cost, hasher.parallelism) == (default.time_cost, default.memory_cost,
                                                                          default.parallelism)
    assert (hasher.time_cost, hasher.memory_cost) >= (3, 65536)
    assert hasher.hash("a password of someone").startswith(f"$argon2id$v=19$m={hasher.memory_cost},t={hasher.time_cost},")


def test_browser_session_needs_csrf_for_changes(live: LiveServer) -> None:
    with httpx.Client(base_url=f"{live.url}/api/v1") as web:
        r = web.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        assert r.status_code == 200
        cookie = r.headers.get_list("set-cookie")
        assert any("eoengine_session=" in c and "HttpOnly" in c and "SameSite=strict" in c for c in cookie)
        csrf = r.json()["csrf_token"]
        assert web.get("/auth/me").json()["username"] == "admin"
        _error(web.post("/tokens", json={"name": "x"}), 403)
        assert web.post("/tokens", json={"name": "x"}, headers={"X-CSRF-Token": csrf}).status_code == 201
        assert web.post("/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
        _error(web.get("/auth/me"), 401)
    with live.platform.db.read() as s:
        assert s.scalars(select(BrowserSession)).all() == []


def test_failed_logins_are_rate_limited(live: LiveServer) -> None:
    with httpx.Client(base_url=f"{live.url}/api/v1") as web:
        for _ in range(5):
            _error(web.post("/auth/login", json={"username": "admin", "password": "wrong-password"}), 401)
        r = web.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        body = _error(r, 429)
        assert int(r.headers["retry-after"]) > 0 and "wait" in body["fix"]


def test_tokens_are_shown_once_and_revocable(live: LiveServer) -> None:
    with live.client() as c:
        made = c.post("/tokens", json={"name": "ci", "expires_days": 1}).json()
        listed = c.get("/tokens").json()
        assert all("token" not in t for t in listed) and {t["name"] for t in listed} == {"server init", "ci"}
        with live.client(made["token"]) as other:
            assert other.get("/auth/me").status_code == 200
            assert c.delete(f"/tokens/{made['id']}").status_code == 204
            assert "revoked" in _error(other.get("/auth/me"), 401)["error"]
    _error(httpx.get(f"{live.url}/api/v1/projects", headers={"Authorization": "Bearer eoe_nope"}), 401)
    _error(httpx.get(f"{live.url}/api/v1/projects"), 401)


def test_project_from_sample_and_roles(live: LiveServer) -> None:
    viewer = live.user("vera")
    with live.client() as c:
        r = c.post("/projects", json={"name": "NC landcover", "template": "nc-landsat"})
        assert r.status_code == 201, r.text
        assert r.json()["slug"] == "nc-landcover" and r.json()["role"] == "admin"
        overview = c.get("/projects/nc-landcover").json()
        assert "name: nc-landcover" in overview["config"] and "output_dir: out" in overview["config"]
        [scene] = overview["footprints"]["features"]
        lon, lat = scene["geometry"]["coordinates"][0][0]
        assert -80 < lon < -78 and 35 < lat < 36.5  # Raleigh, North Carolina
        with live.client(viewer) as v:
            _error(v.get("/projects/nc-landcover"), 404)  # not a member: not revealed
            assert c.post("/projects/nc-landcover/members", json={"username": "vera", "role": "viewer"}).status_code == 201
            assert v.get("/projects/nc-landcover").status_code == 200
            assert [p["slug"] for p in v.get("/projects").json()] == ["nc-landcover"]
            body = _error(v.put("/projects/nc-landcover/config", json={"config": overview["config"]}), 403)
            assert "admin" in body["fix"]
        _error(c.delete("/projects/nc-landcover/members/admin"), 422)  # the last admin stays
    assert (live.platform.settings.projects_dir / "nc-landcover" / "data" / "strata.tif").exists()
    with live.platform.db.read() as s:
        actions = [e.action for e in s.scalars(select(Event).order_by(Event.id))]
    assert actions[-2:] == ["project.create", "member.add"]


def test_bad_configs_get_the_cli_messages(live: LiveServer) -> None:
    with live.client() as c:
        body = _error(c.post("/projects", json={"name": "bad", "config": "name: x\nimagery: {bands: []}\n"}), 422)
        assert "eoengine.yaml" in body["error"] and "imagery" in body["error"]
        _error(c.post("/projects", json={"name": "bad", "config": "name: [unclosed"}), 422)
        outside = "name: t\noutput_dir: ../../elsewhere\n"
        text = (live.platform.settings.examples / "nc_landsat7_landclass96" / "eoengine.yaml").read_text()  # type: ignore[operator]
        body = _error(c.post("/projects", json={"name": "esc", "config": text.replace("../../out/demo", "/etc")}), 422)
        assert "outside the project folder" in body["error"]
        _error(c.post("/projects", json={"name": "x", "template": "nope"}), 404)
        _error(c.post("/projects", json={"name": "x"}), 422)
        _error(c.post("/projects", json={"name": "!!!", "template": "nc-landsat"}), 422)
        assert outside  # a config that only escapes by output_dir fails as well
        _error(c.post("/projects", json={"name": "esc2", "config": text.replace("../../out/demo", "../../x")}), 422)
    assert sorted(p.name for p in live.platform.settings.projects_dir.iterdir()) == []  # nothing half-written


def test_errors_are_json_everywhere(live: LiveServer) -> None:
    with live.client() as c:
        _error(c.get("/no/such/route"), 404)
        _error(c.post("/projects", content=b"{not json", headers={"content-type": "application/json"}), 422)
        _error(c.post("/projects", content=b"x" * (5 * 2**20), headers={"content-type": "application/json"}), 413)
        _error(c.get("/projects/missing"), 404)


def test_events_log_who_did_what(live: LiveServer) -> None:
    other = live.user("olga")
    with live.client() as c:
        assert c.post("/projects", json={"name": "NC", "template": "nc-landsat"}).status_code == 201
        c.post("/projects/nc/members", json={"username": "olga", "role": "viewer"})
        c.patch("/projects/nc/members/olga", json={"role": "reviewer"})
        events = c.get("/events", params={"object": "project:nc"}).json()
        assert [e["action"] for e in events] == ["project.create", "member.add", "member.role"]
        assert events[2]["actor"] == "admin" and events[2]["data"] == {"username": "olga", "from": "viewer", "to": "reviewer"}
        assert all(len(e["payload_hash"]) == 64 for e in events)
        _error(c.get("/events", params={"object": "nocolon"}), 422)
    with live.client(other) as o, live.client() as c:
        seen = {e["action"] for e in o.get("/events").json()}
        assert "project.create" in seen and "user.create" not in seen  # not the admin's own user events
        assert c.post("/projects", json={"name": "Private", "template": "nc-landsat"}).status_code == 201
        _error(o.get("/events", params={"project": "private"}), 404)
        assert all(e["project"] != "private" for e in o.get("/events").json())


def test_lineage_walks_inputs_both_ways(live: LiveServer) -> None:
    from eoengine.platform.events import record

    with live.client() as c:
        assert c.post("/projects", json={"name": "L", "template": "nc-landsat"}).status_code == 201
        pid = c.get("/projects/l").json()["id"]
        with live.platform.db.write() as s:
            record(s, "dataset.version", "dataset", "d@1", actor_id=None, project_id=pid,
                   data={"inputs": ["scene:s1", "labels:data/strata.tif"]})
            record(s, "run.create", "run", "r1", actor_id=None, project_id=pid, data={"inputs": ["dataset:d@1"]})
            record(s, "map.create", "map", "out/m.tif", actor_id=None, project_id=pid, data={"inputs": ["run:r1"]})
            record(s, "dataset.version", "dataset", "other@2", actor_id=None, project_id=pid, data={"inputs": ["scene:s2"]})
        graph = c.get("/projects/l/lineage", params={"object": "run:r1"}).json()
        assert {f"{n['type']}:{n['id']}" for n in graph["nodes"]} == {"scene:s1", "labels:data/strata.tif", "dataset:d@1",
                                                                        "run:r1", "map:out/m.tif"}
        assert {(e["source"], e["target"]) for e in graph["edges"]} == {
            ("scene:s1", "dataset:d@1"), ("labels:data/strata.tif", "dataset:d@1"), ("dataset:d@1", "run:r1"),
            ("run:r1", "map:out/m.tif")}
        with live.platform.db.write() as s:
            record(s, "dataset.version", "dataset", "nc@4d47e74fa4e737ec", actor_id=None, project_id=pid,
                   data={"inputs": ["scene:s3"]})
        short = c.get("/projects/l/lineage", params={"object": "dataset:nc@4d47e74fa4e7"}).json()
        assert short["object"] == "dataset:nc@4d47e74fa4e737ec" and len(short["nodes"]) == 2
        _error(c.get("/projects/l/lineage", params={"object": "dataset:nc@4d47"}), 404)  # prefixes from 6 characters
        _error(c.get("/projects/l/lineage", params={"object": "run:nope"}), 404)
        _error(c.get("/projects/l/lineage", params={"object": "bad"}), 422)


def test_reads_wait_for_no_writer(live: LiveServer) -> None:
    # GETs on SQLite used to begin IMMEDIATE transactions: a read (the overview) waited for any writer's lock,
    # seconds in a busy server. Reads now begin DEFERRED, and a token's last use is its own short write.
    import sqlite3

    if live.platform.db.dialect != "sqlite":
        pytest.skip("SQLite's locking")
    with live.client() as c:
        assert c.post("/projects", json={"name": "Busy", "template": "nc-landsat"}).status_code == 201
        path = live.platform.settings.home / "eoengine.db"
        writer = sqlite3.connect(path, isolation_level=None, timeout=30)
        writer.execute("BEGIN IMMEDIATE")  # another process writing (a worker recording progress, say)
        try:
            with live.client() as quick:
                quick.timeout = httpx.Timeout(3.0)
                assert quick.get("/projects/busy").status_code == 200
                assert quick.get("/projects/busy/members").json() == [{"username": "admin", "role": "admin"}]
        finally:
            writer.execute("ROLLBACK")
            writer.close()
        with live.platform.db.read() as s:
            used = s.scalar(select(ApiToken.last_used_at).where(ApiToken.prefix == live.admin.token[:8]))
        assert used is not None  # the token's last use is still recorded
