"""What the model-assisted labelling tests share: a live server and worker, a tiny project with a registered model.

The tiny project (the open-geo-tutorial scene ``s1999``, 250 x 250 px, 4 bands, classes 1-5,
background 1) is built and trained for one epoch, its run registered as model ``landcover``
with alias ``champion``. Members: ``ann`` and ``bob`` (annotators), ``rita`` (reviewer),
``vera`` (viewer). A worker process runs the jobs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from jobs_support import wait_job, worker
from models_support import trained_project
from platform_server import EXAMPLES, LiveServer, live_platform

SLUG, ITEM, MODEL = "tiny", "s1999", "landcover@champion"
ANN = f"/projects/{SLUG}/annotation"
USERS = {"vera": "viewer", "ann": "annotator", "bob": "annotator", "rita": "reviewer"}


@dataclass
class Assist:
    """The server, its project folder and trained run, and an API token per user name (``admin`` too)."""

    live: LiveServer
    folder: Path
    run: Any
    tokens: dict[str, str]

    def client(self, who: str) -> httpx.Client:
        return self.live.client(self.tokens[who])


@contextmanager
def assisted(home: Path) -> Iterator[Assist]:
    """The server with the trained, registered model, its members, and a worker, for a block."""
    with live_platform(home / "home", data_roots=(EXAMPLES,)) as live:
        made = trained_project(live, SLUG)
        tokens = {"admin": live.admin.token, "outsider": live.user("olga")}
        with live.client() as c:
            for name, role in USERS.items():
                tokens[name] = live.user(name)
                assert c.post(f"/projects/{SLUG}/members", json={"username": name, "role": role}).status_code == 201
            r = c.post(f"/projects/{SLUG}/models", json={"run_id": made["run"].run_id, "name": "landcover",
                                                         "alias": "champion"})
            assert r.status_code == 201, r.text
        with worker(live.platform.settings, home / "worker.log"):
            yield Assist(live, made["folder"], made["run"], tokens)


def make_set(team: Assist, name: str) -> dict[str, Any]:
    with team.client("rita") as c:
        r = c.post(f"{ANN}/sets", json={"name": name, "items": [ITEM]})
    assert r.status_code == 201, r.text
    return dict(r.json())


def tasks_of(team: Assist, set_id: int) -> dict[tuple[int, int], dict[str, Any]]:
    with team.client("rita") as c:
        found = c.get(f"{ANN}/sets/{set_id}/tasks").json()["features"]
    return {(f["properties"]["row"], f["properties"]["col"]): f["properties"] for f in found}


def assign(team: Assist, task_id: int, user: str | None) -> None:
    with team.client("rita") as c:
        r = c.post(f"{ANN}/tasks/{task_id}/assign", json={"user": user})
    assert r.status_code == 200, r.text


def prelabel(team: Assist, who: str, task_id: int, **body: Any) -> dict[str, Any]:
    """Pre-label a task and wait for the job: it must succeed."""
    with team.client(who) as c:
        r = c.post(f"{ANN}/tasks/{task_id}/prelabel", json={"model": MODEL} | body)
        assert r.status_code == 201, r.text
        job = wait_job(c, r.json()["id"])
    assert job["state"] == "succeeded", job
    return job


def features_of(team: Assist, task_id: int) -> list[dict[str, Any]]:
    with team.client("vera") as c:
        return list(c.get(f"{ANN}/tasks/{task_id}/features").json()["features"])
