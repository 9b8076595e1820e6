"""Prometheus metrics: ``GET /metrics`` (needs the API key), and the middleware that counts every request."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from eoengine.serving.auth import KeyedRoute
from eoengine.serving.state import ServerDep


async def metrics(s: ServerDep) -> Response:
    """The server's metrics in Prometheus' text format."""
    return Response(generate_latest(s.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def count_requests(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """HTTP middleware: count each request by route and status, and time it.

    Args:
        request: The request.
        call_next: The rest of the app.

    Returns:
        The app's response.

    """
    start = time.perf_counter()
    path = request.url.path
    route = path if not path.startswith("/tiles/") else "/tiles"
    response = await call_next(request)
    counted = request.app.state.server.metrics
    counted.requests.labels(route, str(response.status_code)).inc()
    counted.latency.labels(route).observe(time.perf_counter() - start)
    return response


def metrics_router() -> APIRouter:
    """The metrics route (needs the API key).

    Returns:
        The router.

    """
    router = APIRouter(route_class=KeyedRoute)
    router.add_api_route("/metrics", metrics, methods=["GET"], summary="Prometheus metrics")
    return router
