"""API tokens of the caller: made (shown once), listed (prefix only) and revoked."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter
from sqlalchemy import select

from eoengine.errors import NotFound
from eoengine.platform.db.models import ApiToken, utcnow
from eoengine.platform.deps import CurrentCaller, DbSession, RowId
from eoengine.platform.events import record
from eoengine.platform.schemas import NewTokenOut, TokenIn, TokenOut
from eoengine.platform.security import digest, new_secret

router = APIRouter(prefix="/tokens", tags=["tokens"])


def token_out(token: ApiToken) -> TokenOut:
    """A token as listed (no secret)."""
    return TokenOut(id=token.id, name=token.name, prefix=token.prefix, created_at=token.created_at,
                    expires_at=token.expires_at, revoked_at=token.revoked_at, last_used_at=token.last_used_at)


@router.get("", response_model=list[TokenOut])
def list_tokens(session: DbSession, caller: CurrentCaller) -> list[TokenOut]:
    """The caller's tokens, newest first."""
    rows = session.scalars(select(ApiToken).where(ApiToken.user_id == caller.user.id).order_by(ApiToken.id.desc()))
    return [token_out(t) for t in rows]


@router.post("", response_model=NewTokenOut, status_code=201)
def create_token(body: TokenIn, session: DbSession, caller: CurrentCaller) -> NewTokenOut:
    """A new token for the caller; its secret is in this answer only (the server keeps its hash)."""
    secret = new_secret()
    expires = utcnow() + dt.timedelta(days=body.expires_days) if body.expires_days else None
    token = ApiToken(user_id=caller.user.id, name=body.name, token_hash=digest(secret), prefix=secret[:8],
                     expires_at=expires)
    session.add(token)
    session.flush()
    record(session, "token.create", "token", token.id, actor_id=caller.user.id, project_id=None,
           data={"name": body.name, "prefix": token.prefix, "expires_at": expires})
    return NewTokenOut(**token_out(token).model_dump(), token=secret)


@router.delete("/{token_id}", status_code=204)
def revoke_token(token_id: RowId, session: DbSession, caller: CurrentCaller) -> None:
    """Revoke one of the caller's tokens (it stops working at once)."""
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != caller.user.id:
        raise NotFound(f"you have no token {token_id}", "list your tokens: GET /api/v1/tokens")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        record(session, "token.revoke", "token", token.id, actor_id=caller.user.id, project_id=None,
               data={"name": token.name, "prefix": token.prefix})
