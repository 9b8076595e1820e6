"""A project's members and their roles (project admins manage them)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from eoengine.errors import Conflict, Invalid, NotFound
from eoengine.platform.db.models import Membership, User
from eoengine.platform.deps import DbSession, Manager, ProjectAccess, Reader
from eoengine.platform.events import record
from eoengine.platform.schemas import MemberIn, MemberOut, RolePatch

router = APIRouter(prefix="/projects/{slug}/members", tags=["members"])


def _member(session: Session, access: ProjectAccess, username: str) -> tuple[Membership, User]:
    row = session.execute(select(Membership, User).join(User, User.id == Membership.user_id)
                          .where(Membership.project_id == access.project.id, User.username == username)).first()
    if row is None:
        raise NotFound(f"{username!r} is not a member of {access.project.slug!r}", "list the members first")
    return row[0], row[1]


def _keep_an_admin(session: Session, access: ProjectAccess, member: Membership) -> None:
    admins = session.scalar(select(func.count()).select_from(Membership).where(
        Membership.project_id == access.project.id, Membership.role == "admin"))
    if member.role == "admin" and (admins or 0) <= 1:
        raise Invalid("a project needs at least one admin", "make another member admin first")


@router.get("", response_model=list[MemberOut])
def list_members(access: Reader, session: DbSession) -> list[MemberOut]:
    """The project's members and their roles."""
    rows = session.execute(select(User.username, Membership.role).join(Membership, Membership.user_id == User.id)
                           .where(Membership.project_id == access.project.id).order_by(User.username))
    return [MemberOut(username=u, role=r) for u, r in rows]


@router.post("", response_model=MemberOut, status_code=201)
def add_member(body: MemberIn, access: Manager, session: DbSession) -> MemberOut:
    """Add a user to the project with a role."""
    user = session.scalar(select(User).where(User.username == body.username))
    if user is None:
        raise NotFound(f"no user {body.username!r}", "a site admin creates users (POST /api/v1/users)")
    if session.get(Membership, (access.project.id, user.id)) is not None:
        raise Conflict(f"{body.username!r} is a member already", "change their role with PATCH instead")
    session.add(Membership(project_id=access.project.id, user_id=user.id, role=body.role))
    record(session, "member.add", "project", access.project.slug, actor_id=access.user_id,
           project_id=access.project.id, data={"username": user.username, "role": body.role})
    return MemberOut(username=user.username, role=body.role)


@router.patch("/{username}", response_model=MemberOut)
def change_role(username: str, body: RolePatch, access: Manager, session: DbSession) -> MemberOut:
    """Change a member's role (the last admin stays admin)."""
    member, user = _member(session, access, username)
    if body.role != "admin":
        _keep_an_admin(session, access, member)
    before, member.role = member.role, body.role
    record(session, "member.role", "project", access.project.slug, actor_id=access.user_id,
           project_id=access.project.id, data={"username": username, "from": before, "to": body.role})
    return MemberOut(username=user.username, role=body.role)


@router.delete("/{username}", status_code=204)
def remove_member(username: str, access: Manager, session: DbSession) -> None:
    """Remove a member (not the last admin)."""
    member, _ = _member(session, access, username)
    _keep_an_admin(session, access, member)
    session.delete(member)
    record(session, "member.remove", "project", access.project.slug, actor_id=access.user_id,
           project_id=access.project.id, data={"username": username})
