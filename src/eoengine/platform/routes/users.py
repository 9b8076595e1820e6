"""Users, managed by site admins."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from eoengine.errors import Conflict, Invalid, NotFound
from eoengine.platform.db.models import BrowserSession, User
from eoengine.platform.deps import DbSession, RowId, SiteAdmin
from eoengine.platform.events import record
from eoengine.platform.routes.auth import user_out
from eoengine.platform.schemas import UserIn, UserOut, UserPatch
from eoengine.platform.security import hash_password

router = APIRouter(prefix="/users", tags=["users"])


@router.get("", response_model=list[UserOut])
def list_users(session: DbSession, admin: SiteAdmin) -> list[UserOut]:
    """Every user."""
    return [user_out(u) for u in session.scalars(select(User).order_by(User.username))]


@router.post("", response_model=UserOut, status_code=201)
def create_user(body: UserIn, session: DbSession, admin: SiteAdmin) -> UserOut:
    """A new user with a password (at least 8 characters)."""
    if session.scalar(select(User).where(User.username == body.username)) is not None:
        raise Conflict(f"user {body.username!r} exists already", "choose another user name")
    user = User(username=body.username, password_hash=hash_password(body.password), is_admin=body.is_admin)
    session.add(user)
    session.flush()
    record(session, "user.create", "user", user.id, actor_id=admin.user.id, project_id=None,
           data={"username": user.username, "is_admin": user.is_admin})
    return user_out(user)


@router.patch("/{user_id}", response_model=UserOut)
def update_user(user_id: RowId, body: UserPatch, session: DbSession, admin: SiteAdmin) -> UserOut:
    """Change a user's password or admin rights, or disable (or enable) the account.

    Disabling ends the user's browser sessions; their tokens stop working while disabled.
    """
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}", "list users: GET /api/v1/users")
    if user.id == admin.user.id and (body.disabled or body.is_admin is False):
        raise Invalid("you cannot disable yourself or drop your own admin rights", "ask another site admin")
    changed: dict[str, object] = {}
    if body.password is not None:
        user.password_hash, changed["password"] = hash_password(body.password), "changed"
    for field in ("is_admin", "disabled"):
        value = getattr(body, field)
        if value is not None:
            setattr(user, field, value)
            changed[field] = value
    if body.disabled or body.password is not None:
        session.query(BrowserSession).filter(BrowserSession.user_id == user.id).delete()
    record(session, "user.update", "user", user.id, actor_id=admin.user.id, project_id=None, data=changed)
    return user_out(user)
