"""Annotation quality: gold tasks and their blind copies, double-labelled cells, and per-annotator statistics.

Under ``/projects/{slug}/annotation``: a reviewer marks an accepted task gold (``POST
/tasks/{id}/gold``: a copy for each annotator, labelled blind), has a share of the set's cells
labelled twice (``POST /sets/{id}/double``), and reads the set's statistics (``GET
/sets/{id}/stats``); an annotator reads their own (``GET /sets/{id}/stats/{username}``), without
the comparisons of copies they may still change. The copies and the measures are
:mod:`eoengine.platform.annotation.copies` and :mod:`eoengine.platform.annotation.stats`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from sqlalchemy import select

from eoengine.errors import Denied, NotFound
from eoengine.platform.annotation import copies, stats, store
from eoengine.platform.annotation.schemas import AnnotatorDetailOut, DoubleIn, GoldIn, GoldOut, SetStatsOut, TaskOut
from eoengine.platform.browse import project_config
from eoengine.platform.db.models import User
from eoengine.platform.deps import Annotator, DbSession, ProjectAccess, Reviewer, RowId
from eoengine.platform.routes.annotation import _dates, _task_out

router = APIRouter(prefix="/projects/{slug}/annotation", tags=["annotation"])
Username = Annotated[str, Path(min_length=1, max_length=64, description="A member's user name")]


def _all_touched(request: Request, access: ProjectAccess) -> bool:
    """The project config's ``labels.all_touched`` (the export's and a build's rasterising)."""
    cfg = project_config(request, access.project)
    return bool(cfg.labels and cfg.labels.all_touched)


@router.post("/tasks/{task_id}/gold", response_model=GoldOut, status_code=201)
def mark_gold(task_id: RowId, body: GoldIn, access: Reviewer, request: Request, session: DbSession) -> GoldOut:
    """Mark an accepted task gold, and give each annotator named (default: every annotator but its own) a blind copy."""
    task, aset = store.get_task(session, access.project.id, task_id)
    made = copies.mark_gold(session, access, task, body.annotators)
    dates = _dates(request, access, session)
    return GoldOut(task=_task_out(session, task, aset, dates, access),
                   copies=[_task_out(session, c, aset, dates, access) for c in made])


@router.post("/sets/{set_id}/double", response_model=list[TaskOut], status_code=201)
def double_label(set_id: RowId, body: DoubleIn, access: Reviewer, request: Request, session: DbSession) -> list[TaskOut]:
    """Have a share of the set's cells (or the tasks listed) labelled a second time: one unassigned copy each."""
    aset = store.get_set(session, access.project.id, set_id)
    made = copies.double(session, access, aset, body.share, body.seed, body.tasks)
    dates = _dates(request, access, session)
    return [_task_out(session, c, aset, dates, access) for c in made]


@router.get("/sets/{set_id}/stats", response_model=SetStatsOut)
def set_stats(set_id: RowId, access: Reviewer, request: Request, session: DbSession) -> SetStatsOut:
    """The set's quality: tasks by state, copies, and per annotator their reviews, time, agreement and confusion."""
    aset = store.get_set(session, access.project.id, set_id)
    return stats.set_stats(session, aset, _all_touched(request, access))


@router.get("/sets/{set_id}/stats/{username}", response_model=AnnotatorDetailOut)
def annotator_stats(set_id: RowId, username: Username, access: Annotator, request: Request,
                    session: DbSession) -> AnnotatorDetailOut:
    """One annotator's stats with each comparison (a reviewer's view, or their own without copies still writable)."""
    themself = username == access.caller.user.username
    if not themself and not access.allows("review"):
        raise Denied(f"only a reviewer may read {username!r}'s statistics",
                     f"read your own (GET .../sets/{set_id}/stats/{access.caller.user.username}), or ask a reviewer")
    aset = store.get_set(session, access.project.id, set_id)
    user_id = session.scalar(select(User.id).where(User.username == username))
    if user_id is None:
        raise NotFound(f"no user {username!r}", "list the project's members: GET .../members")
    reviewer_view = access.allows("review")
    return stats.user_stats(session, aset, user_id, username, _all_touched(request, access), themself and not reviewer_view)
