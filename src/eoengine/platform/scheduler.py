"""The server's own scheduler: due subscriptions become ``subscription-run`` jobs, each due time once.

It runs in every worker (:class:`eoengine.platform.worker.Worker` calls :func:`tick` every
``SCHEDULE_EVERY_S``): a worker is what every server has (``eoengine server`` starts one), and it is
already the loop that survives database faults; an API server may run as several processes. Any
number of loops may tick at once, because a firing is *claimed*: the job is inserted in the same
transaction as a conditional update of the subscription's ``next_due`` from the value the loop read,
so only one loop's update matches and the others insert nothing. The schedule is the database's
``next_due``, so it survives restarts; a due time missed while no loop ran (or several) fires once,
coalesced: the job's run covers every period due by then (the core's ``run_due``).

Each tick also moves ``pending`` subscriptions whose start came to ``active`` and ``active`` ones
whose end passed (and whose last run is done) to ``completed``. A subscription with a run job still
queued or running is not fired again until it has finished. ``each-new-scene`` subscriptions are
polled every ``poll_s`` seconds (:data:`POLL_S`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from eoengine.platform.db.engine import Database
from eoengine.platform.db.models import Job, Subscription
from eoengine.platform.events import record
from eoengine.platform.queue import FINISHED
from eoengine.subscriptions.cadence import EACH_NEW_SCENE, next_due
from eoengine.subscriptions.spec import SubscriptionSpec

KIND = "subscription-run"
POLL_S = 3600.0
"""How often an ``each-new-scene`` subscription searches for new scenes."""
SCHEDULE_EVERY_S = 5.0
"""How often a worker's scheduler ticks."""


def run_jobs(session: Session, sub: Subscription, unfinished: bool = False) -> list[Job]:
    """A subscription's run jobs, newest first (only the queued or running ones if ``unfinished``).

    Args:
        session: A database session.
        sub: The subscription.
        unfinished: Only jobs not finished yet.

    Returns:
        The jobs.

    """
    query = select(Job).where(Job.project_id == sub.project_id, Job.kind == KIND).order_by(Job.id.desc())
    if unfinished:
        query = query.where(Job.state.not_in(FINISHED))
    return [job for job in session.scalars(query) if job.spec.get("subscription") == sub.id]


def enqueue_run(session: Session, sub: Subscription, due: dt.datetime, trigger: str, actor_id: int | None) -> Job:
    """Queue a run job of a subscription (in the caller's transaction).

    Args:
        session: The session (its transaction holds the claim, if any).
        sub: The subscription.
        due: The time the run maps up to ("now" of the run).
        trigger: ``schedule`` or ``manual``.
        actor_id: Who asked (None: the scheduler).

    Returns:
        The job.

    """
    spec: dict[str, Any] = {"kind": KIND, "subscription": sub.id, "due": due.isoformat(), "trigger": trigger}
    job = Job(project_id=sub.project_id, kind=KIND, spec=spec, created_by=actor_id)
    session.add(job)
    session.flush()
    record(session, "subscription.fire", "subscription", sub.id, actor_id=actor_id, project_id=sub.project_id,
           data={"job": job.id, "due": spec["due"], "trigger": trigger})
    return job


def latest_due(spec: SubscriptionSpec, due: dt.datetime, now: dt.datetime) -> dt.datetime:
    """The last due time in ``[due, now]`` (missed ones coalesced into it); ``now`` for ``each-new-scene``."""
    if spec.cadence == EACH_NEW_SCENE:
        return now
    fired = due
    while (later := next_due(spec.cadence, fired)) is not None and later <= now:
        fired = later
    return fired


def following(spec: SubscriptionSpec, now: dt.datetime, poll_s: float) -> dt.datetime | None:
    """The next due time after a firing at ``now`` (None: none before the end)."""
    if spec.cadence == EACH_NEW_SCENE:
        after: dt.datetime | None = now + dt.timedelta(seconds=poll_s)
    else:
        after = next_due(spec.cadence, now)
    return after if after is not None and (spec.end is None or after <= spec.end) else None


def _fire(db: Database, sub_id: int, read_due: dt.datetime, now: dt.datetime, poll_s: float) -> int | None:
    """Claim one due subscription and queue its job; None when another loop claimed it first (or it is busy)."""
    with db.write() as session:
        sub = session.get(Subscription, sub_id)
        if sub is None or sub.state != "active" or run_jobs(session, sub, unfinished=True):
            return None
        spec = SubscriptionSpec.model_validate(sub.spec)
        fired = latest_due(spec, read_due, now)
        claimed = session.execute(update(Subscription).where(
            Subscription.id == sub_id, Subscription.next_due == read_due, Subscription.state == "active")
            .values(next_due=following(spec, now, poll_s), last_due=fired, updated_at=now)
            .returning(Subscription.id)).scalar()
        if claimed is None:
            return None
        return enqueue_run(session, sub, fired, "schedule", None).id


def _lifecycle(db: Database, now: dt.datetime) -> None:
    """Pending → active once started; active → completed once ended with nothing left to run."""
    with db.write() as session:
        for sub in session.scalars(select(Subscription).where(Subscription.state.in_(("pending", "active")))):
            spec = SubscriptionSpec.model_validate(sub.spec)
            if sub.state == "pending" and spec.start <= now:
                sub.state, sub.updated_at = "active", now
            elif (sub.state == "active" and spec.end is not None and spec.end < now and sub.next_due is None
                  and not run_jobs(session, sub, unfinished=True)):
                sub.state, sub.updated_at = "completed", now
            else:
                continue
            record(session, f"subscription.{sub.state}", "subscription", sub.id, actor_id=None,
                   project_id=sub.project_id, data={"at": now.isoformat()})


def tick(db: Database, now: dt.datetime, poll_s: float = POLL_S) -> list[int]:
    """One round of the scheduler: states moved on, then every due subscription fired (once).

    Args:
        db: The platform database.
        now: The current time (:func:`eoengine.platform.subscriptions.now`).
        poll_s: Seconds between searches of an ``each-new-scene`` subscription.

    Returns:
        The ids of the jobs queued.

    """
    _lifecycle(db, now)
    with db.read() as session:
        due = session.execute(select(Subscription.id, Subscription.next_due).where(
            Subscription.state == "active", Subscription.next_due <= now).order_by(Subscription.next_due)).all()
    fired = [_fire(db, sub_id, read_due, now, poll_s) for sub_id, read_due in due if read_due is not None]
    return [job for job in fired if job is not None]
