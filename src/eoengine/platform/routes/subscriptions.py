"""Subscriptions of a project: created (checked inside the project), listed, paused, resumed, cancelled, run now.

Reads need the read role; creating, pausing, resuming and running need run (reviewer); cancelling
is for the subscription's creator (reviewer or higher) or a project admin. Each change is an event.
Specs are shown with their webhook secrets masked. See :mod:`eoengine.platform.subscriptions` for
the checks and the states, :mod:`eoengine.platform.scheduler` for when runs are queued.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from eoengine.errors import Conflict, Denied, Invalid, NotFound, first_line
from eoengine.models.meta import META
from eoengine.platform.browse import project_config, project_folder
from eoengine.platform.db.models import Subscription, SubscriptionRun, User
from eoengine.platform.deps import DbSession, ProjectAccess, Reader, RowId, Runner, platform_of
from eoengine.platform.events import record
from eoengine.platform.routes.jobs import confine_path, job_out
from eoengine.platform.routes.runs import MODEL_FIX, RUN_FIX, project_store
from eoengine.platform.scheduler import enqueue_run, run_jobs
from eoengine.platform.schemas import DeliveryOut, JobOut, SubscriptionIn, SubscriptionOut, SubscriptionRunOut
from eoengine.platform.subscriptions import (
    SOURCE_PROJECT,
    STATES,
    first_due,
    now,
    public_spec,
    runnable,
    server_spec,
    start_state,
    transition,
)
from eoengine.subscriptions.spec import SubscriptionSpec
from eoengine.subscriptions.state import DryRun, RunRecord, SubscriptionState

router = APIRouter(prefix="/projects/{slug}/subscriptions", tags=["subscriptions"])
STAC_ROOTS = ("catalog.json", "collection.json", "*/collection.json")
"""What a static catalog folder holds at its top (what :class:`eoengine.sourcing.catalog.CatalogIndex` reads)."""
LIST_FIX = "list the project's subscriptions (GET /api/v1/projects/SLUG/subscriptions)"
SubState = Literal["pending", "active", "suspended", "completed", "cancelled", "failed"]
assert set(STATES) == set(SubState.__args__)  # type: ignore[attr-defined]


def subscription_out(session: Session, sub: Subscription, slug: str) -> SubscriptionOut:
    """A subscription as the API shows it.

    Args:
        session: A database session.
        sub: The row.
        slug: Its project's slug.

    Returns:
        The response body.

    """
    runs = session.scalar(select(func.count()).where(SubscriptionRun.subscription_id == sub.id)) or 0
    busy = run_jobs(session, sub, unfinished=True)
    creator = session.scalar(select(User.username).where(User.id == sub.created_by)) if sub.created_by else None
    return SubscriptionOut(id=sub.id, project=slug, name=sub.name, spec=public_spec(sub.spec), state=sub.state,
                           next_due=sub.next_due, last_due=sub.last_due, failures=sub.failures, runs=runs,
                           active_job=busy[0].id if busy else None, created_by=creator, created_at=sub.created_at,
                           updated_at=sub.updated_at)


def _check_model(spec: SubscriptionSpec, request: Request, access: ProjectAccess, session: Session, root: Path) -> None:
    """The model must exist in the project now: a registry version or alias, a run, or a package folder (else a 422)."""
    from eoengine.deploy.registry import registry_version
    from eoengine.tracking.runs import get_run

    ref, slug = spec.model, access.project.slug
    if not ref.startswith(("models:/", "runs:/")):
        confine_path(root, "model", ref)
        if not ((root / ref) / META).is_file():
            raise Invalid(f"model: {ref} is not a model package folder of the project (it has no {META})",
                          "name a registered model (models:/NAME@ALIAS), a run (runs:/ID) or a package folder of it")
        return
    uri, _, exists = project_store(request, access, session)
    look: Callable[[], object]
    if ref.startswith("models:/"):
        problem, fix = f"model: {ref} is not in project {slug!r}'s registry (no such model, version or alias)", MODEL_FIX
        look = lambda: registry_version(ref, uri)  # noqa: E731
    else:
        problem, fix = f"model: {ref} names no run of project {slug!r}", RUN_FIX
        look = lambda: get_run(uri, ref.removeprefix("runs:/").split("/")[0])  # noqa: E731
    try:
        if not exists:
            raise NotFound(problem, fix)
        look()
    except NotFound:
        raise Invalid(problem, fix) from None


def checked_spec(data: dict[str, object], request: Request, access: ProjectAccess, session: Session) -> SubscriptionSpec:
    """A submitted spec, checked and confined to the project (see :mod:`eoengine.platform.subscriptions`).

    Args:
        data: The spec as sent.
        request: The request (for the settings).
        access: The project and caller.
        session: The request's session.

    Returns:
        The spec.

    Raises:
        Invalid: A bad spec, a path outside the project, or a model the project does not have.

    """
    try:
        spec = server_spec(data)
    except Invalid as exc:
        raise Invalid(exc.problem, exc.fix) from None
    root = (platform_of(request).settings.projects_dir / access.project.slug).resolve()
    if spec.source != SOURCE_PROJECT:
        confine_path(root, "source", spec.source)
        folder = root / spec.source
        if "://" not in spec.source and not any(next(folder.glob(name), None) for name in STAC_ROOTS):
            raise Invalid(f"source: {spec.source} is no STAC catalog folder of the project (no {' or '.join(STAC_ROOTS)})",
                          "leave source out to use the project's imagery, or give a STAC API URL")
    _check_model(spec, request, access, session, root)
    return spec


def find_subscription(session: Session, access: ProjectAccess, sub_id: int, lock: bool = False) -> Subscription:
    """A subscription of the project.

    Args:
        session: The request's session.
        access: The project and caller.
        sub_id: The subscription.
        lock: Lock its row for a change.

    Returns:
        The row.

    Raises:
        NotFound: The project has no such subscription.

    """
    query = select(Subscription).where(Subscription.id == sub_id, Subscription.project_id == access.project.id)
    sub = session.scalar(query.with_for_update() if lock else query)
    if sub is None:
        raise NotFound(f"no subscription {sub_id} in project {access.project.slug!r}", LIST_FIX)
    return sub


@router.post("", response_model=SubscriptionOut, status_code=201)
def create_subscription(body: SubscriptionIn, access: Runner, request: Request, session: DbSession) -> SubscriptionOut:
    """Create a subscription: checked now (area, cadence, dates, model in the project's registry, source), then scheduled."""
    spec = checked_spec(body.spec, request, access, session)
    at = now()
    stored = spec.model_dump(mode="json")
    sub = Subscription(project_id=access.project.id, name=spec.name, spec=stored, state=start_state(spec, at),
                       next_due=first_due(spec, at), created_by=access.user_id, created_at=at, updated_at=at)
    taken = Conflict(f"project {access.project.slug!r} has a subscription named {spec.name!r} already",
                     "choose another name (names stay taken by cancelled subscriptions too)")
    if session.scalar(select(Subscription.id).where(Subscription.project_id == access.project.id,
                                                    Subscription.name == spec.name)) is not None:
        raise taken
    try:
        with session.begin_nested():  # a create racing this one: the unique constraint decides
            session.add(sub)
    except IntegrityError:
        raise taken from None
    record(session, "subscription.create", "subscription", sub.id, actor_id=access.user_id,
           project_id=access.project.id, data={"spec": public_spec(stored)})
    return subscription_out(session, sub, access.project.slug)


@router.get("", response_model=list[SubscriptionOut])
def list_subscriptions(access: Reader, session: DbSession, state: SubState | None = None) -> list[SubscriptionOut]:
    """A project's subscriptions, newest first (``?state=`` for one state)."""
    query = select(Subscription).where(Subscription.project_id == access.project.id).order_by(Subscription.id.desc())
    if state is not None:
        query = query.where(Subscription.state == state)
    return [subscription_out(session, sub, access.project.slug) for sub in session.scalars(query)]


@router.get("/{sub_id}", response_model=SubscriptionOut)
def get_subscription(sub_id: RowId, access: Reader, session: DbSession) -> SubscriptionOut:
    """A subscription: its spec, state, schedule, run count and active job."""
    return subscription_out(session, find_subscription(session, access, sub_id), access.project.slug)


def _change(access: ProjectAccess, session: Session, sub_id: int, action: str) -> SubscriptionOut:
    sub = find_subscription(session, access, sub_id, lock=True)
    before = transition(sub, action, now())
    record(session, f"subscription.{action}", "subscription", sub.id, actor_id=access.user_id,
           project_id=access.project.id, data={"from": before, "to": sub.state})
    session.flush()
    return subscription_out(session, sub, access.project.slug)


@router.post("/{sub_id}/pause", response_model=SubscriptionOut)
def pause_subscription(sub_id: RowId, access: Runner, session: DbSession) -> SubscriptionOut:
    """Suspend a pending or active subscription (409 from any other state): nothing is fired until it resumes."""
    return _change(access, session, sub_id, "pause")


@router.post("/{sub_id}/resume", response_model=SubscriptionOut)
def resume_subscription(sub_id: RowId, access: Runner, session: DbSession) -> SubscriptionOut:
    """Resume a suspended (or failed) subscription; a due time missed meanwhile fires once."""
    return _change(access, session, sub_id, "resume")


@router.post("/{sub_id}/cancel", response_model=SubscriptionOut)
def cancel_subscription(sub_id: RowId, access: Reader, session: DbSession) -> SubscriptionOut:
    """Cancel a subscription for good (its creator, reviewer or higher, or a project admin); its outputs stay."""
    sub = find_subscription(session, access, sub_id)
    if not ((sub.created_by == access.user_id and access.allows("run")) or access.allows("manage")):
        raise Denied(f"your role on {access.project.slug!r} ({access.role}) may not cancel subscription {sub_id}",
                     "its creator (reviewer or higher) or a project admin may cancel it")
    return _change(access, session, sub_id, "cancel")


@router.post("/{sub_id}/run", response_model=JobOut, status_code=201)
def run_now(sub_id: RowId, access: Runner, session: DbSession) -> JobOut:
    """Run now: queue a run job of an active subscription (409 while one is queued or running, or when not active)."""
    sub = find_subscription(session, access, sub_id, lock=True)
    if sub.state != "active":
        raise Conflict(f"subscription {sub_id} is {sub.state}: only an active subscription runs",
                       "resume it first" if sub.state in ("suspended", "failed") else
                       "wait for its start" if sub.state == "pending" else "create a new subscription")
    busy = run_jobs(session, sub, unfinished=True)
    if busy:
        raise Conflict(f"subscription {sub_id} has run job {busy[0].id} {busy[0].state} already",
                       f"wait for it to finish (GET /api/v1/jobs/{busy[0].id})")
    job = enqueue_run(session, sub, now(), "manual", access.user_id)
    return job_out(job, access.project.slug, access.caller.user.username)


def _dry_run(spec: SubscriptionSpec, state: SubscriptionState, request: Request, access: ProjectAccess,
             session: Session) -> DryRun:
    """What running ``spec`` now would do, from the catalog's metadata (nothing fetched or written)."""
    from mlflow.exceptions import MlflowException

    from eoengine.platform.imagery import CATALOG
    from eoengine.platform.routes.imagery import catalog_of
    from eoengine.subscriptions.dryrun import dry_run

    if spec.source == SOURCE_PROJECT:
        catalog_of(request, access.project, session)  # brought up to date, as a run does first
    uri, _, _ = project_store(request, access, session)
    cfg = project_config(request, access.project)
    try:
        return dry_run(runnable(spec, project_folder(request, access.project), cfg.output_path / CATALOG), state, now(),
                       uri)
    except MlflowException as exc:  # a registry version whose files are gone
        raise NotFound(f"model: the files of {spec.model} cannot be read from the registry ({first_line(exc)})",
                       "register a version that holds a model package, or point the alias at one") from None


@router.post("/dry-run", response_model=DryRun)
def dry_run_spec(body: SubscriptionIn, access: Runner, request: Request, session: DbSession) -> DryRun:
    """What a new subscription would do if it ran now: periods, scenes, tiles, compute and storage estimates (not stored)."""
    spec = checked_spec(body.spec, request, access, session)
    return _dry_run(spec, SubscriptionState(), request, access, session)


@router.post("/{sub_id}/dry-run", response_model=DryRun)
def dry_run_subscription(sub_id: RowId, access: Runner, request: Request, session: DbSession) -> DryRun:
    """What a subscription's next run would do now, from its stored state (nothing runs)."""
    sub = find_subscription(session, access, sub_id)
    spec, state = SubscriptionSpec.model_validate(sub.spec), SubscriptionState.model_validate(sub.run_state)
    return _dry_run(spec, state, request, access, session)


def _runs(session: Session, sub: Subscription, limit: int) -> list[SubscriptionRun]:
    return list(session.scalars(select(SubscriptionRun).where(SubscriptionRun.subscription_id == sub.id)
                                .order_by(SubscriptionRun.id.desc()).limit(limit)))


@router.get("/{sub_id}/runs", response_model=list[SubscriptionRunOut])
def list_runs(sub_id: RowId, access: Reader, session: DbSession,
              limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[SubscriptionRunOut]:
    """A subscription's recorded runs, newest first."""
    runs = _runs(session, find_subscription(session, access, sub_id), limit)
    return [SubscriptionRunOut(id=r.id, key=r.key, due=r.due, job_id=r.job_id, status=r.status, record=RunRecord.model_validate(r.record),
                               created_at=r.created_at) for r in runs]


@router.get("/{sub_id}/deliveries", response_model=list[DeliveryOut])
def list_deliveries(sub_id: RowId, access: Reader, session: DbSession,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[DeliveryOut]:
    """The webhook deliveries of a subscription's runs, newest run first."""
    runs = _runs(session, find_subscription(session, access, sub_id), limit)
    return [DeliveryOut(run_id=r.id, run_key=r.key, delivery=d) for r in runs
            for d in RunRecord.model_validate(r.record).deliveries]

