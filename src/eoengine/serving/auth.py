"""The API-key check shared by the model server and the STAC service."""

from __future__ import annotations

import hmac

from starlette.requests import Request


def key_matches(request: Request, key: str | None) -> bool:
    """True if the request carries ``key`` as ``X-API-Key`` or ``Authorization: Bearer``."""
    if not key:
        return False
    given = request.headers.get("x-api-key") or ""
    auth = request.headers.get("authorization") or ""
    if not given and auth.lower().startswith("bearer "):
        given = auth[7:]
    return bool(given) and hmac.compare_digest(given.encode(), key.encode())
