"""Health checks, open without the API key: ``GET /healthz`` (liveness), ``GET /readyz`` (readiness).

With ``AIP_HEALTH_ROUTE`` set, liveness is answered there too, where Vertex AI asks.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from eoengine.serving.state import ServerDep, Settings


async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


async def readyz(s: ServerDep) -> dict[str, Any]:
    """Readiness: the model is loaded and answers, with what it takes and its engine."""
    meta = s.meta
    return {"ready": True, "model": s.settings.model_name, "version": s.version, "bands": meta["bands"],
            "classes": [c["name"] for c in meta["classes"]], "engine": s.predictor.engine}


def health_router(settings: Settings) -> APIRouter:
    """The health routes (open: no API key).

    Args:
        settings: The server settings (for ``health_route``).

    Returns:
        The router.

    """
    router = APIRouter()
    router.add_api_route("/healthz", healthz, methods=["GET"], summary="Liveness")
    router.add_api_route("/readyz", readyz, methods=["GET"], summary="Readiness: the model is loaded and answers")
    if settings.health_route and settings.health_route != "/healthz":
        router.add_api_route(settings.health_route, healthz, methods=["GET"], summary="Vertex AI health route (AIP_HEALTH_ROUTE)")
    return router
