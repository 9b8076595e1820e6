"""Two clients at once on SQLite and PostgreSQL: of two edits from one version one wins, the other gets its 409.

The edits race in threads released together; whichever wins, the loser's answer holds the
winner's feature (``current``), and nothing of the loser's edit is stored. Two annotators
asking the queue at once get different tasks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from platform_server import LiveServer, live_platform
from test_i13_core_api import ANN, SCENE, feature, pixel_polygon

ROUNDS = 4


@pytest.fixture
def live(tmp_path: Path, each_db: str) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    with live_platform(tmp_path / "home", db_url=each_db) as server:
        tokens = {}
        with server.client() as c:
            assert c.post("/projects", json={"name": "nc", "template": "nc-landsat"}).status_code == 201
            for name in ("ann", "bob"):
                tokens[name] = server.user(name)
                assert c.post("/projects/nc/members", json={"username": name, "role": "annotator"}).status_code == 201
        yield server, tokens


def _together(*calls: Callable[[], httpx.Response]) -> list[httpx.Response]:
    """Run the calls in threads released at the same moment."""
    gate = threading.Barrier(len(calls))

    def run(call: Callable[[], httpx.Response]) -> httpx.Response:
        gate.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def test_racing_edits_one_wins_the_other_gets_409_with_current(live: tuple[LiveServer, dict[str, str]]) -> None:
    server, _ = live
    with server.client() as admin:
        made = admin.post(f"{ANN}/sets", json={"name": "race", "items": [SCENE]}).json()
        task = admin.get(f"{ANN}/sets/{made['id']}/tasks").json()["features"][0]["id"]
        assert admin.post(f"{ANN}/tasks/{task}/assign", json={"user": "admin"}).status_code == 200
        square = pixel_polygon(made["grid"], (10, 20), (10, 20))
        fid = admin.post(f"{ANN}/tasks/{task}/features", json=feature(square)).json()["id"]
    with server.client() as one, server.client() as two:
        for version in range(1, ROUNDS + 1):
            answers = _together(partial(one.put, f"{ANN}/features/{fid}", json=feature(square, label=6, version=version)),
                                partial(two.put, f"{ANN}/features/{fid}", json=feature(square, label=7, version=version)))
            assert sorted(r.status_code for r in answers) == [200, 409], [r.text for r in answers]
            won = next(r for r in answers if r.status_code == 200).json()
            lost = next(r for r in answers if r.status_code == 409).json()
            assert won["properties"]["version"] == version + 1
            assert lost["current"] == won and lost["error"] and lost["fix"]
            stored = one.get(f"{ANN}/tasks/{task}/features").json()["features"]
            assert stored == [won]  # the loser's label is nowhere
        gone = {"version": ROUNDS + 1}
        deletes = _together(partial(one.delete, f"{ANN}/features/{fid}", params=gone),
                            partial(two.delete, f"{ANN}/features/{fid}", params=gone))
        assert sorted(r.status_code for r in deletes) == [200, 409]
        events: list[dict[str, Any]] = one.get(f"{ANN}/tasks/{task}/history").json()["events"]
    assert [e["action"] for e in events].count("feature.update") == ROUNDS  # one event per stored edit


def test_racing_queue_requests_get_distinct_tasks(live: tuple[LiveServer, dict[str, str]]) -> None:
    server, tokens = live
    with server.client() as admin:
        made = admin.post(f"{ANN}/sets", json={"name": "queue", "items": [SCENE]}).json()
    with server.client(tokens["ann"]) as ann, server.client(tokens["bob"]) as bob:
        got = _together(partial(ann.post, f"{ANN}/sets/{made['id']}/next"),
                        partial(bob.post, f"{ANN}/sets/{made['id']}/next"))
    assert [r.status_code for r in got] == [200, 200], [r.text for r in got]
    assert got[0].json()["id"] != got[1].json()["id"]
    assert {r.json()["assignee"] for r in got} == {"ann", "bob"}
