"""Instances → predictions, the TF-Serving / Vertex AI contract: ``POST /v1/models/{name}:predict``.

Also mounted at ``AIP_PREDICT_ROUTE``, so the same container backs Earth Engine's
``ee.Model.fromVertexAi``. Instances are micro-batched into shared forward passes.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from eoengine.inference.preprocess import model_input
from eoengine.serving.auth import KeyedRoute
from eoengine.serving.errors import error_response
from eoengine.serving.inputs import BadInput, answer, instance_array, pad_to
from eoengine.serving.state import ServerDep, Settings


class Instances(BaseModel):
    """A TF-Serving / Vertex AI prediction request."""

    instances: list[Any] = Field(description="raw band values per instance: {band: (H, W)}, {'image': (C, H, W)} or (C, H, W)")
    parameters: dict[str, Any] | None = None


class Predictions(BaseModel):
    """A TF-Serving / Vertex AI prediction answer, one entry per instance."""

    predictions: list[dict[str, Any]]
    model: str
    version: str


async def predict_instances(body: Instances, s: ServerDep) -> Predictions | JSONResponse:
    """Predict every instance of ``body``, batched with whatever else is waiting."""
    settings = s.settings
    if not body.instances:
        return error_response(400, "no instances", "send {'instances': [...]} with at least one instance")
    if len(body.instances) > settings.max_instances:
        return error_response(413, f"{len(body.instances)} instances; at most {settings.max_instances} per request",
                              "split the request")
    try:
        raws = [instance_array(inst, s.predictor.spec) for inst in body.instances]
    except BadInput as exc:
        return error_response(exc.status, str(exc), "send raw band values for every model band, in order")
    out = []
    for raw in raws:
        x, nodata = model_input(raw, s.predictor.spec)
        x, h, w = pad_to(x, s.multiple)
        y = await s.batcher.submit(x)
        out.append(answer(y, s.heads, h, w, nodata))
    return Predictions(predictions=out, model=settings.model_name, version=s.version)


async def predict_v1(name: str, body: Instances, s: ServerDep) -> Predictions | JSONResponse:
    """Predict the instances for the model ``name`` (this server's, or a 404)."""
    if name != s.settings.model_name:
        return error_response(404, f"no model '{name}' here", f"this server serves '{s.settings.model_name}'")
    return await predict_instances(body, s)


def vertex_router(settings: Settings) -> APIRouter:
    """The instance routes (need the API key).

    Args:
        settings: The server settings (for ``predict_route``).

    Returns:
        The router.

    """
    router = APIRouter(route_class=KeyedRoute)
    router.add_api_route("/v1/models/{name}:predict", predict_v1, methods=["POST"], response_model=Predictions,
                         summary="TF-Serving / Vertex AI prediction")
    if settings.predict_route:
        router.add_api_route(settings.predict_route, predict_instances, methods=["POST"], response_model=Predictions,
                             summary="Vertex AI predict route (AIP_PREDICT_ROUTE)")
    return router
