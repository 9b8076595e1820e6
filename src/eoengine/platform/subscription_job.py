"""The ``subscription-run`` job: the core's :func:`~eoengine.subscriptions.run.run_due` over the stored state.

A worker's attempt loads the subscription, brings the project's imagery catalog up to date when
the spec's source is ``project``, and runs every period due at the job's ``due`` time into
``<output_dir>/subscriptions/<id>/`` (fetched scenes cached in ``<output_dir>/subscriptions/cache``),
with the project's MLflow store for registry models. Its success writes, in the transaction that
records the job (fenced by the attempt's lease): the new run state, one ``subscription_runs`` row
per run (by run key: a run already stored is never stored twice), the failed-run count (the
subscription fails after :data:`~eoengine.platform.subscriptions.MAX_FAILURES` in a row), and each
new map in the artefact index with its lineage (model version and input scenes).

An attempt that dies (a worker crash) is run again by the queue; the core's run keys make that
resume, not repeat: a run whose folder is complete comes back ``skipped``, and the finished record
in its folder is stored instead if the first attempt did not get to store it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from eoengine.errors import NotFound
from eoengine.platform.db.models import Job, Subscription, SubscriptionRun
from eoengine.platform.events import record
from eoengine.platform.index import Output, map_outputs, relative, store_outputs
from eoengine.platform.projects import CONFIG
from eoengine.platform.subscriptions import MAX_FAILURES, SOURCE_PROJECT, SUBSCRIPTIONS_DIR, output_folder, runnable
from eoengine.subscriptions.spec import SubscriptionSpec
from eoengine.subscriptions.state import RunRecord, SubscriptionState

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from eoengine.platform.db.engine import Database
    from eoengine.platform.runner import JobReporter, OnSuccess


def _load(db: Database, job: Job) -> tuple[Subscription, SubscriptionSpec]:
    with db.read() as session:
        sub = session.get(Subscription, int(job.spec["subscription"]))
        if sub is None:
            raise NotFound(f"subscription {job.spec['subscription']} no longer exists", "nothing to run")
        session.expunge(sub)
    return sub, SubscriptionSpec.model_validate(sub.spec)


def subscription_work(db: Database, job: Job, folder: Path, reporter: JobReporter) -> tuple[dict[str, Any], OnSuccess]:
    """Run a subscription's due periods (see the module docs).

    Args:
        db: The platform database.
        job: The ``subscription-run`` job (its spec: ``subscription``, ``due``).
        folder: The project folder.
        reporter: The job's progress reporter.

    Returns:
        The job's result (the runs' keys and statuses) and what its success writes.

    Raises:
        EOError: The subscription is gone, the project's config or catalog cannot be read, or the
            cadence falls due too often (a run's own failure is a ``failed`` record, not an error).

    """
    from eoengine.config.load import load_config
    from eoengine.platform.imagery import CATALOG
    from eoengine.platform.queue import retrying
    from eoengine.platform.runner import refresh_catalog
    from eoengine.subscriptions.run import run_due
    from eoengine.tracking.store import tracking_uri

    sub, spec = _load(db, job)
    cfg = load_config(folder / CONFIG)
    if spec.source == SOURCE_PROJECT:
        retrying(lambda: refresh_catalog(db, job.project_id, folder), "reading the project's imagery")
    spec = runnable(spec, folder, cfg.output_path / CATALOG)
    uri = tracking_uri(cfg.output_path, cfg.training.tracking_uri, None)
    out = output_folder(cfg.output_path, sub.id)
    due = dt.datetime.fromisoformat(job.spec["due"])
    state = SubscriptionState.model_validate(sub.run_state)
    new_state, records = run_due(spec, state, out, cfg.output_path / SUBSCRIPTIONS_DIR / "cache", due, reporter, uri)
    stored = [_finished(out, r) for r in records]
    body = {"subscription": sub.id, "due": job.spec["due"],
            "runs": [{"key": r.key, "status": r.status, "period_start": r.period_start.isoformat(),
                      "period_end": r.period_end.isoformat()} for r in stored]}

    def on_success(session: Session, row: Job) -> None:
        store_runs(session, row, sub.id, new_state, stored, folder, uri)

    return body, on_success


def _finished(out: Path, rec: RunRecord) -> RunRecord:
    """A skipped run's finished record (an earlier attempt made it), else the record itself."""
    from eoengine.subscriptions.outputs import finished_record

    if rec.status == "skipped" and rec.key:
        return finished_record(out, rec.key) or rec
    return rec


def _shown(rec: RunRecord, folder: Path) -> RunRecord:
    """A record with its paths relative to the project folder (as the artefact index keeps them)."""
    paths: dict[str, Any] = {name: relative(value, folder) for name in ("map_path", "item_path")
             if (value := getattr(rec, name)) is not None}
    if rec.change is not None:
        paths["change"] = rec.change.model_copy(update={"polygons": relative(rec.change.polygons, folder)})
    return rec.model_copy(update=paths)


def _row_key(rec: RunRecord, job_id: int) -> str:
    """A run's row key: its run key; a run without one (no imagery, failed before its scenes) its period and job."""
    return rec.key or f"{rec.status}:{rec.period_start.isoformat()}/{rec.period_end.isoformat()}:job{job_id}"


def store_runs(session: Session, job: Job, sub_id: int, state: SubscriptionState, records: list[RunRecord],
               folder: Path, uri: str | None) -> None:
    """Write a run job's outcome (see the module docs), in the transaction that records the job.

    Args:
        session: The transaction.
        job: The job.
        sub_id: Its subscription.
        state: The state ``run_due`` returned.
        records: The runs' records (skipped ones replaced by their finished records where found).
        folder: The project folder.
        uri: The project's MLflow tracking URI (a registry model's lineage).

    """
    sub = session.scalar(select(Subscription).where(Subscription.id == sub_id).with_for_update())
    if sub is None:
        return
    known = set(session.scalars(select(SubscriptionRun.key).where(SubscriptionRun.subscription_id == sub_id)))
    maps: list[Output] = []
    for rec in records:
        key = _row_key(rec, job.id)
        if rec.status in ("succeeded", "failed"):
            sub.failures = 0 if rec.status == "succeeded" else sub.failures + 1
        if key in known:
            continue
        known.add(key)
        shown = _shown(rec, folder)
        session.add(SubscriptionRun(subscription_id=sub_id, key=key, due=dt.datetime.fromisoformat(job.spec["due"]),
                                    job_id=job.id, status=rec.status, record=shown.model_dump(mode="json")))
        if rec.status == "succeeded" and shown.map_path:
            maps += map_outputs([Path(shown.map_path)], rec.model, folder, uri, rec.scene_ids, action="subscription.map",
                                meta={"subscription": sub_id, "run_key": rec.key, "model_version": rec.model_version})
    sub.run_state = state.model_dump(mode="json")
    if sub.failures >= MAX_FAILURES and sub.state == "active":
        sub.state = "failed"
        record(session, "subscription.failed", "subscription", sub_id, actor_id=None, project_id=sub.project_id,
               data={"failures": sub.failures, "job": job.id})
    store_outputs(session, job, maps)
