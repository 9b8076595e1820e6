"""The job queue on a real database: claim order, leases that fence stale workers, re-queue, cancel; two workers on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from jobs_support import fetch_project, project_config, submit, wait_job, worker
from platform_server import live_platform
from sqlalchemy import select, update

from eoengine.errors import Conflict
from eoengine.platform.admin import init_server
from eoengine.platform.db.models import Event, Job, Project, utcnow
from eoengine.platform.queue import (
    Lease,
    claim,
    finish,
    heartbeat,
    release,
    report,
    request_cancel,
    requeue_stale,
)
from eoengine.platform.settings import Platform, PlatformSettings


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    state = Platform(PlatformSettings(home=tmp_path / "home"))
    init_server(state, "admin", "admin-password-1")
    with state.db.write() as s:
        s.add(Project(slug="p", name="p"))
    yield state
    state.db.dispose()


def _queue(platform: Platform, n: int) -> list[int]:
    with platform.db.write() as s:
        project = s.scalar(select(Project))
        assert project is not None
        jobs = [Job(project_id=project.id, kind="build", spec={"kind": "build", "config": "eoengine.yaml"})
                for _ in range(n)]
        s.add_all(jobs)
        s.flush()
        return [j.id for j in jobs]


def _job(platform: Platform, job_id: int) -> Job:
    with platform.db.read() as s:
        job = s.get(Job, job_id)
        assert job is not None
        return job


def _go_stale(platform: Platform, job_id: int) -> None:
    with platform.db.write() as s:
        s.execute(update(Job).where(Job.id == job_id).values(heartbeat_at=utcnow() - dt.timedelta(minutes=5)))


def _actions(platform: Platform, job_id: int) -> list[str]:
    with platform.db.read() as s:
        return list(s.scalars(select(Event.action).where(Event.object_type == "job", Event.object_id == str(job_id))
                              .order_by(Event.id)))


def test_claims_take_the_oldest_job_once(platform: Platform) -> None:
    first, second = _queue(platform, 2)
    a, b = claim(platform.db, "w1"), claim(platform.db, "w2")
    assert a == Lease(first, "w1", 1) and b == Lease(second, "w2", 1)
    assert claim(platform.db, "w3") is None
    job = _job(platform, first)
    assert job.state == "running" and job.worker == "w1" and job.started_at is not None and job.heartbeat_at is not None
    assert _actions(platform, first) == ["job.start"]


def test_a_stale_worker_cannot_overwrite_a_newer_attempt(platform: Platform) -> None:
    (job_id,) = _queue(platform, 1)
    old = claim(platform.db, "w1")
    assert old is not None
    assert requeue_stale(platform.db, 30) == []  # heartbeat fresh: nothing to do
    _go_stale(platform, job_id)
    assert requeue_stale(platform.db, 30) == [job_id] and _job(platform, job_id).state == "queued"
    new = claim(platform.db, "w2")
    assert new == Lease(job_id, "w2", 2)
    assert heartbeat(platform.db, [new]) == {job_id: "held"}
    assert heartbeat(platform.db, [old]) == {job_id: "lost"}
    assert not report(platform.db, old, progress={"description": "stale", "completed": 1, "total": 1})
    assert not finish(platform.db, old, "succeeded", result={"from": "the stale worker"})
    assert report(platform.db, new, progress={"description": "building", "completed": 2, "total": 5})
    assert finish(platform.db, new, "failed", error={"error": "bad", "fix": "fix it"})
    job = _job(platform, job_id)
    assert (job.state, job.result, job.error, job.progress["description"]) == (
        "failed", None, {"error": "bad", "fix": "fix it"}, "building")
    assert not finish(platform.db, new, "succeeded")  # an outcome is written once
    assert heartbeat(platform.db, [new]) == {job_id: "done"}  # its process is on its way out: not to be killed
    assert heartbeat(platform.db, [old]) == {job_id: "lost"}
    assert _actions(platform, job_id) == ["job.start", "job.requeue", "job.start", "job.finish"]


def test_a_job_whose_worker_keeps_dying_fails_after_three_starts(platform: Platform) -> None:
    (job_id,) = _queue(platform, 1)
    for attempt in (1, 2, 3):
        assert claim(platform.db, f"w{attempt}") == Lease(job_id, f"w{attempt}", attempt)
        _go_stale(platform, job_id)
        requeue_stale(platform.db, 30, max_attempts=3)
    job = _job(platform, job_id)
    assert job.state == "failed" and "started 3 times" in job.error["error"] and job.error["fix"]
    assert claim(platform.db, "w4") is None


def test_cancel_release_and_a_cancelled_job_whose_worker_died(platform: Platform) -> None:
    queued, running, dying = _queue(platform, 3)
    with platform.db.write() as s:
        assert request_cancel(s, queued, actor_id=1).state == "cancelled"
    lease = claim(platform.db, "w1")
    assert lease is not None and lease.job_id == running
    with platform.db.write() as s:
        job = request_cancel(s, running, actor_id=1)
        assert job.state == "running" and job.cancel_requested
    assert heartbeat(platform.db, [lease]) == {running: "cancel"}
    assert finish(platform.db, lease, "cancelled")
    with platform.db.write() as s, pytest.raises(Conflict, match="cancelled already"):
        request_cancel(s, running, actor_id=1)
    other = claim(platform.db, "w2")
    assert other is not None and other.job_id == dying
    assert release(platform.db, other, "its worker stopped") and _job(platform, dying).state == "queued"
    again = claim(platform.db, "w3")
    assert again is not None
    with platform.db.write() as s:
        request_cancel(s, dying, actor_id=1)
    _go_stale(platform, dying)
    requeue_stale(platform.db, 30)
    assert _job(platform, dying).state == "cancelled"
    assert _actions(platform, dying) == ["job.start", "job.requeue", "job.start", "job.cancel", "job.finish"]


def test_two_workers_on_postgresql_run_each_job_once(tmp_path: Path, pg_db: str) -> None:
    import yaml

    with live_platform(tmp_path / "home", db_url=pg_db) as live, live.client() as c:
        r = c.post("/projects", json={"name": "tiny", "config": yaml.safe_dump(project_config())})
        assert r.status_code == 201, r.text
        fetch_project(live)
        spec = {"kind": "fetch", "items": "items.json", "bands": "red,nir", "cache": "cache"}
        settings = live.platform.settings
        with worker(settings, tmp_path / "w1.log", concurrency=2), worker(settings, tmp_path / "w2.log", concurrency=2):
            first = wait_job(c, submit(c, "tiny", spec)["id"])  # it fills the cache: the others are quick
            assert first["state"] == "succeeded", first["error"]
            ids = [submit(c, "tiny", spec)["id"] for _ in range(20)]
            start = time.monotonic()
            jobs = [wait_job(c, i, timeout=240) for i in ids]
        print(f"20 jobs with 2 workers on PostgreSQL: {time.monotonic() - start:.1f} s")
        assert [j["state"] for j in jobs] == ["succeeded"] * 20, [j["error"] for j in jobs]
        assert all(j["attempts"] == 1 for j in jobs)
        assert len({j["worker"] for j in jobs}) == 2  # both took jobs
        with live.platform.db.read() as s:
            starts = Counter(s.scalars(select(Event.object_id).where(Event.action == "job.start")))
            finishes = Counter(s.scalars(select(Event.object_id).where(Event.action == "job.finish")))
        assert all(starts[str(i)] == 1 and finishes[str(i)] == 1 for i in ids)
        for i in ids:
            log = (settings.jobs_dir / str(i) / "log.txt").read_text()
            assert log.count("== attempt") == 1 and "done: {" in log  # the result, printed before it is recorded
        overview = c.get("/projects/tiny").json()
        assert overview["jobs"][0]["state"] == "succeeded"
