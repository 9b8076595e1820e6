"""Request dependencies: the database session, the caller (API token or browser session), the project and role.

A caller is known by ``Authorization: Bearer <token>`` (an API token) or by the session
cookie; a cookie-authenticated request that changes state must also carry the session's CSRF
token in ``X-CSRF-Token``. These are the OpenAPI security schemes of every route that needs a
caller (``bearer``, ``session`` and ``csrf``, declared by :func:`authenticated`'s FastAPI
security dependencies, so /docs's Authorize button fills them in). :func:`project_access`
gives a route the project named in its path and checks that the caller's role allows the
route's action (:mod:`eoengine.platform.roles`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request, Security
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from eoengine.errors import Denied, NotFound, Unauthenticated
from eoengine.platform.db.models import ApiToken, BrowserSession, Membership, Project, User, utcnow
from eoengine.platform.roles import LEAST_ROLE, Action, allows
from eoengine.platform.security import digest, same
from eoengine.platform.settings import Platform

SESSION_COOKIE = "eoengine_session"
CSRF_COOKIE = "eoengine_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ROW_ID_MAX = 2**31 - 1
"""The largest row id (PostgreSQL's ``integer``); larger ones would fail in the database, not as bad input."""
BEARER = HTTPBearer(auto_error=False, scheme_name="bearer", bearerFormat="eoengine API token",
                    description="An API token (eoengine remote login, POST /api/v1/tokens): 'Authorization: Bearer TOKEN'.")
SESSION = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, scheme_name="session",
                       description="The browser session cookie that POST /api/v1/auth/login sets.")
CSRF = APIKeyHeader(name=CSRF_HEADER, auto_error=False, scheme_name="csrf",
                    description="With the session cookie, on a request that changes state: the csrf_token sign-in "
                                f"returned (also in the {CSRF_COOKIE} cookie).")
AUTH_FIX = "sign in (POST /api/v1/auth/login) or send 'Authorization: Bearer TOKEN' (eoengine remote login)"


def platform_of(request: Request) -> Platform:
    """The platform state of the app serving ``request``."""
    platform: Platform = request.app.state.platform
    return platform


def db_session(request: Request) -> Iterator[Session]:
    """A database session for one request, committed when the route returns without an error.

    The caller and project checks commit as soon as they are done, so a route's slow work
    (rendering a tile, streaming a file) holds no transaction open.

    Yields:
        The session.

    """
    with platform_of(request).db.request(read_only=request.method in SAFE_METHODS) as session:
        yield session


DbSession = Annotated[Session, Depends(db_session, scope="function")]
"""The request's session; it commits when the route returns, before the answer is sent (so the
client's next request sees the change: FastAPI's default scope would commit after sending it)."""
RowId = Annotated[int, Path(ge=1, le=ROW_ID_MAX, description="A row id (1 to 2^31-1)")]
"""A path parameter naming a row by id: out of range is a 422, as any malformed request."""


@dataclass(frozen=True)
class Caller:
    """Who is asking: the user, and how they proved it (``token`` or ``session``)."""

    user: User
    via: str
    token_id: int | None = None


def _token_user(session: Session, secret: str) -> tuple[Caller, bool]:
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest(secret)))
    now = utcnow()
    if token is None or token.revoked_at is not None or (token.expires_at is not None and token.expires_at <= now):
        state = "unknown" if token is None else "revoked" if token.revoked_at else "expired"
        raise Unauthenticated(f"the API token is {state}", "make a new one (POST /api/v1/tokens or the Tokens page)")
    stale = token.last_used_at is None or now - token.last_used_at > dt.timedelta(minutes=1)
    return Caller(_active(session, token.user_id), "token", token.id), stale


def _session_user(session: Session, request: Request, cookie: str) -> Caller:
    row = session.scalar(select(BrowserSession).where(BrowserSession.session_hash == digest(cookie)))
    if row is None or row.expires_at <= utcnow():
        raise Unauthenticated("your session has ended", "sign in again")
    if request.method not in SAFE_METHODS and not same(request.headers.get(CSRF_HEADER, ""), row.csrf_hash):
        raise Denied("the request has no valid CSRF token",
                     f"send the token sign-in returned (also in the {CSRF_COOKIE} cookie) as the {CSRF_HEADER} header")
    return Caller(_active(session, row.user_id), "session")


def _active(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or user.disabled:
        raise Unauthenticated("this account is disabled", "ask a site admin to enable it")
    return user


def current_caller(request: Request, session: DbSession) -> Caller:
    """The caller of a request, by API token or browser session.

    Args:
        request: The request.
        session: The request's database session.

    Returns:
        The caller.

    Raises:
        Unauthenticated: No credentials, or unknown, expired or revoked ones.
        Denied: A cookie-authenticated change without the CSRF token.

    """
    header, touch = request.headers.get("authorization", ""), False
    if header:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthenticated("the Authorization header is not 'Bearer TOKEN'", AUTH_FIX)
        caller, touch = _token_user(session, secret.strip())
    elif request.cookies.get(SESSION_COOKIE):
        caller = _session_user(session, request, request.cookies[SESSION_COOKIE])
    else:
        raise Unauthenticated("this route needs you to sign in", AUTH_FIX)
    session.commit()
    if caller.token_id is not None and touch:  # its own short write: a GET's session only reads
        with platform_of(request).db.write() as write:
            write.execute(update(ApiToken).where(ApiToken.id == caller.token_id).values(last_used_at=utcnow()))
    return caller


def authenticated(
    request: Request, session: DbSession,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
    _cookie: Annotated[str | None, Security(SESSION)], _csrf: Annotated[str | None, Security(CSRF)],
) -> Caller:
    """The dependency of every route that needs a caller: :func:`current_caller`, its schemes declared to OpenAPI.

    Args:
        request: The request.
        session: The request's database session.
        _bearer: The bearer scheme (read by :func:`current_caller`, which names a malformed header).
        _cookie: The session cookie scheme.
        _csrf: The CSRF header scheme.

    Returns:
        The caller.

    Raises:
        Unauthenticated: No credentials, or unknown, expired or revoked ones.
        Denied: A cookie-authenticated change without the CSRF token.

    """
    return current_caller(request, session)


CurrentCaller = Annotated[Caller, Depends(authenticated)]


def require_site_admin(caller: CurrentCaller) -> Caller:
    """The caller, when they are a site admin.

    Raises:
        Denied: They are not.

    """
    if not caller.user.is_admin:
        raise Denied("only a site admin may do this", "ask a site admin")
    return caller


SiteAdmin = Annotated[Caller, Depends(require_site_admin)]


@dataclass(frozen=True)
class ProjectAccess:
    """The project a route works on, the caller, and the caller's role on it (None for a site admin who is no member)."""

    project: Project
    caller: Caller
    role: str | None

    @property
    def user_id(self) -> int:
        """The caller's user id."""
        return self.caller.user.id

    def allows(self, action: Action) -> bool:
        """Whether the caller may also do ``action`` on this project."""
        return allows(self.role, action, self.caller.user.is_admin)


def find_project(session: Session, slug: str, caller: Caller, action: Action) -> ProjectAccess:
    """The project ``slug`` when the caller may do ``action`` on it.

    Args:
        session: A database session.
        slug: The project's slug.
        caller: Who asks.
        action: What they ask to do.

    Returns:
        The project, caller and role.

    Raises:
        NotFound: No such project, or the caller is not a member (who may not know it exists).
        Denied: A member whose role may not do ``action``.

    """
    project = session.scalar(select(Project).where(Project.slug == slug))
    role = None if project is None else session.scalar(
        select(Membership.role).where(Membership.project_id == project.id, Membership.user_id == caller.user.id))
    if project is None or (role is None and not caller.user.is_admin):
        raise NotFound(f"no project {slug!r}", "list your projects (GET /api/v1/projects); ask its admin to add you")
    if not allows(role, action, caller.user.is_admin):
        raise Denied(f"your role on {slug!r} ({role}) may not {action}",
                     f"this needs the {LEAST_ROLE[action]} role or higher; ask a project admin")
    session.commit()
    return ProjectAccess(project, caller, role)


def project_access(action: Action) -> Callable[[str, DbSession, CurrentCaller], ProjectAccess]:
    """A dependency: the project of the route's ``{slug}``, checked for ``action``.

    Args:
        action: What the route does (see :mod:`eoengine.platform.roles`).

    Returns:
        The dependency.

    """

    def dependency(slug: str, session: DbSession, caller: CurrentCaller) -> ProjectAccess:
        return find_project(session, slug, caller, action)

    dependency.__name__ = f"project_{action}"
    return dependency


Reader = Annotated[ProjectAccess, Depends(project_access("read"))]
Annotator = Annotated[ProjectAccess, Depends(project_access("annotate"))]
Reviewer = Annotated[ProjectAccess, Depends(project_access("review"))]
Runner = Annotated[ProjectAccess, Depends(project_access("run"))]
Manager = Annotated[ProjectAccess, Depends(project_access("manage"))]
