"""Who may call what: every route of the platform API × every kind of caller, CSRF, and secrets kept secret.

``EXPECTED`` classifies each route (method + path template) by what it needs: ``public``,
``authenticated``, ``site_admin`` or a project action of :mod:`eoengine.platform.roles`. The
table and the app's routes must match, so a new route fails here until it is classified.
``CALLS`` says how to call a route so that its check is really reached (an existing project,
member, token, user; a valid body); a route not in ``CALLS`` is called with the shared
project's slug and no body.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import NC
from platform_server import (
    ADMIN_PASSWORD,
    API,
    EXAMPLES,
    LiveServer,
    LogCapture,
    api_routes,
    app_routes,
    browsable_project,
    capture_logs,
    live_platform,
    row_id_params,
)
from sqlalchemy import select
from starlette.routing import Mount

from eoengine.platform.db.models import ApiToken, User
from eoengine.platform.roles import LEAST_ROLE

CALLERS = ("anonymous", "outsider", "viewer", "annotator", "reviewer", "project_admin", "site_admin")
ROLE_OF = {"viewer": "viewer", "annotator": "annotator", "reviewer": "reviewer", "project_admin": "admin"}
ROLE_ORDER = ("viewer", "annotator", "reviewer", "admin")
LEAST = {"read": "viewer", "annotate": "annotator", "review": "reviewer", "run": "reviewer", "manage": "admin"}
"""The contract's least role per project action (checked against roles.py below)."""

EXPECTED: dict[str, str] = {
    "GET /api/v1/health": "public",
    "POST /api/v1/auth/login": "public",
    "POST /api/v1/auth/logout": "authenticated",
    "GET /api/v1/auth/me": "authenticated",
    "GET /api/v1/tokens": "authenticated",
    "POST /api/v1/tokens": "authenticated",
    "DELETE /api/v1/tokens/{token_id}": "authenticated",
    "GET /api/v1/users": "site_admin",
    "POST /api/v1/users": "site_admin",
    "PATCH /api/v1/users/{user_id}": "site_admin",
    "GET /api/v1/projects": "authenticated",
    "POST /api/v1/projects": "authenticated",
    "GET /api/v1/projects/{slug}": "read",
    "PUT /api/v1/projects/{slug}/config": "manage",
    "DELETE /api/v1/projects/{slug}": "manage",
    "GET /api/v1/projects/{slug}/members": "read",
    "POST /api/v1/projects/{slug}/members": "manage",
    "PATCH /api/v1/projects/{slug}/members/{username}": "manage",
    "DELETE /api/v1/projects/{slug}/members/{username}": "manage",
    "GET /api/v1/events": "authenticated",
    "GET /api/v1/projects/{slug}/lineage": "read",
    "POST /api/v1/projects/{slug}/jobs": "run",
    "GET /api/v1/projects/{slug}/jobs": "read",
    "GET /api/v1/jobs/{job_id}": "read",
    "POST /api/v1/jobs/{job_id}/cancel": "run",  # one's own job (reviewer+); anyone's needs manage (below)
    "GET /api/v1/jobs/{job_id}/log": "read",
    "GET /api/v1/jobs/{job_id}/log/stream": "read",  # of a finished job: the stream ends
    "GET /api/v1/projects/{slug}/datasets": "read",
    "GET /api/v1/projects/{slug}/datasets/{ref}": "read",
    "GET /api/v1/projects/{slug}/datasets/{ref}/archive": "read",
    "GET /api/v1/projects/{slug}/datasets/{ref}/chips/{chip}/labels.png": "read",
    "GET /api/v1/projects/{slug}/datasets/{ref}/chips/{chip}/preview.png": "read",
    "GET /api/v1/projects/{slug}/datasets/{ref}/files/{path:path}": "read",
    "HEAD /api/v1/projects/{slug}/datasets/{ref}/files/{path:path}": "read",
    "GET /api/v1/projects/{slug}/datasets/{ref}/footprints": "read",
    "GET /api/v1/projects/{slug}/datasets/{ref}/leakage": "read",
    "GET /api/v1/projects/{slug}/datasets/{ref}/stac": "read",
    "GET /api/v1/projects/{slug}/imagery": "read",
    "GET /api/v1/projects/{slug}/imagery/{item}/tiles/{z}/{x}/{y}.png": "read",
    "GET /api/v1/projects/{slug}/imagery/{item}/pixel": "read",
    "GET /api/v1/projects/{slug}/imagery/series": "read",
    "GET /api/v1/projects/{slug}/maps": "read",
    "GET /api/v1/projects/{slug}/maps/{map_id}": "read",
    "GET /api/v1/projects/{slug}/maps/{map_id}/tiles/{z}/{x}/{y}.png": "read",
    "GET /api/v1/projects/{slug}/maps/{map_id}/areas": "read",
    "GET /api/v1/projects/{slug}/maps/{map_id}/download": "read",
    "GET /api/v1/projects/{slug}/maps/{map_id}/polygons": "read",
    "GET /api/v1/projects/{slug}/models": "read",
    "GET /api/v1/projects/{slug}/models/{name}": "read",
    "POST /api/v1/projects/{slug}/models": "review",
    "PUT /api/v1/projects/{slug}/models/{name}/aliases/{alias}": "review",
    "DELETE /api/v1/projects/{slug}/models/{name}/aliases/{alias}": "review",
    "GET /api/v1/projects/{slug}/runs": "read",
    "GET /api/v1/projects/{slug}/catalog": "read",
    "GET /api/v1/projects/{slug}/runs/compare": "read",
    "GET /api/v1/projects/{slug}/runs/{run_id}": "read",
    "GET /api/v1/projects/{slug}/uploads": "read",
    "POST /api/v1/projects/{slug}/uploads": "run",
}
MOUNTS: dict[str, str] = {"/api/v1/projects/{slug}/stac": "read"}
"""Sub-applications under /api/v1 (they check the caller themselves) and what they need."""
MOUNT_CALLS = {"/api/v1/projects/{slug}/stac": ("GET", "/search")}
RED = NC / "data" / "lsat7_2000_30.tif"
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")
CSRF_EXEMPT = {"POST /api/v1/auth/login"}  # signs in: there is no session yet whose changes a forged request could make


@dataclass
class Call:
    """How to call a route: its path parameters, query, JSON body, and the answers that mean "allowed"."""

    params: dict[str, Any] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    files: dict[str, Any] | None = None
    data: dict[str, Any] | None = None
    ok: tuple[int, ...] = (200, 201, 204)


@dataclass
class World:
    """The shared server: one project with a member of every role, their tokens and passwords."""

    live: LiveServer
    slug: str
    tokens: dict[str, str]
    passwords: dict[str, str]
    usernames: dict[str, str]
    objects: dict[str, Any] = field(default_factory=dict)
    lineage: str = ""
    secrets: set[str] = field(default_factory=set)
    counter: Iterator[int] = field(default_factory=itertools.count)

    def unique(self, stem: str) -> str:
        """A fresh name."""
        return f"{stem}{next(self.counter)}"

    def as_admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request as the site admin that must succeed."""
        with self.live.client() as c:
            r = c.request(method, path, **kwargs)
        assert r.status_code < 300, r.text
        return r

    def new_user(self) -> tuple[str, int]:
        """A fresh user (name, id)."""
        body = self.as_admin("POST", "/users", json={"username": self.unique("u"), "password": "password-fresh"}).json()
        return body["username"], body["id"]

    def new_project(self) -> str:
        """A fresh project made by the project admin, with the shared project's members and roles."""
        with self.live.client(self.tokens["project_admin"]) as c:
            r = c.post("/projects", json={"name": self.unique("fresh-"), "template": "nc-landsat"})
            assert r.status_code == 201, r.text
            slug = r.json()["slug"]
            for caller, role in ROLE_OF.items():
                if role != "admin":
                    add = c.post(f"/projects/{slug}/members", json={"username": self.usernames[caller], "role": role})
                    assert add.status_code == 201, add.text
        return slug

    def new_member(self) -> str:
        """A fresh viewer of the shared project (their user name)."""
        username, _ = self.new_user()
        with self.live.client(self.tokens["project_admin"]) as c:
            assert c.post(f"/projects/{self.slug}/members", json={"username": username, "role": "viewer"}).status_code == 201
        return username

    def new_job(self, caller: str) -> int:
        """A queued build job of the shared project, submitted by ``caller`` (no worker runs it)."""
        with self.live.client(self.tokens[caller]) as c:
            r = c.post(f"/projects/{self.slug}/jobs", json={"spec": {"kind": "build"}})
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    def token_id_of(self, caller: str) -> int:
        """The id of a fresh token of ``caller`` (of the site admin for the anonymous caller)."""
        token = self.tokens.get(caller) or self.live.admin.token
        with self.live.client(token) as c:
            r = c.post("/tokens", json={"name": "to-revoke"})
        assert r.status_code == 201, r.text
        return int(r.json()["id"])


def _alias_set(w: World) -> str:
    """A fresh alias of the shared project's model, set by the site admin (so removing it can succeed)."""
    alias = w.unique("gone-")
    w.as_admin("PUT", f"/projects/{w.slug}/models/{w.objects['name']}/aliases/{alias}", json={"version": 1})
    return alias


def _config(w: World, caller: str) -> Call:
    with w.live.client() as c:
        text = c.get(f"/projects/{w.slug}").json()["config"]
    return Call(json={"config": text})


CALLS: dict[str, Callable[[World, str], Call]] = {
    "POST /api/v1/auth/login": lambda w, c: Call(json={"username": w.usernames["outsider"],
                                                       "password": w.passwords["outsider"]}),
    "POST /api/v1/tokens": lambda w, c: Call(json={"name": "matrix", "expires_days": 1}),
    "DELETE /api/v1/tokens/{token_id}": lambda w, c: Call({"token_id": w.token_id_of(c)}),
    "POST /api/v1/users": lambda w, c: Call(json={"username": w.unique("made"), "password": "password-made"}),
    "PATCH /api/v1/users/{user_id}": lambda w, c: Call({"user_id": w.new_user()[1]}, json={"disabled": False}),
    "POST /api/v1/projects": lambda w, c: Call(json={"name": w.unique("made-"), "template": "nc-landsat"}),
    "PUT /api/v1/projects/{slug}/config": _config,
    "DELETE /api/v1/projects/{slug}": lambda w, c: Call({"slug": w.new_project()}),
    "POST /api/v1/projects/{slug}/members": lambda w, c: Call(json={"username": w.new_user()[0], "role": "viewer"}),
    "PATCH /api/v1/projects/{slug}/members/{username}": lambda w, c: Call({"username": w.new_member()},
                                                                           json={"role": "annotator"}),
    "DELETE /api/v1/projects/{slug}/members/{username}": lambda w, c: Call({"username": w.new_member()}),
    "GET /api/v1/projects/{slug}/lineage": lambda w, c: Call(query={"object": w.lineage}),
    "POST /api/v1/projects/{slug}/jobs": lambda w, c: Call(json={"spec": {"kind": "build"}}),
    "POST /api/v1/jobs/{job_id}/cancel": lambda w, c: Call({"job_id": w.new_job("reviewer")}),
    "GET /api/v1/projects/{slug}/runs/compare": lambda w, c: Call(query={"ids": ",".join(w.objects["runs"])}),
    # the shared project's runs hold no model package: past the role check, registering one is a 422
    "POST /api/v1/projects/{slug}/models": lambda w, c: Call(json={"run_id": w.objects["run_id"], "name": "matrix"},
                                                            ok=(201, 422)),
    "PUT /api/v1/projects/{slug}/models/{name}/aliases/{alias}": lambda w, c: Call({"alias": "matrix"},
                                                                                  json={"version": 1}),
    "DELETE /api/v1/projects/{slug}/models/{name}/aliases/{alias}": lambda w, c: Call({"alias": _alias_set(w)}),
    # the shared project's map holds values: past the role check, its class areas and polygons are a 422
    "GET /api/v1/projects/{slug}/maps/{map_id}/areas": lambda w, c: Call(ok=(422,)),
    "GET /api/v1/projects/{slug}/maps/{map_id}/polygons": lambda w, c: Call(ok=(422,)),
    "POST /api/v1/projects/{slug}/uploads": lambda w, c: Call(files={"file": (f"{w.unique('red')}.tif", RED.read_bytes())},
                                                             data={"kind": "imagery"}),
}


# ---------------------------------------------------------------- annotation (issue 13)

ANNOTATION = "/api/v1/projects/{slug}/annotation"
EXPECTED |= {f"{route.split()[0]} {ANNOTATION}{route.split()[1]}": action for route, action in {
    "POST /sets": "review", "GET /sets": "read", "GET /sets/{set_id}": "read", "GET /sets/{set_id}/tasks": "read",
    "POST /sets/{set_id}/next": "annotate", "POST /tasks/{task_id}/assign": "review", "GET /tasks/{task_id}": "read",
    "GET /tasks/{task_id}/history": "read", "GET /tasks/{task_id}/features": "read",
    "POST /tasks/{task_id}/features": "annotate", "PUT /features/{fid}": "annotate", "DELETE /features/{fid}": "annotate",
    "POST /tasks/{task_id}/submit": "annotate", "POST /tasks/{task_id}/review": "review",
    "POST /tasks/{task_id}/comments": "annotate", "GET /sets/{set_id}/export": "read",
    "POST /sets/{set_id}/snapshots": "review", "GET /sets/{set_id}/snapshots": "read",
    "POST /sets/{set_id}/snapshots/{digest}/build": "review", "POST /sets/{set_id}/import": "annotate",
    "POST /tasks/{task_id}/prelabel": "annotate", "POST /sets/{set_id}/rank": "review",
    "POST /features/{fid}/accept": "annotate",
    "POST /tasks/{task_id}/gold": "review", "POST /sets/{set_id}/double": "review", "GET /sets/{set_id}/stats": "review",
    "GET /sets/{set_id}/stats/{username}": "annotate",
    "POST /comments/{comment_id}/resolve": "annotate", "GET /sets/{set_id}/snapshots/{digest}/download": "review"}.items()}
DRAWERS = ("annotator", "reviewer", "project_admin", "site_admin")
"""Callers who may annotate: each allowed call draws in a task of its own, assigned to its caller."""


def _set_id(w: World) -> int:
    """The shared project's annotation set (made once: 8 px blocks, 1024 tasks to hand out one per call)."""
    if "set_id" not in w.objects:
        made = w.as_admin("POST", f"/projects/{w.slug}/annotation/sets",
                          json={"name": "matrix", "items": [w.objects["item"]], "block_size": 8}).json()
        w.objects["set_id"] = made["id"]
        w.objects["_tasks"] = w.as_admin("GET", f"/projects/{w.slug}/annotation/sets/{made['id']}/tasks").json()["features"]
    return int(w.objects["set_id"])


def _task(w: World, caller: str | None) -> dict[str, Any]:
    """A fresh task, assigned to the caller if they may annotate (else to the annotator), and a point to draw in it."""
    _set_id(w)
    task = w.objects["_tasks"].pop()
    who = caller if caller in DRAWERS else "annotator"
    if caller is not None:
        w.as_admin("POST", f"/projects/{w.slug}/annotation/tasks/{task['id']}/assign", json={"user": w.usernames[who]})
    centre = [sum(v) / len(v) for v in zip(*task["geometry"]["coordinates"][0][:-1], strict=True)]
    return {"id": task["id"], "who": who,
            "feature": {"type": "Feature", "geometry": {"type": "Point", "coordinates": centre}, "properties": {"label": 1}}}


def _drawn(w: World, caller: str) -> dict[str, Any]:
    """A fresh task with one feature in it, drawn by the caller (or the annotator): the feature's id and body."""
    task = _task(w, caller)
    with w.live.client(w.tokens[task["who"]]) as c:
        r = c.post(f"/projects/{w.slug}/annotation/tasks/{task['id']}/features", json=task["feature"])
    assert r.status_code == 201, r.text
    return {"fid": r.json()["id"], "feature": task["feature"] | {"properties": {"label": 1, "version": 1}}}


def _submitted(w: World) -> int:
    task = _task(w, "annotator")
    with w.live.client(w.tokens["annotator"]) as c:
        assert c.post(f"/projects/{w.slug}/annotation/tasks/{task['id']}/submit").status_code == 200
    return int(task["id"])


def _accepted(w: World) -> None:
    """One more accepted task (drawn and submitted by the annotator, accepted by the admin): a new snapshot's content."""
    task = _task(w, "annotator")
    with w.live.client(w.tokens["annotator"]) as c:
        assert c.post(f"/projects/{w.slug}/annotation/tasks/{task['id']}/features", json=task["feature"]).status_code == 201
        assert c.post(f"/projects/{w.slug}/annotation/tasks/{task['id']}/submit").status_code == 200
    w.as_admin("POST", f"/projects/{w.slug}/annotation/tasks/{task['id']}/review", json={"decision": "accept"})


def _snapshot(w: World) -> Call:
    """A snapshot of the set's accepted labels, to build a dataset from."""
    _accepted(w)
    made = w.as_admin("POST", f"/projects/{w.slug}/annotation/sets/{_set_id(w)}/snapshots").json()
    return Call({"set_id": _set_id(w), "digest": made["hash"]})


def _import(w: World, caller: str) -> Call:
    """A GeoJSON of one point inside a task assigned to the caller."""
    task = _task(w, caller)
    body = json.dumps({"type": "FeatureCollection", "features": [task["feature"]]}).encode()
    return Call({"set_id": _set_id(w)}, files={"file": ("labels.geojson", body)})


def _comment(w: World, caller: str) -> Call:
    """The admin's comment on a task of the caller's (or the annotator's), for them to resolve."""
    task = _task(w, caller)
    made = w.as_admin("POST", f"/projects/{w.slug}/annotation/tasks/{task['id']}/comments", json={"text": "see"}).json()
    return Call({"comment_id": made["id"]}, json={"resolved": True})


def _pixel(w: World) -> Call:
    """The middle of the shared item, for the pixel inspector."""
    items = w.as_admin("GET", f"/projects/{w.slug}/imagery").json()
    west, south, east, north = next(i["bbox"] for i in items if i["id"] == w.objects["item"])
    return Call(query={"lon": (west + east) / 2, "lat": (south + north) / 2})


def _with_drawn(w: World, caller: str, delete: bool) -> Call:
    drawn = _drawn(w, caller)
    return Call({"fid": drawn["fid"]}, query={"version": 1}) if delete else Call({"fid": drawn["fid"]}, json=drawn["feature"])


def _in_task(w: World, caller: str, json: Any = None) -> Call:
    task = _task(w, caller)
    return Call({"task_id": task["id"]}, json=task["feature"] if json is None else json)


def _suggested(w: World, caller: str) -> Call:
    """A model's suggestion in a task of the caller's (a drawn feature marked as one), to accept at version 1."""
    from eoengine.platform.db.models import LabelFeature

    drawn = _drawn(w, caller)
    with w.live.platform.db.write() as s:
        feature = s.get(LabelFeature, drawn["fid"])
        assert feature is not None
        feature.source, feature.suggestion = "model", True
    return Call({"fid": drawn["fid"]}, json={"version": 1})


ABSENT_MODEL = {"model": "absent@champion"}
"""The matrix project's registered model has no package; an allowed pre-label or rank reaches the model lookup: 404."""

CALLS |= {
    f"POST {ANNOTATION}/tasks/{{task_id}}/prelabel": lambda w, c: (lambda t: Call({"task_id": t["id"]}, json=ABSENT_MODEL,
                                                                                   ok=(404,)))(_task(w, c)),
    f"POST {ANNOTATION}/sets/{{set_id}}/rank": lambda w, c: Call({"set_id": _set_id(w)}, json=ABSENT_MODEL, ok=(404,)),
    f"POST {ANNOTATION}/features/{{fid}}/accept": lambda w, c: _suggested(w, c),
    f"POST {ANNOTATION}/sets": lambda w, c: Call(json={"name": w.unique("set-"), "items": [w.objects["item"]]}),
    f"GET {ANNOTATION}/sets/{{set_id}}": lambda w, c: Call({"set_id": _set_id(w)}),
    f"GET {ANNOTATION}/sets/{{set_id}}/tasks": lambda w, c: Call({"set_id": _set_id(w)}),
    f"POST {ANNOTATION}/sets/{{set_id}}/next": lambda w, c: Call({"set_id": _set_id(w)}),
    f"POST {ANNOTATION}/tasks/{{task_id}}/assign": lambda w, c: _in_task(w, None, {"user": w.usernames["annotator"]}),
    f"GET {ANNOTATION}/tasks/{{task_id}}": lambda w, c: _in_task(w, None),
    f"GET {ANNOTATION}/tasks/{{task_id}}/history": lambda w, c: _in_task(w, None),
    f"GET {ANNOTATION}/tasks/{{task_id}}/features": lambda w, c: _in_task(w, None),
    f"POST {ANNOTATION}/tasks/{{task_id}}/features": lambda w, c: _in_task(w, c),
    f"PUT {ANNOTATION}/features/{{fid}}": lambda w, c: _with_drawn(w, c, delete=False),
    f"DELETE {ANNOTATION}/features/{{fid}}": lambda w, c: _with_drawn(w, c, delete=True),
    f"POST {ANNOTATION}/tasks/{{task_id}}/submit": lambda w, c: _in_task(w, c, {}),
    f"POST {ANNOTATION}/tasks/{{task_id}}/review": lambda w, c: Call({"task_id": _submitted(w)}, json={"decision": "accept"}),
    f"POST {ANNOTATION}/tasks/{{task_id}}/comments": lambda w, c: _in_task(w, None, {"text": "look here"}),
    f"GET {ANNOTATION}/sets/{{set_id}}/export": lambda w, c: Call({"set_id": _set_id(w)},
                                                                   query={"format": "geojson", "state": "all"}),
    f"GET {ANNOTATION}/sets/{{set_id}}/snapshots": lambda w, c: Call({"set_id": _set_id(w)}),
    "GET /api/v1/projects/{slug}/imagery/{item}/pixel": lambda w, c: _pixel(w),
    "GET /api/v1/projects/{slug}/imagery/series": lambda w, c: _pixel(w),
    f"POST {ANNOTATION}/sets/{{set_id}}/snapshots": lambda w, c: (_accepted(w), Call({"set_id": _set_id(w)}))[1],
    f"POST {ANNOTATION}/sets/{{set_id}}/snapshots/{{digest}}/build": lambda w, c: _snapshot(w),
    f"POST {ANNOTATION}/sets/{{set_id}}/import": lambda w, c: _import(w, c),
    f"POST {ANNOTATION}/tasks/{{task_id}}/gold": lambda w, c: _gold(w),
    f"POST {ANNOTATION}/sets/{{set_id}}/double": lambda w, c: Call({"set_id": _set_id(w)}, json={"tasks": [_task(w, None)["id"]]}),
    f"GET {ANNOTATION}/sets/{{set_id}}/stats": lambda w, c: Call({"set_id": _set_id(w)}),
    # one's own statistics (an annotator may read theirs only; a reviewer anyone's)
    f"GET {ANNOTATION}/sets/{{set_id}}/stats/{{username}}": lambda w, c: Call(
        {"set_id": _set_id(w), "username": w.usernames.get(c, w.usernames["annotator"])}),
    f"POST {ANNOTATION}/comments/{{comment_id}}/resolve": lambda w, c: _comment(w, c),
    f"GET {ANNOTATION}/sets/{{set_id}}/snapshots/{{digest}}/download": lambda w, c: _snapshot(w),
}


def _gold(w: World) -> Call:
    """A freshly accepted task to mark gold (a copy for the annotator: its own annotator is the reviewer-less one)."""
    _accepted(w)
    accepted = [t for t in w.as_admin("GET", f"/projects/{w.slug}/annotation/sets/{_set_id(w)}/tasks").json()["features"]
                if t["properties"]["state"] == "accepted" and not t["properties"]["gold"]]
    return Call({"task_id": accepted[0]["id"]}, json={"annotators": [w.usernames["reviewer"]]})


# ---------------------------------------------------------------- subscriptions (issue 15)

SUBS = "/api/v1/projects/{slug}/subscriptions"
EXPECTED |= {f"{route.split()[0]} {SUBS}{route.split()[1]}".rstrip("/"): action for route, action in {
    "POST /": "run", "GET /": "read", "GET /{sub_id}": "read", "POST /{sub_id}/pause": "run",
    "POST /{sub_id}/resume": "run", "POST /{sub_id}/cancel": "run",  # one's own (reviewer+); anyone's needs manage
    "POST /{sub_id}/run": "run", "GET /{sub_id}/runs": "read", "GET /{sub_id}/deliveries": "read",
    "GET /{sub_id}/results": "read", "GET /{sub_id}/stats": "read", "POST /dry-run": "run",
    "POST /{sub_id}/dry-run": "run", "GET /{sub_id}/runs/{key}/change": "read"}.items()}


def _sub_spec(w: World) -> dict[str, Any]:
    return {"name": w.unique("sub-"), "model": f"models:/{w.objects['name']}/1", "start": "2026-01-01T00:00:00Z",
            "area": {"type": "Polygon", "coordinates": [[[0, 0], [0.01, 0], [0.01, 0.01], [0, 0.01], [0, 0]]]}}


def _subscription(w: World, by: str = "site_admin", paused: bool = False) -> Call:
    """A fresh subscription of the shared project made by ``by`` (paused if asked)."""
    with w.live.client(w.tokens[by]) as c:
        r = c.post(f"/projects/{w.slug}/subscriptions", json={"spec": _sub_spec(w)})
        assert r.status_code == 201, r.text
        if paused:
            assert c.post(f"/projects/{w.slug}/subscriptions/{r.json()['id']}/pause").status_code == 200
    return Call({"sub_id": r.json()["id"]})


CALLS |= {
    f"POST {SUBS}": lambda w, c: Call(json={"spec": _sub_spec(w)}, ok=(201,)),
    # the matrix project's model version has no package: past the role check, a dry run's model lookup is a 404
    f"POST {SUBS}/dry-run": lambda w, c: Call(json={"spec": _sub_spec(w)}, ok=(404,)),
    f"POST {SUBS}/{{sub_id}}/dry-run": lambda w, c: (lambda call: Call(call.params, ok=(404,)))(_subscription(w)),
    **{f"{route} {SUBS}/{{sub_id}}{tail}": lambda w, c: _subscription(w) for route, tail in (
        ("GET", ""), ("POST", "/pause"), ("POST", "/run"), ("GET", "/runs"), ("GET", "/deliveries"), ("GET", "/results"),
        ("GET", "/stats"))},
    # a fresh subscription has no run: past the role check, the run's change is a 404
    f"GET {SUBS}/{{sub_id}}/runs/{{key}}/change": lambda w, c: Call(_subscription(w).params | {"key": "none"}, ok=(404,)),
    f"POST {SUBS}/{{sub_id}}/resume": lambda w, c: _subscription(w, paused=True),
    f"POST {SUBS}/{{sub_id}}/cancel": lambda w, c: _subscription(w, "reviewer"),
}


def denial(action: str, caller: str) -> int | None:
    """The status the contract gives ``caller`` on a route needing ``action`` (None: allowed)."""
    if action == "public":
        return None
    if caller == "anonymous":
        return 401
    if action == "authenticated" or caller == "site_admin":
        return None
    if action == "site_admin":
        return 403
    role = ROLE_OF.get(caller)
    if role is None:
        return 404
    return None if ROLE_ORDER.index(role) >= ROLE_ORDER.index(LEAST[action]) else 403


def check_error(r: httpx.Response) -> dict[str, str]:
    """An error answer's body, checked to be {"error", "fix"} with both filled."""
    body = r.json()
    assert isinstance(body, dict) and set(body) >= {"error", "fix"} and body["error"] and body["fix"], r.text
    return body


def send(w: World, route: str, caller: str, call: Call, client: httpx.Client | None = None) -> httpx.Response:
    """Send ``call`` to ``route`` as ``caller`` (by bearer token, or through ``client``); no secret may come back."""
    method, template = route.split(" ", 1)
    values = {"slug": w.slug, **w.objects, **call.params}
    names = re.findall(r"{(\w+)(?::\w+)?}", template)
    assert set(names) <= set(values), f"{route}: add a Call to CALLS with its path parameters {names}"
    path = re.sub(r"{(\w+)(?::\w+)?}", lambda m: str(values[m.group(1)]), template)
    if client is None:
        headers = {"Authorization": f"Bearer {w.tokens[caller]}"} if caller in w.tokens else {}
        with httpx.Client(base_url=w.live.url, timeout=60) as anon:
            r = anon.request(method, path, params=call.query, json=call.json, files=call.files, data=call.data,
                             headers=headers)
    else:
        r = client.request(method, path, params=call.query, json=call.json, files=call.files, data=call.data)
    leaked = [s for s in w.secrets if s in r.text or any(s in v for v in r.headers.values())]
    assert not leaked, f"{route} as {caller} answered with a secret"
    return r


@pytest.fixture(scope="module")
def logs() -> Iterator[LogCapture]:
    with capture_logs() as capture:
        yield capture


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, logs: LogCapture, module_db: str) -> Iterator[World]:
    with live_platform(tmp_path_factory.mktemp("perm") / "home", db_url=module_db, logs=logs,
                       data_roots=(EXAMPLES,)) as live:
        names = {c: c.replace("_", "-") for c in CALLERS if c not in ("anonymous", "site_admin")}
        passwords = {c: f"secret-of-{n}-42" for c, n in names.items()}
        tokens = {c: live.user(names[c], passwords[c]) for c in names}
        tokens["site_admin"], passwords["site_admin"], names["site_admin"] = live.admin.token, ADMIN_PASSWORD, "admin"
        w = World(live, "matrix", tokens, passwords, names)
        w.objects = browsable_project(live, w.slug)  # made by the site admin, who hands it to the project admin
        w.lineage = w.objects.pop("lineage")
        w.as_admin("POST", f"/projects/{w.slug}/members", json={"username": names["project_admin"], "role": "admin"})
        with live.client(tokens["project_admin"]) as c:
            assert c.delete(f"/projects/{w.slug}/members/admin").status_code == 204
            for caller, role in ROLE_OF.items():
                if role != "admin":
                    assert c.post(f"/projects/{w.slug}/members", json={"username": names[caller], "role": role}).status_code == 201
        w.secrets = stored_secrets(w)
        yield w


def stored_secrets(w: World) -> set[str]:
    """The tokens and passwords of the callers, and every hash the database keeps."""
    with w.live.platform.db.read() as s:
        hashes = {u.password_hash for u in s.scalars(select(User))} | {t.token_hash for t in s.scalars(select(ApiToken))}
    return set(w.tokens.values()) | set(w.passwords.values()) | hashes


def test_every_route_is_classified(world: World) -> None:
    routes = api_routes(world.live.app)
    assert routes - set(EXPECTED) == set(), "classify these routes in EXPECTED"
    assert set(EXPECTED) - routes == set(), "EXPECTED names routes the app does not have"
    assert set(CALLS) <= routes
    mounts = {path for r, path in app_routes(world.live.app) if isinstance(r, Mount) and path.startswith(API)}
    assert mounts == set(MOUNTS) == set(MOUNT_CALLS), "classify each sub-application under /api/v1 in MOUNTS"
    assert set(EXPECTED.values()) <= {"public", "authenticated", "site_admin", *LEAST}
    assert LEAST_ROLE == LEAST  # roles.py is the contract's table


@pytest.mark.parametrize("route", sorted(EXPECTED))
def test_route_answers_each_caller_by_role(world: World, route: str) -> None:
    action, outcomes = EXPECTED[route], {}
    for caller in CALLERS:
        call = CALLS.get(route, lambda w, c: Call())(world, caller)
        r = send(world, route, caller, call)
        expected = denial(action, caller)
        outcomes[caller] = r.status_code
        assert r.status_code < 500, f"{route} as {caller}: {r.status_code} {r.text}"
        body = check_error(r) if r.status_code >= 400 and r.request.method != "HEAD" else {}
        if expected is None:
            assert r.status_code in call.ok, f"{route} as {caller} (allowed): {r.status_code} {r.text}"
        else:
            assert r.status_code == expected, f"{route} as {caller}: {r.status_code}, expected {expected}: {r.text}"
            if expected == 404 and "{slug}" in route and body:
                assert body["error"].startswith("no project"), body
            if expected == 403 and action in LEAST and body:
                assert LEAST[action] in body["fix"], body  # names the role needed
    assert set(outcomes) == set(CALLERS)


@pytest.mark.parametrize("mount", sorted(MOUNTS))
def test_mounted_apps_answer_each_caller_by_role(world: World, mount: str) -> None:
    method, path = MOUNT_CALLS[mount]
    for caller in CALLERS:
        r = send(world, f"{method} {mount}{path}", caller, Call())
        expected = denial(MOUNTS[mount], caller)
        assert r.status_code == (expected or 200), f"{mount}{path} as {caller}: {r.status_code} {r.text}"
        if expected:
            check_error(r)


@pytest.fixture(scope="module")
def browser(world: World) -> Iterator[httpx.Client]:
    """A cookie session of the site admin (no bearer token, no CSRF header)."""
    with httpx.Client(base_url=world.live.url, timeout=60) as web:
        r = web.post(f"{API}/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        assert r.status_code == 200, r.text
        world.secrets |= {r.json()["csrf_token"], web.cookies["eoengine_session"]}
        yield web


@pytest.mark.parametrize("route", sorted(r for r in EXPECTED if r.split()[0] in UNSAFE and r not in CSRF_EXEMPT))
def test_cookie_session_needs_csrf_token_for_changes(world: World, browser: httpx.Client, route: str) -> None:
    call = CALLS.get(route, lambda w, c: Call())(world, "site_admin")
    r = send(world, route, "site_admin", call, client=browser)
    assert r.status_code == 403 and "CSRF" in check_error(r)["error"], f"{route}: {r.status_code} {r.text}"
    assert browser.get(f"{API}/auth/me").status_code == 200  # the session is still there


@pytest.mark.parametrize("mount", sorted(MOUNTS))
def test_mounted_apps_need_the_csrf_token_too(world: World, browser: httpx.Client, mount: str) -> None:
    r = send(world, f"POST {mount}/search", "site_admin", Call(json={}), client=browser)  # STAC's POST search
    assert r.status_code == 403 and "CSRF" in check_error(r)["error"], r.text
    assert browser.get(mount.replace("{slug}", world.slug) + "/search").status_code == 200  # reading needs none


def test_secrets_stay_out_of_responses_and_logs(world: World, logs: LogCapture, tmp_path: Path) -> None:
    with httpx.Client(base_url=f"{world.live.url}{API}", timeout=60) as web:
        login = web.post("/auth/login", json={"username": "viewer", "password": world.passwords["viewer"]})
        assert login.status_code == 200
        csrf, cookie = login.json()["csrf_token"], web.cookies["eoengine_session"]
        made = web.post("/tokens", json={"name": "shown-once"}, headers={"X-CSRF-Token": csrf}).json()["token"]
        assert web.post("/auth/login", json={"username": "viewer", "password": "wrong-password"}).status_code == 401
    with world.live.client(made) as c:
        listed = c.get("/tokens")
        assert listed.status_code == 200 and made not in listed.text and made[:8] in listed.text
        assert c.get("/auth/me").json()["username"] == "viewer"
        assert csrf not in c.get("/events").text
    _, victim = world.new_user()
    with world.live.client() as c:
        assert c.patch(f"/users/{victim}", json={"password": "brand-new-secret-1"}).status_code == 200
        events = c.get("/events", params={"object": f"user:{victim}"}).text  # its events (the log holds hundreds)
        assert "brand-new-secret-1" not in events and '"password":"changed"' in events
        assert ADMIN_PASSWORD not in c.get("/users").text and "password" not in c.get("/users").text
    text = logs.text
    assert "GET /api/v1/auth/me" in text  # the access log was captured
    secrets = stored_secrets(world) | world.secrets | {made, csrf, cookie, "wrong-password", "brand-new-secret-1"}
    assert [s[:6] for s in secrets if s in text] == []


def test_ids_out_of_range_are_bad_input(world: World) -> None:
    found = row_id_params(world.live.app)
    assert ("DELETE /api/v1/tokens/{token_id}", "token_id") in found
    for route, name in found:
        call = CALLS.get(route, lambda w, c: Call())(world, "site_admin")
        for bad in (2**70, 2**31, 0, -1):  # past SQLite's and PostgreSQL's integers; no row has id 0 or below
            r = send(world, route, "site_admin", Call(call.params | {name: bad}, json=call.json))
            assert r.status_code == 422 and name in check_error(r)["error"], f"{route} {name}={bad}: {r.status_code} {r.text}"


def test_only_a_project_admin_cancels_someone_elses_job(world: World) -> None:
    job = world.new_job("project_admin")
    with world.live.client(world.tokens["reviewer"]) as reviewer:
        body = check_error(r := reviewer.post(f"/jobs/{job}/cancel"))
        assert r.status_code == 403 and "admin" in body["fix"], r.text
    with world.live.client(world.tokens["viewer"]) as viewer:
        assert viewer.get(f"/jobs/{job}").json()["state"] == "queued"
    own = world.new_job("reviewer")
    with world.live.client(world.tokens["project_admin"]) as admin:
        assert admin.post(f"/jobs/{own}/cancel").json()["state"] == "cancelled"
        assert admin.post(f"/jobs/{job}/cancel").json()["state"] == "cancelled"
