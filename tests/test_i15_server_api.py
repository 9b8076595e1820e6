"""Subscriptions on a live server: create (checked in the project), list, roles, states, run now (issue 15).

One server per database (SQLite, PostgreSQL) with the tiny project, a model package in its folder,
and that package registered in the project's own MLflow registry as ``landcover@champion``.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import saved_package
from jobs_support import make_project
from platform_server import LiveServer, live_platform
from sqlalchemy import select

from eoengine.platform.db.models import Event, Job

AREA = {"type": "Polygon", "coordinates": [[[-90.0, 15.0], [-89.9, 15.0], [-89.9, 15.1], [-90.0, 15.1], [-90.0, 15.0]]]}
BOWTIE = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
SECRET = "a-webhook-secret-of-the-tests"


@dataclass
class World:
    """The server, its project's slug and a token per role."""

    live: LiveServer
    slug: str
    tokens: dict[str, str]

    def client(self, who: str = "admin") -> httpx.Client:
        """A client as ``who`` (admin: the site admin)."""
        return self.live.client(None if who == "admin" else self.tokens[who])

    def base(self) -> str:
        """The subscriptions' path of the project."""
        return f"/projects/{self.slug}/subscriptions"


def _register(folder: Path) -> None:
    """Register the package folder of the project as landcover (version 1, alias champion) in its own store."""
    from eoengine.config.load import load_config
    from eoengine.deploy.registry import load_model_ref, move_alias, register
    from eoengine.tracking.store import tracking_uri

    cfg = load_config(folder / "eoengine.yaml")
    uri = tracking_uri(cfg.output_path, cfg.training.tracking_uri, None)
    made = register(load_model_ref(str(folder / "pkg"), uri), "landcover", uri)
    move_alias(uri, "landcover", "champion", made.version)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, module_db: str) -> Iterator[World]:
    home = tmp_path_factory.mktemp("subs-api") / "home"
    with live_platform(home, db_url=module_db) as live:
        folder = make_project(live, "subs")
        shutil.copytree(saved_package(home.parent / "pkg"), folder / "pkg")
        _register(folder)
        tokens = {}
        for role in ("viewer", "reviewer", "reviewer2", "project_admin"):
            tokens[role] = live.user(f"{role}-user")
            with live.client() as c:
                r = c.post("/projects/subs/members", json={"username": f"{role}-user",
                                                           "role": {"reviewer2": "reviewer", "project_admin": "admin"}
                                                           .get(role, role)})
                assert r.status_code == 201, r.text
        tokens["outsider"] = live.user("outsider-user")
        yield World(live, "subs", tokens)


def spec(name: str, **overrides: Any) -> dict[str, Any]:
    """A valid spec of the project: its area, the champion model, weekly, started a week ago."""
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(days=7)).replace(microsecond=0)
    return {"name": name, "area": AREA, "model": "models:/landcover@champion", "cadence": "weekly",
            "start": start.isoformat(), "webhooks": [{"url": "http://127.0.0.1:9/hook", "secret": SECRET}]} | overrides


def _create(w: World, body: dict[str, Any], who: str = "reviewer") -> httpx.Response:
    with w.client(who) as c:
        return c.post(w.base(), json={"spec": body})


def _error(r: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert set(body) >= {"error", "fix"} and body["fix"], body
    for word in words:
        assert word in body["error"], (word, body)
    return body


def test_create_list_and_show(world: World) -> None:
    r = _create(world, spec("weekly-watch"))
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["state"] == "active" and made["project"] == "subs" and made["created_by"] == "reviewer-user"
    assert made["spec"]["source"] == "project" and made["spec"]["cadence"] == "weekly"
    assert made["spec"]["webhooks"][0]["secret"] == "********" and SECRET not in r.text
    due = dt.datetime.fromisoformat(made["next_due"])
    assert due.weekday() == 0 and (due.hour, due.minute) == (0, 0) and due > dt.datetime.now(dt.UTC)  # next Monday
    assert made["runs"] == 0 and made["active_job"] is None and made["failures"] == 0
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).replace(hour=0, minute=0, second=0, microsecond=0).isoformat()
    pending = _create(world, spec("later", start=later, cadence="0 6 * * *", webhooks=[]))
    assert pending.status_code == 201 and pending.json()["state"] == "pending", pending.text
    assert pending.json()["next_due"].startswith(later[:10]) and "T06:00:00" in pending.json()["next_due"]
    with world.client("viewer") as c:
        listed = c.get(world.base()).json()
        assert {s["name"] for s in listed} >= {"weekly-watch", "later"}
        only = c.get(world.base(), params={"state": "pending"}).json()
        assert [s["name"] for s in only] == ["later"]
        assert c.get(f"{world.base()}/{made['id']}").json()["name"] == "weekly-watch"
        _error(c.get(f"{world.base()}/999999"), 404, "no subscription 999999")
        assert c.get(world.base(), params={"state": "asleep"}).status_code == 422
    _error(_create(world, spec("weekly-watch")), 409, "weekly-watch")
    with world.live.platform.db.read() as s:
        events = s.scalars(select(Event).where(Event.action == "subscription.create")).all()
        assert events and all(SECRET not in str(e.data) for e in events)


def test_backfill_is_due_at_once(world: World) -> None:
    made = _create(world, spec("backfill", backfill=True, webhooks=[])).json()
    assert dt.datetime.fromisoformat(made["next_due"]) <= dt.datetime.now(dt.UTC)


@pytest.mark.parametrize(("overrides", "words"), [
    ({"area": BOWTIE}, ("area", "not valid", "Self-intersection")),
    ({"area": {"type": "Polygon", "coordinates": [[[-100, 10], [-80, 10], [-80, 30], [-100, 30], [-100, 10]]]}},
     ("area", "larger than")),
    ({"area": {"type": "Point", "coordinates": [0, 0]}}, ("area", "Point")),
    ({"cadence": "every tuesday"}, ("cadence",)),
    ({"model": "models:/nosuch@champion"}, ("models:/nosuch@champion", "registry")),
    ({"model": "models:/landcover@nosuchalias"}, ("models:/landcover@nosuchalias",)),
    ({"model": "models:/landcover/7"}, ("models:/landcover/7",)),
    ({"model": "runs:/0123456789abcdef0123456789abcdef"}, ("runs:/0123456789abcdef0123456789abcdef",)),
    ({"model": "../../elsewhere"}, ("model", "outside the project")),
    ({"model": "data"}, ("model", "not a model package")),
    ({"source": "/etc"}, ("source", "outside the project")),
    ({"source": "data"}, ("source", "no STAC catalog")),
    ({"end": "2000-01-01T00:00:00Z"}, ("ends",)),
    ({"webhooks": [{"url": "ftp://x", "secret": SECRET}]}, ("webhooks",)),
])
def test_bad_specs_are_refused_with_the_fix(world: World, overrides: dict[str, Any], words: tuple[str, ...]) -> None:
    _error(_create(world, spec("bad", **overrides)), 422, *words)
    with world.client() as c:
        assert all(s["name"] != "bad" for s in c.get(world.base()).json())


def test_a_body_that_is_not_a_spec(world: World) -> None:
    with world.client("reviewer") as c:
        _error(c.post(world.base(), json={"spec": ["a list"]}), 422, "dictionary")
        _error(c.post(world.base(), json={"spec": {"name": "x"}}), 422, "area", "model")
        many = {"spec": spec("many", area={"type": "Polygon", "coordinates": [[[0, 0]] * 20_000]})}
        _error(c.post(world.base(), json=many), 422, "20000 vertices")
        too_big = {"spec": spec("big", area={"type": "Polygon", "coordinates": [[[0, 0]] * 900_000]})}
        _error(c.post(world.base(), json=too_big), 413, "4 MB")


def test_roles(world: World) -> None:
    made = _create(world, spec("roles", webhooks=[])).json()
    one = f"{world.base()}/{made['id']}"
    with world.client("viewer") as c:
        assert c.get(one).status_code == 200 and c.get(f"{one}/runs").json() == []
        assert c.get(f"{one}/stats").json() == {"subscription": "roles", "series": []}
        assert c.get(f"{one}/results").json() == [] and c.get(f"{one}/deliveries").json() == []
        _error(c.get(f"{one}/stats", params={"format": "csv"}), 404, "no statistics yet")
        _error(c.post(world.base(), json={"spec": spec("by-viewer")}), 403, "viewer")
        for action in ("pause", "resume", "run", "cancel"):
            _error(c.post(f"{one}/{action}"), 403, "viewer")
    with world.client("outsider") as c:
        _error(c.get(world.base()), 404, "subs")
        _error(c.get(one), 404)
    with world.client("reviewer2") as c:
        _error(c.post(f"{one}/cancel"), 403, "may not cancel")
        assert c.post(f"{one}/pause").json()["state"] == "suspended"  # run role: any reviewer
        assert c.post(f"{one}/resume").json()["state"] == "active"
    with world.client("project_admin") as c:
        assert c.post(f"{one}/cancel").json()["state"] == "cancelled"
    own = _create(world, spec("own", webhooks=[])).json()
    with world.client("reviewer") as c:
        assert c.post(f"{world.base()}/{own['id']}/cancel").json()["state"] == "cancelled"


def test_state_machine(world: World) -> None:
    made = _create(world, spec("states", webhooks=[])).json()
    one = f"{world.base()}/{made['id']}"
    with world.client("reviewer") as c:
        _error(c.post(f"{one}/resume"), 409, "is active", "resumed")
        paused = c.post(f"{one}/pause").json()
        assert paused["state"] == "suspended" and paused["next_due"] == made["next_due"]
        body = _error(c.post(f"{one}/pause"), 409, "is suspended")
        assert "resume" in body["fix"] and "cancel" in body["fix"]
        _error(c.post(f"{one}/run"), 409, "suspended")
        assert c.post(f"{one}/resume").json()["state"] == "active"
        assert c.post(f"{one}/cancel").json()["state"] == "cancelled"
        body = _error(c.post(f"{one}/resume"), 409, "is cancelled")
        assert "create a new subscription" in body["fix"]
        _error(c.post(f"{one}/cancel"), 409, "is cancelled")
        _error(c.post(f"{one}/run"), 409, "cancelled")
    with world.live.platform.db.read() as s:
        actions = [e.action for e in s.scalars(select(Event).where(Event.object_type == "subscription",
                                                                    Event.object_id == str(made["id"])))]
    assert actions == ["subscription.create", "subscription.pause", "subscription.resume", "subscription.cancel"]


def test_run_now_queues_one_job(world: World) -> None:
    made = _create(world, spec("now", webhooks=[])).json()
    one = f"{world.base()}/{made['id']}"
    with world.client("reviewer") as c:
        r = c.post(f"{one}/run")
        assert r.status_code == 201, r.text
        job = r.json()
        assert job["kind"] == "subscription-run" and job["state"] == "queued" and job["created_by"] == "reviewer-user"
        assert job["spec"]["subscription"] == made["id"] and job["spec"]["trigger"] == "manual"
        _error(c.post(f"{one}/run"), 409, f"run job {job['id']} queued")
        assert c.get(one).json()["active_job"] == job["id"]
        assert c.post(f"/jobs/{job['id']}/cancel").json()["state"] == "cancelled"
        assert c.get(one).json()["active_job"] is None
        again = c.post(f"{one}/run")
        assert again.status_code == 201 and again.json()["id"] != job["id"]
        c.post(f"/jobs/{again.json()['id']}/cancel")
    with world.live.platform.db.read() as s:
        assert len([j for j in s.scalars(select(Job).where(Job.kind == "subscription-run"))
                    if j.spec["subscription"] == made["id"]]) == 2


def test_a_subscription_run_cannot_be_submitted_as_a_plain_job(world: World) -> None:
    with world.client("reviewer") as c:
        r = c.post(f"/projects/{world.slug}/jobs", json={"spec": {"kind": "subscription-run", "subscription": 1}})
    _error(r, 422, "subscription-run")
