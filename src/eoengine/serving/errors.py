"""The one error mapper of the HTTP apps: an error's kind gives the status, and every answer is one JSON body.

Every error the model server, the STAC API or the fetch jobs answer — raised by the core,
by a handler, or by FastAPI and Starlette themselves — is ``{"error": <the problem>,
"fix": <what to do>}`` (the STAC API adds the ``code`` and ``description`` its clients
read). The status comes from the kind of error:

=====================================================  =========================================
raised                                                 status
=====================================================  =========================================
:class:`~eoengine.errors.NotFound`                     404
:class:`~eoengine.errors.Conflict`                     409
:class:`~eoengine.errors.Unauthenticated`              401
:class:`~eoengine.errors.Denied`                       403
:class:`~eoengine.errors.TooManyRequests`              429 (with ``Retry-After``)
:class:`~eoengine.errors.Invalid`, any other EOError   422 (the STAC API: 400, as STAC APIs answer)
FastAPI's request-validation error                     the same as Invalid, naming the bad fields
:class:`~eoengine.errors.Unavailable`                  503
an ``HTTPException`` (no route 404, 405, 413, 401)     its own status
anything else                                          500
=====================================================  =========================================

An upstream that cannot be reached or fails (a STAC API, an object store, a geocoder) is a
503 — the request was fine and may succeed later — rather than a 502: the apps relay no
upstream answer, they report that they could not get one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from eoengine.errors import Conflict, Denied, EOError, NotFound, TooManyRequests, Unauthenticated, Unavailable

Body = Callable[[int, str, str], dict[str, Any]]
"""Builds an error body from (status, problem, fix)."""

DOCS_FIX = "send the body the OpenAPI document (/docs) describes"
KEY_FIX = "send it as 'X-API-Key: KEY' or 'Authorization: Bearer KEY'"
FIXES = {400: DOCS_FIX, 401: KEY_FIX, 404: "see /docs for the routes", 422: DOCS_FIX}
"""The fix of an ``HTTPException`` (or an error without one), by status."""


def error_body(status: int, problem: str, fix: str) -> dict[str, Any]:
    """The error body every app answers.

    Args:
        status: The HTTP status (unused here; a :data:`Body` may use it).
        problem: What is wrong.
        fix: What to do about it.

    Returns:
        ``{"error": problem, "fix": fix}``.

    """
    return {"error": problem, "fix": fix}


def error_response(status: int, problem: str, fix: str, headers: Mapping[str, str] | None = None,
                   body: Body = error_body) -> JSONResponse:
    """An error answer: ``status`` with the one JSON body.

    Args:
        status: The HTTP status.
        problem: What is wrong.
        fix: What to do about it (a generic one by status when empty).
        headers: Extra response headers (e.g. ``Allow`` for a 405).
        body: The body builder (the STAC API's adds its own fields).

    Returns:
        The JSON response.

    """
    fix = fix or FIXES.get(status, "see /docs")
    return JSONResponse(body(status, problem, fix), status_code=status, headers=dict(headers or {}))


_STATUS_BY_KIND: dict[type[EOError], int] = {NotFound: 404, Conflict: 409, Unavailable: 503, Unauthenticated: 401,
                                             Denied: 403, TooManyRequests: 429}


def status_of(exc: EOError, invalid_status: int = 422) -> int:
    """The HTTP status of an :class:`~eoengine.errors.EOError`, by its kind.

    Args:
        exc: The error.
        invalid_status: The status of bad input (an Invalid or a plain EOError).

    Returns:
        404 for NotFound, 409 for Conflict, 503 for Unavailable, 401 for Unauthenticated, 403 for
        Denied, 429 for TooManyRequests, else ``invalid_status``.

    """
    for kind, status in _STATUS_BY_KIND.items():
        if isinstance(exc, kind):
            return status
    return invalid_status


@dataclass(frozen=True)
class ErrorMapper:
    """The exception handlers that answer every error of an app with its status and the one body.

    Attributes:
        invalid_status: The status of bad input and request-validation errors (422; 400 for the STAC API).
        body: The body builder.
        too_large: For a 413, the request path → (the limit's description, how to stay under it).

    """

    invalid_status: int = 422
    body: Body = error_body
    too_large: Callable[[str], tuple[str, str]] | None = None

    def install(self, app: FastAPI) -> None:
        """Register the handlers on ``app``.

        Args:
            app: The application.

        """
        app.add_exception_handler(EOError, self.eo_error)  # type: ignore[arg-type]
        app.add_exception_handler(RequestValidationError, self.invalid)  # type: ignore[arg-type]
        app.add_exception_handler(StarletteHTTPException, self.http_error)  # type: ignore[arg-type]
        app.add_exception_handler(Exception, self.server_error)

    async def eo_error(self, request: Request, exc: EOError) -> JSONResponse:
        """An EOError, answered by its kind."""
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyRequests) else None
        return error_response(status_of(exc, self.invalid_status), exc.problem, exc.fix or "", headers, self.body)

    async def invalid(self, request: Request, exc: RequestValidationError) -> JSONResponse:
        """A request that does not fit the OpenAPI schema: the bad fields and what is wrong with each."""
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return error_response(self.invalid_status, (problems or "malformed request")[:500], DOCS_FIX, body=self.body)

    async def http_error(self, request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """Starlette's and FastAPI's own errors (no route, method not allowed, body too large, no key)."""
        status, path = exc.status_code, request.url.path
        if status == 413 and self.too_large is not None:
            name, fix = self.too_large(path)
            return error_response(413, f"the request body exceeds {name}", fix, body=self.body)
        if status == 405:
            allowed = (exc.headers or {}).get("allow", "")
            return error_response(405, f"{request.method} is not allowed on {path}", f"use {allowed or 'another method'}",
                                  exc.headers, self.body)
        problem = f"no route {path}" if status == 404 else str(exc.detail)
        return error_response(status, problem, "", exc.headers, self.body)

    async def server_error(self, request: Request, exc: Exception) -> JSONResponse:
        """Anything else: a 500 that names the error's type (the server log has the traceback)."""
        return error_response(500, f"internal error ({type(exc).__name__})",
                              "report it with the request; the server log has the traceback", body=self.body)
