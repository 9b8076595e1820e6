"""The job queue, kept in the platform's database: claim, heartbeat, fenced finish, cancel, re-queue.

A worker *claims* the oldest queued job in one write transaction: PostgreSQL locks the row
with ``FOR UPDATE SKIP LOCKED``, so workers on several machines never take the same job;
SQLite's write transactions begin ``IMMEDIATE``, so claims happen one at a time. A claim
makes a :class:`Lease` — the job, the worker's name and the attempt number — and every later
write of that attempt (progress, heartbeat, outcome) applies only while the row still holds
that lease. That is the fence: once a job whose worker stopped heartbeating is re-queued and
claimed again, a stale worker's late writes change nothing.

Database faults are survived by :func:`retrying`: the outcome of a job is written until the
database answers again (bounded), so a brief outage loses no result.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from sqlalchemy import exists, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from eoengine.errors import Conflict
from eoengine.platform.db.engine import Database
from eoengine.platform.db.models import Job, utcnow
from eoengine.platform.events import record

log = logging.getLogger(__name__)

State = Literal["queued", "running", "succeeded", "failed", "cancelled"]
STATES: tuple[State, ...] = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED = frozenset({"succeeded", "failed", "cancelled"})
MAX_ATTEMPTS = 3
"""Starts of a job before a worker that stops answering fails it instead of re-queueing it."""
T = TypeVar("T")


@dataclass(frozen=True)
class Lease:
    """One attempt of a job by one worker: every write of the attempt is fenced by it."""

    job_id: int
    worker: str
    attempt: int


def _held(lease: Lease) -> tuple[Any, ...]:
    """The conditions under which a job row still belongs to ``lease``."""
    return (Job.id == lease.job_id, Job.worker == lease.worker, Job.attempts == lease.attempt, Job.state == "running")


def is_db_fault(exc: BaseException) -> bool:
    """Whether an error is the database being unreachable or busy (worth retrying), not a bad statement.

    Args:
        exc: The error.

    Returns:
        True for a lost or refused connection, a timeout, a locked SQLite file.

    """
    return isinstance(exc, DBAPIError) and (exc.connection_invalidated or type(exc).__name__ in (
        "OperationalError", "InterfaceError"))


def retrying(action: Callable[[], T], what: str, deadline_s: float = 600.0) -> T:
    """Run ``action`` until the database answers, backing off, for at most ``deadline_s`` seconds.

    Args:
        action: What to do (one transaction).
        what: What it is, for the log.
        deadline_s: How long to keep trying.

    Returns:
        What ``action`` returned.

    Raises:
        DBAPIError: The database stayed unreachable past the deadline (or the error is no fault).

    """
    end = time.monotonic() + deadline_s
    wait = 0.25
    while True:
        try:
            return action()
        except DBAPIError as exc:
            if not is_db_fault(exc) or time.monotonic() + wait > end:
                raise
            log.warning("database unreachable while %s (%s); retrying in %.1f s", what, type(exc).__name__, wait)
            time.sleep(wait)
            wait = min(wait * 2, 10.0)


def claim(db: Database, worker: str) -> Lease | None:
    """Take the oldest queued job for ``worker``: it becomes running, with a new attempt.

    Args:
        db: The platform database.
        worker: The worker's unique name.

    Returns:
        The lease of the claimed attempt, or None when nothing is queued.

    """
    with db.read() as session:  # a cheap look first: SQLite's write lock only when there is work
        if not session.scalar(select(exists().where(Job.state == "queued"))):
            return None
    with db.write() as session:
        job = session.scalar(select(Job).where(Job.state == "queued").order_by(Job.id).limit(1)
                             .with_for_update(skip_locked=True))
        if job is None:
            return None
        now = utcnow()
        job.state, job.worker, job.attempts, job.pid = "running", worker, job.attempts + 1, None
        job.started_at = job.heartbeat_at = now
        record(session, "job.start", "job", job.id, actor_id=None, project_id=job.project_id,
               data={"worker": worker, "attempt": job.attempts})
        return Lease(job.id, worker, job.attempts)


def heartbeat(db: Database, leases: list[Lease]) -> dict[int, str]:
    """Mark the worker's jobs alive, and learn which were cancelled or taken from it.

    Args:
        db: The platform database.
        leases: The attempts the worker runs.

    Returns:
        Per job id: ``held``, ``cancel`` (held, cancel requested), ``done`` (this attempt recorded its
        outcome; its process is on its way out) or ``lost`` (re-queued, or taken by another attempt).

    """
    if not leases:
        return {}
    found: dict[int, str] = {}
    with db.write() as session:
        for lease in leases:
            cancel = session.execute(update(Job).where(*_held(lease)).values(heartbeat_at=utcnow())
                                     .returning(Job.cancel_requested)).scalar()
            if cancel is None:
                ended = session.scalar(select(Job.id).where(Job.id == lease.job_id, Job.worker == lease.worker,
                                                            Job.attempts == lease.attempt, Job.state.in_(FINISHED)))
                found[lease.job_id] = "done" if ended is not None else "lost"
            else:
                found[lease.job_id] = "cancel" if cancel else "held"
    return found


def report(db: Database, lease: Lease, **values: Any) -> bool:
    """Write fields of a running attempt (``progress``, ``resume``, ``pid``) if it still holds the job.

    Args:
        db: The platform database.
        lease: The attempt.
        **values: Job columns to set.

    Returns:
        Whether the attempt still holds the job.

    """
    with db.write() as session:
        done = session.execute(update(Job).where(*_held(lease)).values(**values).returning(Job.id)).scalar()
    return done is not None


def finish(db: Database, lease: Lease, state: State, result: dict[str, Any] | None = None,
           error: dict[str, str] | None = None, on_success: Callable[[Session, Job], object] | None = None) -> bool:
    """Record an attempt's outcome, if the attempt still holds its job (else nothing changes).

    Args:
        db: The platform database.
        lease: The attempt.
        state: ``succeeded``, ``failed`` or ``cancelled``.
        result: The job's result (JSON) when it succeeded.
        error: ``{"error", "fix"}`` when it failed.
        on_success: Called in the same transaction when it succeeded (indexes the outputs).

    Returns:
        True when recorded; False when the attempt no longer held the job (a stale worker).

    """
    with db.write() as session:
        job = session.scalar(select(Job).where(*_held(lease)).with_for_update())
        if job is None:
            return False
        _close(session, job, state, error, result, on_success)
    return True


def release(db: Database, lease: Lease, reason: str) -> bool:
    """Put a running attempt's job back in the queue (its worker is stopping), if the attempt still holds it.

    Args:
        db: The platform database.
        lease: The attempt.
        reason: Why, for the event log.

    Returns:
        Whether the job was re-queued.

    """
    with db.write() as session:
        job = session.scalar(select(Job).where(*_held(lease)).with_for_update())
        if job is None:
            return False
        _requeue(session, job, reason)
    return True


def _requeue(session: Session, job: Job, reason: str) -> None:
    record(session, "job.requeue", "job", job.id, actor_id=None, project_id=job.project_id,
           data={"worker": job.worker, "attempt": job.attempts, "reason": reason})
    job.state, job.worker, job.pid, job.heartbeat_at = "queued", None, None, None


def requeue_stale(db: Database, stale_after_s: float, max_attempts: int = MAX_ATTEMPTS) -> list[int]:
    """Re-queue running jobs whose worker stopped heartbeating; fail those started ``max_attempts`` times.

    A job whose cancel was requested is cancelled instead: its worker is gone, so is its process.

    Args:
        db: The platform database.
        stale_after_s: Seconds without a heartbeat after which a worker counts as gone.
        max_attempts: Starts after which the job fails rather than starting again.

    Returns:
        The ids of the jobs re-queued, failed or cancelled.

    """
    cutoff = utcnow() - dt.timedelta(seconds=stale_after_s)
    with db.read() as session:
        if not session.scalar(select(exists().where(Job.state == "running", Job.heartbeat_at < cutoff))):
            return []
    changed = []
    with db.write() as session:
        jobs = session.scalars(select(Job).where(Job.state == "running", Job.heartbeat_at < cutoff)
                               .with_for_update(skip_locked=True)).all()
        for job in jobs:
            changed.append(job.id)
            silent = f"its worker {job.worker} stopped answering (no heartbeat for {stale_after_s:g} s)"
            if job.cancel_requested:
                _close(session, job, "cancelled", None)
            elif job.attempts >= max_attempts:
                _close(session, job, "failed", {
                    "error": f"the job was started {job.attempts} times and each time {silent.removeprefix('its ')}",
                    "fix": "read the job's log for what stopped it (memory? a crash?), then submit it again"})
            else:
                _requeue(session, job, silent)
    return changed


def _close(session: Session, job: Job, state: State, error: dict[str, str] | None,
           result: dict[str, Any] | None = None, on_success: Callable[[Session, Job], object] | None = None,
           actor_id: int | None = None) -> None:
    """Finish a job (its outcome, the indexing of its outputs, the ``job.finish`` event) in one transaction."""
    job.state, job.result, job.error, job.finished_at, job.pid = state, result, error, utcnow(), None
    if state == "succeeded" and on_success is not None:
        on_success(session, job)
    record(session, "job.finish", "job", job.id, actor_id=actor_id, project_id=job.project_id,
           data={"state": state, "attempt": job.attempts, "worker": job.worker, "error": error})


def request_cancel(session: Session, job_id: int, actor_id: int) -> Job:
    """Cancel a job: a queued one at once; a running one is flagged, and its worker stops its processes.

    Args:
        session: The request's session (its transaction commits the change).
        job_id: The job.
        actor_id: Who cancels.

    Returns:
        The job as it is now.

    Raises:
        Conflict: The job has finished already.

    """
    job = session.scalar(select(Job).where(Job.id == job_id).with_for_update()
                         .execution_options(populate_existing=True))
    assert job is not None  # the caller found it
    if job.state in FINISHED:
        raise Conflict(f"job {job.id} has {job.state} already", "nothing to cancel; submit a new job to run it again")
    if job.state == "queued":
        _close(session, job, "cancelled", None, actor_id=actor_id)
    elif not job.cancel_requested:
        job.cancel_requested = True
        record(session, "job.cancel", "job", job.id, actor_id=actor_id, project_id=job.project_id,
               data={"worker": job.worker, "attempt": job.attempts})
    session.flush()
    return job
