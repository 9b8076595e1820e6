"""Sign-in and sign-out for browsers (session cookie + CSRF token), and who the caller is."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request, Response
from sqlalchemy import delete, select

from eoengine.errors import Unauthenticated
from eoengine.platform.db.models import BrowserSession, User, utcnow
from eoengine.platform.deps import CSRF_COOKIE, SESSION_COOKIE, CurrentCaller, DbSession, platform_of
from eoengine.platform.schemas import LoginIn, LoginOut, UserOut
from eoengine.platform.security import (
    check_login_allowed,
    clear_failures,
    digest,
    new_secret,
    record_failure,
    verify_password,
)

router = APIRouter(prefix="/auth", tags=["auth"])


def user_out(user: User) -> UserOut:
    """A user as the API shows them."""
    return UserOut(id=user.id, username=user.username, is_admin=user.is_admin, disabled=user.disabled)


@router.post("/login", response_model=LoginOut)
def login(body: LoginIn, request: Request, response: Response, session: DbSession) -> LoginOut:
    """Sign in: sets the HTTP-only session cookie and returns the CSRF token changes must carry.

    Five failures per user name or per client address within 15 minutes lock further tries
    (429 with ``Retry-After``) until the window passes.
    """
    platform = platform_of(request)
    keys = [f"user:{body.username.lower()}", f"ip:{request.client.host if request.client else '?'}"]
    check_login_allowed(session, keys)
    user = session.scalar(select(User).where(User.username == body.username))
    if not verify_password(user.password_hash if user else None, body.password) or user is None or user.disabled:
        record_failure(session, keys)
        session.commit()  # counted even though this request fails
        raise Unauthenticated("wrong user name or password", "check both; after 5 failures sign-in waits 15 minutes")
    clear_failures(session, keys[:1])
    cookie, csrf = new_secret("s_"), new_secret("c_")
    hours = platform.settings.session_hours
    session.add(BrowserSession(user_id=user.id, session_hash=digest(cookie), csrf_hash=digest(csrf),
                               expires_at=utcnow() + dt.timedelta(hours=hours)))
    secure = platform.settings.secure_cookies
    response.set_cookie(SESSION_COOKIE, cookie, max_age=int(hours * 3600), httponly=True, secure=secure,
                        samesite="strict", path="/")
    response.set_cookie(CSRF_COOKIE, csrf, max_age=int(hours * 3600), httponly=False, secure=secure,
                        samesite="strict", path="/")
    return LoginOut(user=user_out(user), csrf_token=csrf)


@router.post("/logout", status_code=204)
def logout(request: Request, response: Response, session: DbSession, caller: CurrentCaller) -> Response:
    """Sign out: the session ends on the server and its cookies are cleared."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        session.execute(delete(BrowserSession).where(BrowserSession.session_hash == digest(cookie)))
    response.status_code = 204
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.get("/me", response_model=UserOut)
def me(caller: CurrentCaller) -> UserOut:
    """The signed-in user."""
    return user_out(caller.user)
