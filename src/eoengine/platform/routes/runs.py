"""A project's training runs and registered models, read from its own MLflow store.

The store is the one the CLI uses for the project's config (``tracking.store.tracking_uri``
over its ``output_dir``; a project on the server may not name another), so runs trained by
a job and runs trained with ``eoengine train`` in the project folder are the same runs. The
records come from :mod:`eoengine.tracking.browse`. A project that has not trained yet has no
store: its lists are empty, and a run or model named in it is a 404. Messages name the run or
model, not the store's path on the server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Query, Request

from eoengine.errors import NotFound
from eoengine.platform.browse import project_config
from eoengine.platform.deps import DbSession, ProjectAccess, Reader
from eoengine.tracking.browse import (
    ModelDetail,
    RegisteredModelInfo,
    RunComparison,
    RunDetail,
    RunSummary,
    compare_runs,
    list_models,
    list_runs,
    model_detail,
    run_detail,
)
from eoengine.tracking.runs import local_path
from eoengine.tracking.store import tracking_uri

router = APIRouter(prefix="/projects/{slug}", tags=["runs", "models"])
RUN_FIX = "list the project's runs (GET /api/v1/projects/SLUG/runs)"
MODEL_FIX = "list the project's registered models (GET /api/v1/projects/SLUG/models)"
T = TypeVar("T")


def project_store(request: Request, access: ProjectAccess, session: DbSession) -> tuple[str, str, bool]:
    """The project's MLflow store: (tracking URI, experiment name, whether it exists yet).

    Args:
        request: The request (for the server's settings).
        access: The project and caller.
        session: The request's database session (its transaction is ended: MLflow's calls are slow).

    Returns:
        The URI, the experiment (``training.experiment``, else the project's name) and whether it exists.

    """
    session.commit()
    cfg = project_config(request, access.project)
    uri = tracking_uri(cfg.output_path, cfg.training.tracking_uri, None)
    path = local_path(uri)
    return uri, cfg.training.experiment or cfg.name, path is None or path.exists()


def named(call: Callable[[], T], problem: str, fix: str) -> T:
    """``call()``, its NotFound said without the store's path on the server.

    Args:
        call: What to call.
        problem: The problem a NotFound says instead.
        fix: Its fix.

    Returns:
        What ``call`` returns.

    Raises:
        NotFound: ``call`` raised one (with ``problem`` and ``fix``).

    """
    try:
        return call()
    except NotFound:
        raise NotFound(problem, fix) from None


@router.get("/runs", response_model=list[RunSummary])
def runs(access: Reader, request: Request, session: DbSession,
         sort: Annotated[str | None, Query(description="A final metric to order by, best first (test_miou)")] = None,
         limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> list[RunSummary]:
    """The project's runs, newest first (or best first by ``sort``), with main params and final scores."""
    uri, experiment, exists = project_store(request, access, session)
    if not exists:
        return []
    try:
        return list_runs(uri, experiment, sort, limit)
    except NotFound:  # no experiment yet: nothing trained under this project's name
        return []


@router.get("/runs/compare", response_model=RunComparison)
def compare(access: Reader, request: Request, session: DbSession,
            ids: Annotated[str, Query(description="Two or more run ids, comma-separated")]) -> RunComparison:
    """Runs side by side: the params that differ and every final metric."""
    uri, _, _ = project_store(request, access, session)  # a missing store is a NotFound of compare_runs (not made)
    wanted = [i.strip() for i in ids.split(",") if i.strip()]
    return named(lambda: compare_runs(uri, wanted), f"not every run of {', '.join(wanted)} is in project "
                  f"{access.project.slug!r}", RUN_FIX)


@router.get("/runs/{run_id}", response_model=RunDetail)
def run(run_id: str, access: Reader, request: Request, session: DbSession) -> RunDetail:
    """One run: every param, tags, per-epoch history, confusion matrices, artifacts."""
    uri, _, exists = project_store(request, access, session)
    problem = f"no run {run_id} in project {access.project.slug!r}"
    if not exists:
        raise NotFound(problem, RUN_FIX)
    return named(lambda: run_detail(uri, run_id), problem, RUN_FIX)


@router.get("/models", response_model=list[RegisteredModelInfo])
def models(access: Reader, request: Request, session: DbSession) -> list[RegisteredModelInfo]:
    """The project's registered models, with their aliases and versions."""
    uri, _, exists = project_store(request, access, session)
    return list_models(uri) if exists else []


@router.get("/models/{name}", response_model=ModelDetail)
def model(name: str, access: Reader, request: Request, session: DbSession) -> ModelDetail:
    """One registered model: its versions (with their package description), aliases and runs."""
    uri, _, exists = project_store(request, access, session)
    problem = f"no registered model {name!r} in project {access.project.slug!r}"
    if not exists:
        raise NotFound(problem, MODEL_FIX)
    return named(lambda: model_detail(uri, name), problem, MODEL_FIX)
