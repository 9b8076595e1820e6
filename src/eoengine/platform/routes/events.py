"""The event log, read: who changed what and when, filtered by project and object."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import ColumnElement, select, true

from eoengine.errors import Invalid
from eoengine.platform.db.models import Event, Membership, Project, User
from eoengine.platform.deps import ROW_ID_MAX, CurrentCaller, DbSession, Reader, find_project
from eoengine.platform.lineage import lineage
from eoengine.platform.roles import ROLES, allows
from eoengine.platform.schemas import EventOut, Lineage

router = APIRouter(tags=["events"])
OBJECT_FIX = "name it as TYPE:ID, e.g. project:nc-landcover, job:12, dataset:nc-landcover@4d47e74fa4e7"


def parse_object(text: str) -> tuple[str, str]:
    """``TYPE:ID`` → (type, id).

    Raises:
        Invalid: No colon, or an empty part.

    """
    kind, _, ident = text.partition(":")
    if not kind or not ident:
        raise Invalid(f"object {text!r} is not TYPE:ID", OBJECT_FIX)
    return kind, ident


REVIEWERS_ONLY = ("task.gold", "task.double")
"""Events that would tell an annotator which cells measure them (gold and double-labelled copies)."""


def _visible(caller: CurrentCaller) -> ColumnElement[bool]:
    """Events a caller may see: a site admin all; others those of their projects and their own.

    In a project where the caller may not review, the events that make gold and double copies
    are left out, so the known answers stay hidden among the normal tasks.
    """
    if caller.user.is_admin:
        return true()
    mine = select(Membership.project_id).where(Membership.user_id == caller.user.id)
    reviewing = [r for r in ROLES if allows(r, "review")]
    review = mine.where(Membership.role.in_(reviewing))
    return ((Event.project_id.in_(mine) & (Event.project_id.in_(review) | Event.action.not_in(REVIEWERS_ONLY)))
            | ((Event.project_id.is_(None)) & (Event.actor_id == caller.user.id)))


@router.get("/events", response_model=list[EventOut])
def list_events(session: DbSession, caller: CurrentCaller,
                project: Annotated[str | None, Query(description="A project's slug")] = None,
                object: Annotated[str | None, Query(description="TYPE:ID, e.g. job:12")] = None,
                after: Annotated[int, Query(ge=0, le=ROW_ID_MAX, description="Only events with a larger id")] = 0,
                limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[EventOut]:
    """Events, oldest first, that the caller may see (their projects' and their own)."""
    query = (select(Event, User.username, Project.slug).outerjoin(User, User.id == Event.actor_id)
             .outerjoin(Project, Project.id == Event.project_id).where(Event.id > after))
    if project is not None:
        query = query.where(Event.project_id == find_project(session, project, caller, "read").project.id)
    if object is not None:
        kind, ident = parse_object(object)
        query = query.where(Event.object_type == kind, Event.object_id == ident)
    rows = session.execute(query.where(_visible(caller)).order_by(Event.id).limit(limit))
    return [EventOut(id=e.id, at=e.at, actor=actor, project=slug, action=e.action, object_type=e.object_type,
                     object_id=e.object_id, data=e.data, payload_hash=e.payload_hash) for e, actor, slug in rows]


@router.get("/projects/{slug}/lineage", response_model=Lineage)
def get_lineage(access: Reader, session: DbSession,
                object: Annotated[str, Query(description="TYPE:ID, e.g. dataset:NAME@VERSION")]) -> Lineage:
    """Where an artefact came from and what was made from it: scenes and labels → dataset → run → model → maps."""
    parse_object(object)
    return lineage(session, access.project.id, object)
