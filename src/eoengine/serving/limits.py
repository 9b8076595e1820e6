"""Request-body caps enforced while the body streams in, before any of it is spooled or parsed.

FastAPI parses a multipart upload (spooling it to a temporary file) or a JSON body before
the route's code runs, so a cap checked in the route comes after the whole body is in. This
ASGI middleware counts the bytes as the server receives them and fails the read with a 413
as soon as the route's cap is passed; the app's 413 handler answers it. A declared
``Content-Length`` over the cap is refused before the first read.

It must sit inside any ``BaseHTTPMiddleware`` (``@app.middleware``): that one reads the body
in a task group, which would wrap the 413 into an error FastAPI reports as a 400.

:func:`thread_slot` lets work running in a thread hold a slot of a route's concurrency limit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(HTTPException):
    """The request body passed its route's cap (HTTP 413); FastAPI passes HTTP errors through its body parsing."""

    def __init__(self) -> None:
        super().__init__(status_code=413, detail="request body too large")


class BodyCap:
    """ASGI middleware: a request body longer than ``cap(path)`` bytes is refused.

    Declared too long, it is answered with ``refuse(path, declared)`` unread; streamed, its
    read fails with :class:`BodyTooLarge` once past the cap.
    """

    def __init__(self, app: ASGIApp, cap: Callable[[str], int], refuse: Callable[[str, int], Response]) -> None:
        self.app = app
        self.cap = cap
        self.refuse = refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app with a ``receive`` that counts body bytes against the route's cap.

        Args:
            scope: the ASGI scope.
            receive: the server's receive channel.
            send: the server's send channel.

        """
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, seen = self.cap(scope["path"]), 0
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await self.refuse(scope["path"], int(declared))(scope, receive, send)
            return

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge()
            return message

        await self.app(scope, counted, send)


def thread_slot(semaphore: asyncio.Semaphore) -> Callable[[], AbstractContextManager[None]]:
    """A slot of ``semaphore`` that code in a worker thread can hold (it waits for the slot in that thread).

    Run such code in a pool of its own: threads waiting for a slot must not fill the pool the
    holders of the slots need.

    Args:
        semaphore: a semaphore of the running event loop (call this in the loop).

    Returns:
        A context manager factory: entering acquires a slot, leaving releases it.

    """
    loop = asyncio.get_running_loop()

    @contextmanager
    def held() -> Iterator[None]:
        asyncio.run_coroutine_threadsafe(semaphore.acquire(), loop).result()
        try:
            yield
        finally:
            loop.call_soon_threadsafe(semaphore.release)

    return held
