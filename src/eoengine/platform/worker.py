"""A worker: claims queued jobs and runs each in a child process, heartbeating, cancelling and re-queueing.

Each attempt of a job runs :func:`eoengine.platform.runner.main` in a process of its own: a fork of
the worker's preloaded launcher (:mod:`eoengine.platform.launcher`), which has imported the stages
once, so an attempt starts in milliseconds; or, with ``warm=False`` or when the launcher does not
start, a fresh ``python -m eoengine.platform.runner JOB_ID``. Either way it runs in the project
folder, in a process group of its own, with its output appended to ``HOME/jobs/<id>/log.txt``,
and with ``PR_SET_PDEATHSIG = SIGKILL``: the kernel kills it when its parent dies (the launcher
dies so with the worker), however the worker dies, so a job never runs on without a worker that
heartbeats for it. A launcher that dies takes its attempts with it (they end as killed by SIGKILL)
and is started again for the next attempt. The worker's loop, every tick:

- reaps children that ended; a child records its own outcome, so the worker writes one only
  when the child could not (it crashed or was killed): ``failed``, or ``cancelled`` when asked;
- heartbeats its jobs; a job whose cancel was requested gets SIGTERM on its process group, then
  SIGKILL after a grace period; a job it no longer holds (re-queued after a long database
  outage, say) has its processes killed;
- re-queues jobs of any worker that stopped heartbeating (:func:`eoengine.platform.queue.requeue_stale`);
- every ``schedule_s`` seconds, queues the run jobs of due subscriptions (:mod:`eoengine.platform.scheduler`);
- claims jobs while fewer than ``concurrency`` run.

A database fault in a tick is logged and the tick retried with backoff: the worker never
stops for it, and an outcome it owes is kept until written. SIGTERM or SIGINT stop the worker:
its children are stopped and their jobs re-queued for the next worker.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from eoengine.errors import first_line
from eoengine.platform.db.models import Job, Project
from eoengine.platform.launcher import Attempt, Launcher, LauncherDied, set_death_signal
from eoengine.platform.queue import (
    MAX_ATTEMPTS,
    Lease,
    State,
    claim,
    finish,
    heartbeat,
    is_db_fault,
    release,
    report,
    requeue_stale,
)
from eoengine.platform.runner import ENV_ATTEMPT, ENV_DB, ENV_HOME, ENV_WORKER
from eoengine.platform.scheduler import SCHEDULE_EVERY_S
from eoengine.platform.scheduler import tick as schedule
from eoengine.platform.settings import Platform, PlatformSettings
from eoengine.platform.subscriptions import now as subscription_clock

log = logging.getLogger(__name__)
LOG_NAME = "log.txt"
ATTEMPT_ENV = {"PYTHONUNBUFFERED": "1", "EOENGINE_PROGRESS": "0"}
"""Set for every attempt process (and for the launcher that forks them)."""


def job_log(jobs_dir: Path, job_id: int) -> Path:
    """The log file of a job.

    Args:
        jobs_dir: The server's ``jobs`` folder.
        job_id: The job.

    Returns:
        ``jobs_dir/<id>/log.txt``.

    """
    return jobs_dir / str(job_id) / LOG_NAME


def die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None]:
    """A ``preexec_fn`` that has the kernel send ``sig`` to the child when its parent dies (Linux).

    Args:
        sig: The signal the child gets.

    Returns:
        The function to run in the child between fork and exec.

    """
    parent = os.getpid()
    return lambda: set_death_signal(sig, parent)


def kill_group(pgid: int, sig: int) -> None:
    """Signal a process group, if it still exists.

    Args:
        pgid: The group (a job's child leads its own: its pid).
        sig: The signal.

    """
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass
class Running:
    """A job this worker runs: its lease, its process (forked by the launcher, or a fresh one), and when its stop began.

    Attributes:
        lease: The attempt.
        proc: Its process.
        cancel: Whether it is stopped for a cancel.
        term_at: When it got SIGTERM (or recorded its outcome), for the escalation to SIGKILL.
        reported: Whether its pid is in the job's row (a launcher reports the pid of a fork a moment later).

    """

    lease: Lease
    proc: subprocess.Popen[bytes] | Attempt
    cancel: bool = False
    term_at: float | None = None
    reported: bool = False

    def signal(self, sig: int) -> None:
        """Signal the attempt's process group.

        Args:
            sig: The signal.

        """
        if isinstance(self.proc, Attempt):
            self.proc.signal_group(sig)
        else:
            kill_group(self.proc.pid, sig)


@dataclass
class Worker:
    """Claims and runs jobs until stopped (see the module docs).

    Attributes:
        platform: The settings (home, database, ``stale_after_s``) and the database.
        concurrency: Jobs run at once.
        name: The worker's unique name (default: host, process id and a random suffix).
        poll_s: Seconds between ticks.
        grace_s: Seconds between SIGTERM and SIGKILL when a job is stopped.
        max_attempts: Starts of a job before a worker that stops answering fails it.
        warm: Fork attempts from a preloaded launcher (:mod:`eoengine.platform.launcher`); False: a fresh
            ``python -m eoengine.platform.runner`` per attempt, as also when the launcher does not start.
        ready_s: Seconds a launcher gets to start.
        schedule_s: Seconds between ticks of the subscription scheduler (0: this worker schedules nothing).

    """

    platform: Platform
    concurrency: int = 1
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}")
    poll_s: float = 0.25
    grace_s: float = 10.0
    max_attempts: int = MAX_ATTEMPTS
    warm: bool = True
    ready_s: float = 60.0
    schedule_s: float = SCHEDULE_EVERY_S
    launcher: Launcher | None = None
    running: dict[int, Running] = field(default_factory=dict)
    owed: list[tuple[Lease, State, dict[str, str] | None]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    _last_beat: float = 0.0
    _last_schedule: float = float("-inf")

    @property
    def beat_s(self) -> float:
        """Seconds between heartbeats: a fifth of the time after which a worker counts as gone."""
        return max(0.2, self.platform.settings.stale_after_s / 5)

    def run(self) -> None:
        """Claim and run jobs until :attr:`stop` is set (SIGTERM/SIGINT set it when run in the main thread)."""
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self.stop.set())
        log.info("worker %s: %d job(s) at once on %s", self.name, self.concurrency, self.platform.db.dialect)
        wait = self.poll_s
        while not self.stop.is_set():
            try:
                self.tick()
                wait = self.poll_s
            except Exception as exc:  # noqa: BLE001 - the worker outlives database faults (and its own bugs)
                what = "the database is unreachable" if is_db_fault(exc) else "unexpected error"
                log.warning("worker %s: %s (%s: %s); again in %.1f s", self.name, what, type(exc).__name__,
                            first_line(exc), wait)
                wait = min(max(wait * 2, 0.5), 10.0)
            self.stop.wait(wait)
        self.shutdown()

    def tick(self) -> None:
        """One round: reap, pay owed outcomes, report pids, heartbeat, re-queue stale jobs, schedule, claim."""
        self._reap()
        self._report_pids()
        while self.owed:
            owed, state, error = self.owed[0]
            finish(self.platform.db, owed, state, error=error)
            self.owed.pop(0)
        now = time.monotonic()
        if now - self._last_beat >= self.beat_s:
            self._beat()
            requeue_stale(self.platform.db, self.platform.settings.stale_after_s, self.max_attempts)
            self._last_beat = now
        self._escalate()
        if self.schedule_s and now - self._last_schedule >= self.schedule_s:
            self._last_schedule = now
            schedule(self.platform.db, subscription_clock(), self.platform.settings.subscription_poll_s)
        if len(self.running) < self.concurrency:
            self._launcher()  # (re)started before a claim: its start does not hold up the claimed job's heartbeats
        while len(self.running) < self.concurrency and not self.stop.is_set():
            lease = claim(self.platform.db, self.name)
            if lease is None:
                break
            self._start(lease)

    def _reap(self) -> None:
        for job_id, run in list(self.running.items()):
            code = run.proc.poll()
            if code is None:
                continue
            del self.running[job_id]
            run.signal(signal.SIGKILL)  # whatever it left behind
            if run.cancel:
                self.owed.append((run.lease, "cancelled", None))
                continue
            # a child that recorded its outcome left nothing to write: the fenced finish below is then a no-op
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            self.owed.append((run.lease, "failed", {
                "error": f"the job's process {how} before it recorded an outcome",
                "fix": f"read its log (GET /api/v1/jobs/{job_id}/log): out of memory? a crash? then submit it again"}))

    def _beat(self) -> None:
        states = heartbeat(self.platform.db, [r.lease for r in self.running.values()])
        for job_id, state in states.items():
            run = self.running.get(job_id)
            if run is None or run.proc.poll() is not None:  # ended since the reaping: reaped next tick
                continue
            if state == "done" and run.term_at is None:  # outcome recorded: it gets the grace period to exit
                run.term_at = time.monotonic()
            elif state == "lost":
                log.warning("job %s is no longer held by %s: stopping its processes", job_id, self.name)
                run.signal(signal.SIGKILL)
                run.proc.wait()
                del self.running[job_id]
            elif state == "cancel" and not run.cancel:
                log.info("job %s: cancel requested; stopping its processes", job_id)
                run.cancel, run.term_at = True, time.monotonic()
                run.signal(signal.SIGTERM)

    def _escalate(self) -> None:
        now = time.monotonic()
        for run in self.running.values():
            if run.term_at is not None and now - run.term_at > self.grace_s and run.proc.poll() is None:
                run.signal(signal.SIGKILL)

    def _start(self, lease: Lease) -> None:
        settings = self.platform.settings
        with self.platform.db.read() as session:
            slug = session.scalar(select(Project.slug).join(Job, Job.project_id == Project.id)
                                  .where(Job.id == lease.job_id))
        folder = settings.projects_dir / (slug or "")
        path = job_log(settings.jobs_dir, lease.job_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        env = os.environ | {ENV_DB: self.platform.db.url, ENV_HOME: str(settings.home), ENV_WORKER: lease.worker,
                            ENV_ATTEMPT: str(lease.attempt), **ATTEMPT_ENV}
        with path.open("ab") as out:
            out.write(f"== attempt {lease.attempt} on {lease.worker} at {time.strftime('%Y-%m-%d %H:%M:%S')} ==\n"
                      .encode())
        self.running[lease.job_id] = Running(lease, self._spawn(lease.job_id, folder if folder.is_dir() else
                                                                 settings.home, env, path))
        self._report_pids()

    def _spawn(self, job_id: int, cwd: Path, env: dict[str, str], path: Path) -> subprocess.Popen[bytes] | Attempt:
        """An attempt's process: forked by the launcher (a new one if it died meanwhile), or a fresh one."""
        for _ in range(2):
            launcher = self._launcher()
            if launcher is None:
                break
            try:
                attempt = launcher.launch(job_id, cwd, env, path)
            except LauncherDied:
                continue
            launcher.pump(0.5)  # its pid, which comes in milliseconds unless the launcher is busy importing
            return attempt
        with path.open("ab") as out:
            return subprocess.Popen([sys.executable, "-m", "eoengine.platform.runner", str(job_id)], cwd=cwd, env=env,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True,
                                    preexec_fn=die_with_parent())  # the loop is one thread: preexec_fn is safe

    def _launcher(self) -> Launcher | None:
        """The launcher to fork the next attempt, (re)started if need be; None: attempts start as fresh processes."""
        if not self.warm:
            return None
        if self.launcher is not None and self.launcher.alive:
            return self.launcher
        if self.launcher is not None:
            log.warning("worker %s: its launcher died; starting a new one", self.name)
        self.launcher = Launcher(os.environ | ATTEMPT_ENV)
        if not self.launcher.wait_ready(self.ready_s):
            log.warning("worker %s: the launcher did not start within %.0f s: attempts start as fresh processes",
                        self.name, self.ready_s)
            self.warm, self.launcher = False, None
        return self.launcher

    def _report_pids(self) -> None:
        """Write into the job rows the pids the launcher reported since the last time."""
        for run in self.running.values():
            if not run.reported and run.proc.pid is not None:
                report(self.platform.db, run.lease, pid=run.proc.pid)
                run.reported = True
                log.info("job %s attempt %s: started (pid %s)", run.lease.job_id, run.lease.attempt, run.proc.pid)

    def shutdown(self) -> None:
        """Stop the children (SIGTERM, then SIGKILL after the grace period) and re-queue their jobs."""
        for run in self.running.values():
            run.signal(signal.SIGTERM)
        end = time.monotonic() + self.grace_s
        for run in self.running.values():
            try:
                run.proc.wait(max(0.0, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                run.signal(signal.SIGKILL)
                run.proc.wait()
        for run in self.running.values():
            try:
                if run.cancel:
                    finish(self.platform.db, run.lease, "cancelled")
                else:
                    release(self.platform.db, run.lease, f"its worker {self.name} stopped")
            except Exception as exc:  # noqa: BLE001 - the database is gone: the jobs are re-queued once stale
                log.warning("job %s not re-queued (%s): it will be once its heartbeat is stale", run.lease.job_id, exc)
        self.running.clear()
        if self.launcher is not None:
            self.launcher.close(self.grace_s)
            self.launcher = None
        self.platform.db.dispose()


def start_worker_process(settings: PlatformSettings, concurrency: int = 1) -> subprocess.Popen[bytes]:
    """Start ``eoengine worker`` for a server (its embedded worker), stopped by SIGTERM when the server dies.

    The database URL goes through the environment (``EOENGINE_DB``), not the command line,
    where any user of the machine could read its password.

    Args:
        settings: The server's settings.
        concurrency: Jobs the worker runs at once.

    Returns:
        The worker process.

    """
    cmd = [sys.executable, "-m", "eoengine", "worker", "--home", str(settings.home), "--concurrency", str(concurrency),
           "--stale-after", str(settings.stale_after_s)] + (["--allow-custom-code"] if settings.custom_code else [])
    return subprocess.Popen(cmd, env=os.environ | {ENV_DB: settings.database_url}, stdin=subprocess.DEVNULL,
                            preexec_fn=die_with_parent(signal.SIGTERM))  # the server's main thread starts it


def stop_process(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM a process, then SIGKILL it if it has not ended after ``grace_s`` seconds.

    Args:
        proc: The process.
        grace_s: Seconds it gets to end by itself.

    """
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
