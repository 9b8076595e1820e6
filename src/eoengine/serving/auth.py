"""The API key of the HTTP apps: one check, applied by every router whose routes need it.

The key is the app's ``app.state.api_key``; a request carries it as ``X-API-Key`` or
``Authorization: Bearer``, compared in constant time. A router whose routes need it is an
``APIRouter(route_class=KeyedRoute)``: the check runs before the route reads its body, so
an upload without the key is refused before a byte of it is spooled (a FastAPI dependency
would run only after the body is parsed). The key is never logged: a refusal says only
that the key is missing or wrong.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response


def key_matches(request: Request, key: str | None) -> bool:
    """Whether the request carries ``key``.

    Args:
        request: The request.
        key: The key it needs (None or empty: no request matches).

    Returns:
        True if ``X-API-Key`` or ``Authorization: Bearer`` holds ``key``.

    """
    if not key:
        return False
    given = request.headers.get("x-api-key") or ""
    auth = request.headers.get("authorization") or ""
    if not given and auth.lower().startswith("bearer "):
        given = auth[7:]
    return bool(given) and hmac.compare_digest(given.encode(), key.encode())


def require_key(request: Request) -> None:
    """The API-key check, as a FastAPI dependency: refuse a request without the app's key.

    Args:
        request: The request (its app holds the key as ``app.state.api_key``).

    Raises:
        HTTPException: 401, the key is missing or wrong (answered as ``{"error", "fix"}``).

    """
    if not key_matches(request, getattr(request.app.state, "api_key", None)):
        raise HTTPException(401, "missing or wrong API key")


class KeyedRoute(APIRoute):
    """A route that needs the API key: :func:`require_key` runs before the route reads its body."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The route's handler, behind the key check.

        Returns:
            The handler FastAPI runs for a request.

        """
        handler = super().get_route_handler()

        async def keyed(request: Request) -> Response:
            require_key(request)
            return await handler(request)

        return keyed
