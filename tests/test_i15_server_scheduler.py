"""The subscription scheduler on a real database (SQLite, PostgreSQL) with an injected clock (issue 15).

Each due time fires once: ticking again, ticking from another database connection after a restart,
or from eight loops at once queues no second job; missed due times coalesce into one; a busy
subscription waits for its run; pending becomes active at its start and active completed after its
end; the clock file moves "now"; a worker's loop schedules.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jobs_support import wait_for
from sqlalchemy import select, update

from eoengine.errors import Invalid
from eoengine.platform.admin import init_server
from eoengine.platform.db.models import Event, Job, Project, Subscription
from eoengine.platform.scheduler import KIND, tick
from eoengine.platform.settings import Platform, PlatformSettings
from eoengine.platform.subscriptions import CLOCK_ENV, first_due, now, server_spec, start_state
from eoengine.platform.worker import Worker

T0 = dt.datetime(2026, 3, 2, 0, 0, tzinfo=dt.UTC)  # a Monday
AREA = {"type": "Polygon", "coordinates": [[[0, 0], [0.01, 0], [0.01, 0.01], [0, 0.01], [0, 0]]]}


@pytest.fixture
def platform(tmp_path: Path, each_db: str) -> Iterator[Platform]:
    state = Platform(PlatformSettings(home=tmp_path / "home", db_url=each_db))
    init_server(state, "admin", "admin-password-1")
    with state.db.write() as s:
        s.add(Project(slug="p", name="p"))
    yield state
    state.db.dispose()


def subscribe(platform: Platform, at: dt.datetime, **fields: Any) -> int:
    """A subscription of project p made at ``at`` as the create route makes it."""
    spec = server_spec({"name": f"s{at.timestamp()}-{len(fields)}", "area": AREA, "model": "pkg",
                        "start": T0.isoformat()} | fields)
    with platform.db.write() as s:
        project = s.scalar(select(Project))
        assert project is not None
        sub = Subscription(project_id=project.id, name=spec.name, spec=spec.model_dump(mode="json"),
                           state=start_state(spec, at), next_due=first_due(spec, at))
        s.add(sub)
        s.flush()
        return sub.id


def jobs(platform: Platform, sub_id: int) -> list[Job]:
    with platform.db.read() as s:
        return [j for j in s.scalars(select(Job).where(Job.kind == KIND).order_by(Job.id)) if j.spec["subscription"] == sub_id]


def sub(platform: Platform, sub_id: int) -> Subscription:
    with platform.db.read() as s:
        row = s.get(Subscription, sub_id)
        assert row is not None
        return row


def finish_all(platform: Platform) -> None:
    """The run jobs done (as a worker would record them)."""
    with platform.db.write() as s:
        s.execute(update(Job).where(Job.kind == KIND, Job.state == "queued").values(state="succeeded"))


def test_each_due_time_fires_once(platform: Platform) -> None:
    made = subscribe(platform, T0 - dt.timedelta(days=3), cadence="daily")
    assert sub(platform, made).next_due == T0 + dt.timedelta(days=1)
    assert tick(platform.db, T0 + dt.timedelta(hours=23)) == []  # not due yet
    fired = tick(platform.db, T0 + dt.timedelta(days=1, minutes=1))
    assert len(fired) == 1 and jobs(platform, made)[0].spec["due"] == (T0 + dt.timedelta(days=1)).isoformat()
    assert jobs(platform, made)[0].spec["trigger"] == "schedule" and jobs(platform, made)[0].created_by is None
    row = sub(platform, made)
    assert row.last_due == T0 + dt.timedelta(days=1) and row.next_due == T0 + dt.timedelta(days=2)
    assert tick(platform.db, T0 + dt.timedelta(days=1, minutes=2)) == []  # the same due time: never again
    assert tick(platform.db, T0 + dt.timedelta(days=2, minutes=1)) == []  # due, but its run is still queued
    finish_all(platform)
    assert len(tick(platform.db, T0 + dt.timedelta(days=2, minutes=1))) == 1
    assert [j.spec["due"][:10] for j in jobs(platform, made)] == ["2026-03-03", "2026-03-04"]


def test_missed_due_times_coalesce_into_one_run(platform: Platform) -> None:
    made = subscribe(platform, T0, cadence="daily")
    assert len(tick(platform.db, T0 + dt.timedelta(days=5, hours=7))) == 1  # five due times missed (server down)
    (job,) = jobs(platform, made)
    assert job.spec["due"] == (T0 + dt.timedelta(days=5)).isoformat()
    assert sub(platform, made).next_due == T0 + dt.timedelta(days=6)


def test_restart_between_runs_skips_and_doubles_nothing(platform: Platform, each_db: str) -> None:
    made = subscribe(platform, T0, cadence="daily")
    assert len(tick(platform.db, T0 + dt.timedelta(days=1))) == 1
    finish_all(platform)
    platform.db.dispose()
    again = Platform(PlatformSettings(home=platform.settings.home, db_url=each_db))  # a restarted server
    try:
        assert tick(again.db, T0 + dt.timedelta(days=1, seconds=30)) == []
        assert len(tick(again.db, T0 + dt.timedelta(days=2))) == 1
    finally:
        again.db.dispose()
    assert [j.spec["due"][:10] for j in jobs(platform, made)] == ["2026-03-03", "2026-03-04"]


def test_eight_loops_at_once_fire_once(platform: Platform) -> None:
    made = [subscribe(platform, T0, cadence="daily", name=f"many-{i}") for i in range(5)]
    loops = [Platform(PlatformSettings(home=platform.settings.home, db_url=platform.settings.db_url))
             for _ in range(8)]
    barrier, fired, errors = threading.Barrier(len(loops)), [], []

    def loop(state: Platform) -> None:
        barrier.wait()
        try:
            fired.extend(tick(state.db, T0 + dt.timedelta(days=1)))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=loop, args=(state,)) for state in loops]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for state in loops:
        state.db.dispose()
    assert errors == [] and len(fired) == len(set(fired)) == 5
    assert [len(jobs(platform, m)) for m in made] == [1] * 5


def test_pending_active_completed(platform: Platform) -> None:
    made = subscribe(platform, T0 - dt.timedelta(days=1), cadence="daily", end=(T0 + dt.timedelta(days=1)).isoformat())
    assert sub(platform, made).state == "pending" and sub(platform, made).next_due == T0 + dt.timedelta(days=1)
    tick(platform.db, T0 + dt.timedelta(hours=1))
    assert sub(platform, made).state == "active"
    assert len(tick(platform.db, T0 + dt.timedelta(days=1, hours=1))) == 1  # the last due time, at the end
    assert sub(platform, made).next_due is None
    tick(platform.db, T0 + dt.timedelta(days=1, hours=2))
    assert sub(platform, made).state == "active"  # its last run still to do
    finish_all(platform)
    tick(platform.db, T0 + dt.timedelta(days=1, hours=3))
    assert sub(platform, made).state == "completed"
    with platform.db.read() as s:
        actions = [e.action for e in s.scalars(select(Event).where(Event.object_type == "subscription"))]
    assert actions == ["subscription.active", "subscription.fire", "subscription.completed"]


def test_each_new_scene_polls(platform: Platform) -> None:
    made = subscribe(platform, T0 + dt.timedelta(minutes=5))
    assert sub(platform, made).next_due == T0 + dt.timedelta(minutes=5)
    assert len(tick(platform.db, T0 + dt.timedelta(minutes=6), poll_s=600)) == 1
    assert sub(platform, made).next_due == T0 + dt.timedelta(minutes=16)
    finish_all(platform)
    assert tick(platform.db, T0 + dt.timedelta(minutes=15), poll_s=600) == []
    assert len(tick(platform.db, T0 + dt.timedelta(minutes=16), poll_s=600)) == 1


def test_paused_subscriptions_do_not_fire(platform: Platform) -> None:
    made = subscribe(platform, T0, cadence="daily")
    with platform.db.write() as s:
        s.execute(update(Subscription).where(Subscription.id == made).values(state="suspended"))
    assert tick(platform.db, T0 + dt.timedelta(days=3)) == []


def test_the_clock_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = tmp_path / "clock"
    monkeypatch.setenv(CLOCK_ENV, str(clock))
    clock.write_text("2026-03-04T05:06:07Z\n")
    assert now() == dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
    clock.write_text("yesterday")
    with pytest.raises(Invalid, match="ISO-8601") as err:
        now()
    assert CLOCK_ENV in err.value.fix
    monkeypatch.delenv(CLOCK_ENV)
    assert abs((now() - dt.datetime.now(dt.UTC)).total_seconds()) < 5


def test_a_worker_schedules(platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = tmp_path / "clock"
    clock.write_text((T0 + dt.timedelta(hours=1)).isoformat())
    monkeypatch.setenv(CLOCK_ENV, str(clock))
    made = subscribe(platform, T0, cadence="0 * * * *")  # hourly
    worker = Worker(platform, warm=False, schedule_s=0.1, concurrency=0)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        wait_for(lambda: jobs(platform, made) or None, timeout=30, what="the first hourly run queued")
        finish_all(platform)
        clock.write_text((T0 + dt.timedelta(hours=2, minutes=1)).isoformat())
        wait_for(lambda: len(jobs(platform, made)) == 2 or None, timeout=30, what="the second hourly run queued")
    finally:
        worker.stop.set()
        thread.join()
    assert [j.spec["due"] for j in jobs(platform, made)] == [(T0 + dt.timedelta(hours=h)).isoformat() for h in (1, 2)]
