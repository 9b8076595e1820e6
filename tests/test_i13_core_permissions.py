"""Every annotation route × every kind of caller: a non-member gets 404, a short role 403, the others their answer.

Each call gets fresh objects made for it (a task of its own, assigned to the caller when they
may annotate; a feature in it; a submitted task to review), so an allowed call really succeeds.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from browse_support import error_of
from test_i13_core_api import ANN, SCENE, Team, assign, feature, pixel_polygon, tasks_of
from test_i13_core_api import team as team  # the module's server, shared

from eoengine.platform.annotation.grid import cell, grid_of

CALLERS = ("outsider", "vera", "ann", "rita", "admin")
ROLE = {"outsider": None, "vera": "viewer", "ann": "annotator", "rita": "reviewer", "admin": "site admin"}
RANK = {"read": 0, "annotate": 1, "review": 2}
CALLER_RANK = {"vera": 0, "ann": 1, "rita": 2, "admin": 3}


@dataclass
class Fresh:
    """Objects made for the calls: one set, and a counter of its (224) tasks handed out one per call."""

    team: Team
    set: dict[str, Any]
    tasks: list[dict[str, Any]]
    counter: Iterator[int] = field(default_factory=itertools.count)

    def task(self, assignee: str | None) -> dict[str, Any]:
        found = self.tasks[next(self.counter)]
        if assignee is not None:
            assign(self.team, found["id"], assignee)
        return found

    def drawer(self, caller: str) -> str:
        """Who draws a feature the call needs: the caller when they may annotate, else ``ann``."""
        return caller if CALLER_RANK.get(caller, -1) >= 1 else "ann"

    def polygon(self, task: dict[str, Any]) -> dict[str, Any]:
        r0, c0, _, _ = cell(grid_of(self.set["grid"]), 32, task["row"], task["col"]).window
        return pixel_polygon(self.set["grid"], (r0 + 2, r0 + 8), (c0 + 2, c0 + 8))

    def feature(self, caller: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """A task of the caller's (or ann's) with one feature drawn: (task, feature)."""
        who = self.drawer(caller)
        task = self.task(who)
        with self.team.client(who) as c:
            r = c.post(f"{ANN}/tasks/{task['id']}/features", json=feature(self.polygon(task)))
        assert r.status_code == 201, r.text
        return task, r.json()

    def submitted(self) -> dict[str, Any]:
        task = self.task("ann")
        with self.team.client("ann") as c:
            assert c.post(f"{ANN}/tasks/{task['id']}/submit").status_code == 200
        return task


Prepared = tuple[str, dict[str, Any] | None, dict[str, Any] | None]  # path, json, query
Prepare = Callable[[Fresh, str], Prepared]


def _new_set(f: Fresh, caller: str) -> Prepared:
    return f"{ANN}/sets", {"name": f"perm-{next(f.counter)}", "items": [SCENE], "block_size": 256}, None


def _draw(f: Fresh, caller: str) -> Prepared:
    task = f.task(f.drawer(caller))
    return f"{ANN}/tasks/{task['id']}/features", feature(f.polygon(task)), None


def _update(f: Fresh, caller: str) -> Prepared:
    task, made = f.feature(caller)
    return f"{ANN}/features/{made['id']}", feature(f.polygon(task), label=6, version=1), None


def _delete(f: Fresh, caller: str) -> Prepared:
    _, made = f.feature(caller)
    return f"{ANN}/features/{made['id']}", None, {"version": 1}


def _task_path(suffix: str = "", body: dict[str, Any] | None = None) -> Prepare:
    return lambda f, caller: (f"{ANN}/tasks/{f.feature(caller)[0]['id']}{suffix}", body, None)


def _submit(f: Fresh, caller: str) -> Prepared:
    return f"{ANN}/tasks/{f.task(f.drawer(caller))['id']}/submit", None, None


def _review(f: Fresh, caller: str) -> Prepared:
    return f"{ANN}/tasks/{f.submitted()['id']}/review", {"decision": "accept"}, None


def _resolve(f: Fresh, caller: str) -> Prepared:
    """A comment of a reviewer on a task of the caller's (or ann's), to resolve."""
    task = f.task(f.drawer(caller))
    with f.team.client("rita") as c:
        made = c.post(f"{ANN}/tasks/{task['id']}/comments", json={"text": "check the edge"}).json()
    return f"{ANN}/comments/{made['id']}/resolve", {"resolved": True}, None


ROUTES: dict[str, tuple[str, Prepare]] = {
    "POST /sets": ("review", _new_set),
    "GET /sets": ("read", lambda f, c: (f"{ANN}/sets", None, None)),
    "GET /sets/{set_id}": ("read", lambda f, c: (f"{ANN}/sets/{f.set['id']}", None, None)),
    "GET /sets/{set_id}/tasks": ("read", lambda f, c: (f"{ANN}/sets/{f.set['id']}/tasks", None, None)),
    "POST /sets/{set_id}/next": ("annotate", lambda f, c: (f"{ANN}/sets/{f.set['id']}/next", None, None)),
    "POST /tasks/{task_id}/assign": ("review", lambda f, c: (f"{ANN}/tasks/{f.task(None)['id']}/assign",
                                                             {"user": "ann"}, None)),
    "GET /tasks/{task_id}": ("read", _task_path()),
    "GET /tasks/{task_id}/history": ("read", _task_path("/history")),
    "GET /tasks/{task_id}/features": ("read", _task_path("/features")),
    "POST /tasks/{task_id}/features": ("annotate", _draw),
    "PUT /features/{fid}": ("annotate", _update),
    "DELETE /features/{fid}": ("annotate", _delete),
    "POST /tasks/{task_id}/submit": ("annotate", _submit),
    "POST /tasks/{task_id}/review": ("review", _review),
    "POST /tasks/{task_id}/comments": ("annotate", _task_path("/comments", {"text": "look here", "lon": -78.7,
                                                                           "lat": 35.8})),
    "POST /comments/{comment_id}/resolve": ("annotate", _resolve),
}


@pytest.fixture(scope="module")
def fresh(team: Team) -> Fresh:
    with team.client("rita") as c:
        made = c.post(f"{ANN}/sets", json={"name": "perm", "items": [SCENE], "block_size": 32}).json()
    tasks = sorted(tasks_of(team, made["id"]).values(), key=lambda t: (t["row"], t["col"]))
    return Fresh(team, made, tasks)


def test_every_annotation_route_is_in_the_table(team: Team) -> None:
    from platform_server import api_routes

    from eoengine.platform.routes import annotation_assist, annotation_io, annotation_quality

    io = {f"{m} /api/v1{r.path}" for module in (annotation_io, annotation_assist, annotation_quality)
          for r in module.router.routes for m in getattr(r, "methods", ())}
    mine = {r for r in api_routes(team.live.app) if "/annotation/" in r} - io  # the shared matrix checks these
    assert mine == {f"{k.split()[0]} /api/v1/projects/{{slug}}/annotation{k.split()[1]}" for k in ROUTES}


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_annotation_route_answers_each_caller_by_role(fresh: Fresh, route: str) -> None:
    action, prepare = ROUTES[route]
    method = route.split()[0]
    for caller in CALLERS:
        path, body, query = prepare(fresh, caller)
        with fresh.team.client(caller) as c:
            r = c.request(method, path, json=body, params=query)
        if caller == "outsider":
            assert error_of(r, 404)["error"].startswith("no project"), (route, r.text)
        elif CALLER_RANK[caller] < RANK[action]:
            assert "role" in error_of(r, 403)["fix"], (route, caller, r.text)
        else:
            assert r.status_code in (200, 201), (route, caller, r.status_code, r.text)
