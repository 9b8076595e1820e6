"""The worker's launcher with real processes: attempts forked in groups of their own, cancelled, killed with their
worker or their launcher, two at once, their output in the job's log; and the fresh-process path when asked for or
when the launcher does not start."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from jobs_support import (
    alive,
    child_env,
    job_state,
    make_project,
    start_worker,
    stop,
    submit,
    wait_for,
    wait_job,
    worker,
)
from platform_server import LiveServer, live_platform

from eoengine.platform.db.models import Job
from eoengine.platform.launcher import BAD_START, Launcher
from eoengine.platform.worker import ATTEMPT_ENV, Worker

SLOW = {"dataset.stride": 4}  # a build of some seconds: long enough to be stopped midway


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    with live_platform(tmp_path / "home") as server:
        yield server


def _pid(live: LiveServer, job_id: int) -> int:
    """The job's process id, once its worker has written it."""
    def check() -> int | None:
        with live.platform.db.read() as s:
            job = s.get(Job, job_id)
            return job.pid if job is not None and job.state == "running" else None

    return wait_for(check, 120, 0.05, f"job {job_id} to run")


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().split(")")[-1].split()[1])


def _cmdline(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode()


def _running(c: httpx.Client, job_id: int) -> None:
    wait_for(lambda: (job_state(c, job_id)["progress"] or {}).get("completed"), 120, 0.1, "progress")


def test_an_attempt_is_a_fork_of_the_launcher_in_its_own_group_and_cancel_stops_it(live: LiveServer,
                                                                                   tmp_path: Path) -> None:
    folder = make_project(live, **SLOW)
    with live.client() as c, worker(live.platform.settings, tmp_path / "w.log") as proc:
        job = submit(c, "tiny", {"kind": "build"})
        pid = _pid(live, job["id"])
        launcher = _parent(pid)
        assert _parent(launcher) == proc.pid and "eoengine.platform.launcher" in _cmdline(launcher)
        assert os.getpgid(pid) == pid and os.getsid(pid) == pid  # a session and group of its own
        assert os.getsid(launcher) != os.getsid(proc.pid)  # a terminal's Ctrl-C reaches the worker alone
        assert Path(os.readlink(f"/proc/{pid}/cwd")) == folder.resolve()
        _running(c, job["id"])
        assert c.post(f"/jobs/{job['id']}/cancel").json()["cancel_requested"]
        assert wait_job(c, job["id"], 60)["state"] == "cancelled"
        assert not alive(pid) and alive(launcher)  # the launcher stays for the next attempt
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)
        again = wait_job(c, submit(c, "tiny", {"kind": "build"})["id"], 180)
        assert again["state"] == "succeeded", again["error"]
    log = (live.platform.settings.jobs_dir / str(again["id"]) / "log.txt").read_text()
    assert log.startswith("== attempt 1 on ") and "done: {'kind': 'build'" in log and "succeeded in" in log
    assert not alive(launcher)  # it stopped with its worker


def test_a_worker_killed_takes_its_launcher_and_attempt_with_it(live: LiveServer, tmp_path: Path) -> None:
    make_project(live, **SLOW)
    with live.client() as c:
        proc = start_worker(live.platform.settings, tmp_path / "w.log")
        try:
            job = submit(c, "tiny", {"kind": "build"})
            pid = _pid(live, job["id"])
            launcher = _parent(pid)
            proc.kill()
            proc.wait()
            wait_for(lambda: not alive(pid) and not alive(launcher), 10, what="the launcher and the attempt to die")
        finally:
            stop(proc)
        assert job_state(c, job["id"])["state"] == "running"  # until its heartbeat is stale, as for any dead worker


def test_a_launcher_killed_mid_job_fails_the_job_and_a_new_one_runs_the_next(live: LiveServer, tmp_path: Path) -> None:
    make_project(live, **SLOW)
    with live.client() as c, worker(live.platform.settings, tmp_path / "w.log") as proc:
        job = submit(c, "tiny", {"kind": "build"})
        pid = _pid(live, job["id"])
        launcher = _parent(pid)
        _running(c, job["id"])
        os.kill(launcher, signal.SIGKILL)
        failed = wait_job(c, job["id"], 60)
        assert failed["state"] == "failed" and "killed by signal 9" in failed["error"]["error"], failed["error"]
        assert not alive(pid) and proc.poll() is None  # the attempt died with it; the worker goes on
        nxt = submit(c, "tiny", {"kind": "build"})
        second = _parent(_pid(live, nxt["id"]))
        assert second != launcher and _parent(second) == proc.pid
        done = wait_job(c, nxt["id"], 180)
        assert done["state"] == "succeeded" and done["result"]["up_to_date"] is False, done["error"]
    assert "its launcher died; starting a new one" in " ".join((tmp_path / "w.log").read_text().split())


def test_two_attempts_at_once(live: LiveServer, tmp_path: Path) -> None:
    make_project(live, "one", **SLOW)
    make_project(live, "two", **SLOW)
    with live.client() as c, worker(live.platform.settings, tmp_path / "w.log", concurrency=2):
        jobs = [submit(c, slug, {"kind": "build"}) for slug in ("one", "two")]
        pids = [_pid(live, j["id"]) for j in jobs]
        assert pids[0] != pids[1] and all(alive(p) and os.getpgid(p) == p for p in pids)  # both run at once
        assert _parent(pids[0]) == _parent(pids[1])  # forks of the same launcher
        done = [wait_job(c, j["id"], 240) for j in jobs]
    assert [d["state"] for d in done] == ["succeeded", "succeeded"], [d["error"] for d in done]
    for d in done:
        log = (live.platform.settings.jobs_dir / str(d["id"]) / "log.txt").read_text()
        assert log.count("== attempt") == 1 and log.count("done: {") == 1  # each its own output only


@contextmanager
def _in_thread(w: Worker) -> Iterator[Worker]:
    thread = threading.Thread(target=w.run, daemon=True)
    thread.start()
    try:
        yield w
    finally:
        w.stop.set()
        thread.join(60)


@pytest.mark.parametrize("options", [{"warm": False}, {"ready_s": 0.0}], ids=["asked", "launcher-not-ready"])
def test_fresh_processes_when_asked_or_when_the_launcher_does_not_start(
        live: LiveServer, options: dict[str, float], caplog: pytest.LogCaptureFixture) -> None:
    make_project(live, **SLOW)
    caplog.set_level(logging.WARNING, "eoengine.platform.worker")
    with live.client() as c, _in_thread(Worker(live.platform, poll_s=0.05, **options)) as w:  # type: ignore[arg-type]
        job = submit(c, "tiny", {"kind": "build"})
        pid = _pid(live, job["id"])
        assert "eoengine.platform.runner" in _cmdline(pid) and os.getpgid(pid) == pid
        done = wait_job(c, job["id"], 180)
        assert w.launcher is None and not w.warm
    assert done["state"] == "succeeded", done["error"]
    notices = [r.getMessage() for r in caplog.records if "attempts start as fresh processes" in r.getMessage()]
    assert len(notices) == (0 if options == {"warm": False} else 1)


@pytest.fixture
def launcher() -> Iterator[Launcher]:
    started = Launcher(child_env(**ATTEMPT_ENV))
    try:
        assert started.wait_ready(120)
        yield started
    finally:
        started.close()


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def _mapped(pid: int, library: str) -> bool:
    with open(f"/proc/{pid}/maps") as f:
        return library in f.read()


def test_the_launcher_preloads_without_threads(launcher: Launcher) -> None:
    pid = launcher.proc.pid
    assert _mapped(pid, "rasterio")  # the build stage is in memory before any attempt
    wait_for(lambda: _mapped(pid, "libtorch"), 120, 0.2, "torch preloaded while idle")
    assert _threads(pid) <= 2  # itself and OpenBLAS's pool, which OpenBLAS stops at a fork


def test_the_launcher_reports_exit_codes_and_appends_to_the_log(launcher: Launcher, tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    log.write_text("before\n")
    env = child_env(**ATTEMPT_ENV)  # no EOENGINE_DB and the rest: the runner refuses, exit code 2
    first = launcher.launch(7, tmp_path, env, log)
    assert first.wait(60) == 2 and first.pid is not None and not alive(first.pid)
    text = log.read_text()
    assert text.startswith("before\n") and "error: a worker starts this with a job id and EOENGINE_DB" in text
    bad = launcher.launch(8, tmp_path, env, tmp_path / "no-such-folder" / "log.txt")
    assert bad.wait(60) == BAD_START  # its log cannot be opened
    assert launcher.alive


def test_closing_the_launcher_kills_its_attempts(launcher: Launcher, tmp_path: Path) -> None:
    env = child_env(**ATTEMPT_ENV, EOENGINE_DB="sqlite:///" + str(tmp_path / "none.db"), EOENGINE_HOME=str(tmp_path),
                    EOENGINE_JOB_WORKER="w", EOENGINE_JOB_ATTEMPT="1")
    (tmp_path / "none.db").mkdir()  # not a database: loading the job is retried while "unreachable"
    attempt = launcher.launch(1, tmp_path, env, tmp_path / "log.txt")
    launcher.pump(30)
    assert attempt.pid is not None and attempt.poll() is None
    pid = attempt.pid
    launcher.close()
    assert attempt.wait(1) == -signal.SIGKILL and not launcher.alive
    wait_for(lambda: not alive(pid), 10, what="the attempt to die with its launcher")
