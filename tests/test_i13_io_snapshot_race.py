"""Two identical snapshots asked at once, on SQLite and PostgreSQL: indexed once, both answers name it."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from annotation_io_support import BASE, add_feature, annotation_project, set_state, user_id
from platform_server import LiveServer, live_platform
from sqlalchemy import select
from test_i13_core_concurrency import _together

from eoengine.platform.db.models import Artifact, Event


@pytest.fixture
def live(tmp_path: Path, each_db: str) -> Iterator[LiveServer]:
    with live_platform(tmp_path / "home", db_url=each_db) as server:
        yield server


def test_two_identical_snapshots_at_once_are_indexed_once(live: LiveServer) -> None:
    made = annotation_project(live)
    admin, tasks = user_id(live, "admin"), made["tasks"]
    add_feature(live, tasks[(0, 0)], made["grid"].box(10, 20, 30, 40), 2, admin, made["item"])
    set_state(live, [tasks[(0, 0)]], "accepted", reviewer=admin)
    for _ in range(3):
        with live.client() as one, live.client() as two:
            got = _together(partial(one.post, f"{BASE}/sets/{made['set']}/snapshots"),
                            partial(two.post, f"{BASE}/sets/{made['set']}/snapshots"))
        assert sorted(r.status_code for r in got) in ([200, 201], [200, 200]), [r.text for r in got]
        assert got[0].json() == got[1].json()
    with live.platform.db.read() as s:
        rows = s.scalars(select(Artifact).where(Artifact.kind == "labels")).all()
        events = s.scalars(select(Event).where(Event.action == "labels.snapshot")).all()
    assert len(rows) == 1 and len(events) == 1
    folder = made["folder"] / "labels" / "snapshots"
    assert [p.name for p in folder.iterdir()] == [rows[0].version]  # no staging folder left
