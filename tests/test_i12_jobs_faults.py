"""Faults with real processes: a worker killed with SIGKILL mid-job, the server killed and restarted, a job's
process killed, the database down for seconds. Each job completes once, with the result of an uninterrupted run."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from conftest import free_port
from jobs_support import (
    alive,
    child_env,
    fill_project,
    job_state,
    make_project,
    project_config,
    start_worker,
    stop,
    submit,
    wait_for,
    wait_job,
    worker,
)
from platform_fixtures import PgServer
from platform_server import LiveServer, live_platform
from sqlalchemy import select

from eoengine.platform.db.engine import Database, sqlite_url
from eoengine.platform.db.models import Artifact, Event, Job

STRIDE = {"dataset.stride": 8}  # a build of some seconds: long enough to be interrupted midway


@pytest.fixture(scope="module")
def reference_version(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The version of the dataset an uninterrupted in-process build of the same project makes."""
    from eoengine.jobs.run import run_spec
    from eoengine.jobs.specs import BuildDatasetSpec

    folder = tmp_path_factory.mktemp("reference")
    fill_project(folder)
    (folder / "eoengine.yaml").write_text(yaml.safe_dump(project_config(**STRIDE)))
    cwd = Path.cwd()
    os.chdir(folder)
    try:
        return run_spec(BuildDatasetSpec(config=Path("eoengine.yaml"))).version
    finally:
        os.chdir(cwd)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    with live_platform(tmp_path / "home") as server:
        yield server


def _midway(c: httpx.Client, job_id: int, timeout: float = 300.0) -> None:
    """Wait until a job has made some progress, and not all of it.

    A loaded machine (CI runs two test workers on two cores) may take minutes to start the job's
    process; a job that ends before it is seen midway fails the wait at once, saying how it ended.
    """
    end = time.monotonic() + timeout
    while True:
        job = job_state(c, job_id)
        progress = job["progress"] or {}
        if 0 < progress.get("completed", 0) < progress.get("total", 0):
            return
        assert job["state"] in ("queued", "running"), f"job ended before it was seen midway: {job}"
        assert time.monotonic() < end, f"timed out waiting for job {job_id}'s progress midway: {job}"
        time.sleep(0.1)


def _pid(db: Database, job_id: int) -> int:
    with db.read() as s:
        job = s.get(Job, job_id)
        assert job is not None and job.pid
        return job.pid


def _worker_pid(name: str) -> int:
    """A worker's process id, from its name (host:pid:suffix)."""
    return int(name.split(":")[1])


def _once(db: Database, job_id: int, version: str) -> None:
    """The job succeeded once, with the reference version, indexed once."""
    with db.read() as s:
        job = s.get(Job, job_id)
        assert job is not None
        finishes = s.scalars(select(Event.data).where(Event.action == "job.finish", Event.object_id == str(job_id))).all()
        datasets = s.scalars(select(Artifact).where(Artifact.kind == "dataset")).all()
    assert job.state == "succeeded" and job.result is not None and job.result["version"] == version, job.error
    assert [f["state"] for f in finishes] == ["succeeded"]
    assert [(d.version, d.job_id) for d in datasets] == [(version, job_id)]


def test_a_worker_killed_with_sigkill_mid_build(live: LiveServer, tmp_path: Path, reference_version: str) -> None:
    make_project(live, **STRIDE)
    settings = live.platform.settings
    with live.client() as c:
        first = start_worker(settings, tmp_path / "w1.log")
        try:
            job = submit(c, "tiny", {"kind": "build"})
            _midway(c, job["id"])
            child = _pid(live.platform.db, job["id"])
            first.kill()  # SIGKILL: no chance to clean up
            first.wait()
            wait_for(lambda: not alive(child), 10, what="the job's process to die with its worker")
        finally:
            stop(first)
        assert job_state(c, job["id"])["state"] == "running"  # until its heartbeat is stale
        with worker(settings, tmp_path / "w2.log"):
            done = wait_job(c, job["id"], 180)
    assert done["attempts"] == 2
    _once(live.platform.db, job["id"], reference_version)
    with live.platform.db.read() as s:
        requeued = s.scalars(select(Event.data).where(Event.action == "job.requeue")).all()
    assert len(requeued) == 1 and "stopped answering" in requeued[0]["reason"]
    log = (settings.jobs_dir / str(job["id"]) / "log.txt").read_text()
    assert log.count("== attempt") == 2 and log.count("done: {") == 1


def test_a_job_process_killed_fails_and_a_rerun_resumes(live: LiveServer, tmp_path: Path, reference_version: str) -> None:
    make_project(live, **STRIDE)
    with live.client() as c, worker(live.platform.settings, tmp_path / "w.log") as proc:
        job = submit(c, "tiny", {"kind": "build"})
        _midway(c, job["id"])
        os.kill(_pid(live.platform.db, job["id"]), signal.SIGKILL)
        failed = wait_job(c, job["id"], 60)
        assert failed["state"] == "failed" and "killed by signal 9" in failed["error"]["error"], failed["error"]
        assert proc.poll() is None  # the worker goes on
        rerun = wait_job(c, submit(c, "tiny", {"kind": "build"})["id"], 180)
    assert rerun["state"] == "succeeded" and rerun["result"]["version"] == reference_version
    assert rerun["result"]["up_to_date"] is False


def _server(home: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "eoengine", "server", "run", "--home", str(home), "--port", str(port),
           "--stale-after", "2"]
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, env=child_env(), stdout=out, stderr=subprocess.STDOUT)

    def up() -> bool:
        assert proc.poll() is None, log.read_text()
        try:
            return httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(up, 60, what="the server to answer")
    return proc


def test_the_server_killed_mid_job_and_restarted(tmp_path: Path, reference_version: str) -> None:
    home, port = tmp_path / "home", free_port()
    init = subprocess.run([sys.executable, "-m", "eoengine", "server", "init", "--home", str(home),
                           "--password-env", "ADMIN_PW"], env=child_env(ADMIN_PW="admin-password-1"),
                          capture_output=True, text=True, check=True)
    token = re.search(r"API token \(shown once\): (\S+)", init.stdout).group(1)  # type: ignore[union-attr]
    server = _server(home, port, tmp_path / "server.log")
    db = Database(sqlite_url(home))
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", headers={"Authorization": f"Bearer {token}"},
                          timeout=60) as c:
            r = c.post("/projects", json={"name": "tiny", "config": yaml.safe_dump(project_config(**STRIDE))})
            assert r.status_code == 201, r.text
            fill_project(home / "projects" / "tiny")
            job = submit(c, "tiny", {"kind": "build"})
            _midway(c, job["id"])
            child, embedded = _pid(db, job["id"]), _worker_pid(job_state(c, job["id"])["worker"])
            server.kill()  # SIGKILL: its worker gets SIGTERM from the kernel, stops the job and re-queues it
            server.wait()
            wait_for(lambda: not alive(child) and not alive(embedded), 30, what="the worker and the job to stop")
            assert job_state_db(db, job["id"]) == "queued"
            server = _server(home, port, tmp_path / "server.log")
            done = wait_job(c, job["id"], 180)
        assert done["attempts"] == 2
        _once(db, job["id"], reference_version)
    finally:
        stop(server)
        db.dispose()


def job_state_db(db: Database, job_id: int) -> str:
    """A job's state read from the database (the server is down)."""
    with db.read() as s:
        job = s.get(Job, job_id)
        assert job is not None
        return job.state


def test_the_database_down_for_seconds(tmp_path: Path, pg_server: PgServer, pg_db: str,
                                       reference_version: str) -> None:
    with live_platform(tmp_path / "home", db_url=pg_db) as live, live.client() as c:
        make_project(live, **STRIDE)
        settings = live.platform.settings
        log = settings.jobs_dir / "1" / "log.txt"
        with worker(settings, tmp_path / "w.log", stale_after=5) as proc:  # heartbeats each second: it notices
            job = submit(c, "tiny", {"kind": "build"})
            _midway(c, job["id"])
            pg_server.stop()
            try:  # down until the job is done and writing its outcome, then some more
                wait_for(lambda: "done: " in log.read_text(), 120, what="the job to end while the database is down")
                wait_for(lambda: "database unreachable while recording the job's result" in log.read_text(), 30)
                time.sleep(2)
            finally:
                pg_server.start()
            done = wait_job(c, job["id"], 120)
            assert proc.poll() is None  # the worker rode it out
            assert "unreachable" in (tmp_path / "w.log").read_text()
        assert done["attempts"] == 1
        _once(live.platform.db, job["id"], reference_version)
