"""Review's two gaps: nobody reviews a task they annotated (a site admin may), and comments can be resolved.

A task's annotator is its assignee, who submitted it. Its comments (a rejection's reasons, pins)
are resolved by that annotator, or by a reviewer, and opened again the same way; each change is an
event ``task.comment.resolve``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from annotation_io_support import BASE, annotation_project
from browse_support import error_of
from platform_server import LiveServer, live_platform
from sqlalchemy import select

from eoengine.platform.db.models import Event

ROLES = {"ann": "annotator", "bob": "annotator", "rita": "reviewer", "rex": "reviewer", "vic": "viewer"}


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    with live_platform(tmp_path / "home") as server:
        yield server


@pytest.fixture
def team(live: LiveServer) -> dict[str, Any]:
    """The tiny project's set, its members by role and their tokens."""
    made = annotation_project(live)
    tokens = {name: live.user(name) for name in ROLES}
    with live.client() as c:
        for name, role in ROLES.items():
            assert c.post("/projects/tiny/members", json={"username": name, "role": role}).status_code == 201
    return made | {"tokens": tokens}


def _submitted(live: LiveServer, team: dict[str, Any], cell: tuple[int, int], who: str | None) -> int:
    """A task drawn and submitted by ``who`` (None: the admin)."""
    task, token = team["tasks"][cell], team["tokens"].get(who or "")
    with live.client() as c:
        assert c.post(f"{BASE}/tasks/{task}/assign", json={"user": who or "admin"}).status_code == 200
    row, col = cell[0] * 64, cell[1] * 64
    drawn = {"type": "Feature", "geometry": team["grid"].box(row + 2, col + 2, row + 9, col + 9), "properties": {"label": 1}}
    with live.client(token) as c:
        assert c.post(f"{BASE}/tasks/{task}/features", json=drawn).status_code == 201
        assert c.post(f"{BASE}/tasks/{task}/submit").status_code == 200
    return int(task)


def test_a_reviewer_may_not_review_a_task_they_annotated_a_site_admin_may(live: LiveServer,
                                                                          team: dict[str, Any]) -> None:
    own = _submitted(live, team, (0, 0), "rita")
    with live.client(team["tokens"]["rita"]) as c:
        body = error_of(c.post(f"{BASE}/tasks/{own}/review", json={"decision": "accept"}), 403)
        assert f"task {own} was annotated by you" in body["error"] and body["fix"] == "ask another reviewer"
        assert c.get(f"{BASE}/tasks/{own}").json()["state"] == "submitted"
    with live.client(team["tokens"]["rex"]) as c:
        assert c.post(f"{BASE}/tasks/{own}/review", json={"decision": "accept"}).json()["reviewer"] == "rex"
    admins = _submitted(live, team, (0, 1), None)
    with live.client() as c:
        assert c.post(f"{BASE}/tasks/{admins}/review", json={"decision": "accept"}).json()["state"] == "accepted"


def test_the_annotator_or_a_reviewer_resolves_a_comment(live: LiveServer, team: dict[str, Any]) -> None:
    task = _submitted(live, team, (1, 1), "ann")
    pin = {"lon": team["grid"].lonlat(70, 70)[0], "lat": team["grid"].lonlat(70, 70)[1], "text": "this is water"}
    tokens = team["tokens"]
    with live.client(tokens["rita"]) as c:
        rejected = c.post(f"{BASE}/tasks/{task}/review", json={"decision": "reject", "pins": [pin]}).json()
    (comment,) = rejected["comments"]
    assert comment["resolved"] is False
    path = f"{BASE}/comments/{comment['id']}/resolve"
    with live.client(tokens["bob"]) as c:
        assert "its annotator or a reviewer" in error_of(c.post(path, json={"resolved": True}), 403)["fix"]
    with live.client(tokens["vic"]) as c:
        assert "role" in error_of(c.post(path, json={"resolved": True}), 403)["fix"]
    with live.client(tokens["ann"]) as c:
        done = c.post(path, json={"resolved": True})
        assert done.status_code == 200, done.text
        assert done.json() == comment | {"resolved": True}
        assert c.get(f"{BASE}/tasks/{task}").json()["comments"][0]["resolved"] is True
    with live.client(tokens["rita"]) as c:
        assert c.post(path, json={"resolved": False}).json()["resolved"] is False
        error_of(c.post(path, json={"resolved": "maybe"}), 422)
        assert "no comment 999" in error_of(c.post(f"{BASE}/comments/999/resolve", json={"resolved": True}), 404)["error"]
    with live.platform.db.read() as s:
        events = s.scalars(select(Event).where(Event.action == "task.comment.resolve").order_by(Event.id)).all()
    assert [(e.object_id, e.data["comment"], e.data["resolved"]) for e in events] == [
        (str(task), comment["id"], True), (str(task), comment["id"], False)]
