"""What the model server's routes share: its settings, the loaded model, the batcher, the metrics.

:func:`server_state` builds it once per app (``app.state.server``); a route takes it as a
parameter annotated :data:`ServerDep`, so no route closes over another's variables.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Annotated, Any

import numpy as np
from fastapi import Depends, Request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from eoengine.inference.predict import Predictor
from eoengine.models.heads import Head, heads_from_meta
from eoengine.models.package import ModelPackage
from eoengine.serving.batching import Batcher


@dataclass
class Settings:
    """Server settings (the CLI fills them from options and ``AIP_*`` / ``EOENGINE_*`` variables)."""

    api_key: str
    model_name: str = "model"
    max_upload_mb: float = 200.0
    max_json_mb: float = 20.0
    max_instances: int = 64
    max_concurrent_maps: int = 2
    max_batch: int = 16
    max_wait_ms: float = 5.0
    engine: str = "auto"
    tiles_scene: list[str] = field(default_factory=list)
    catalog: str | None = None
    cache: str = "eoengine-cache"
    predict_route: str | None = None
    health_route: str | None = None


@dataclass
class Metrics:
    """The server's Prometheus metrics, in a registry of its own."""

    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    batch_sizes: Histogram

    @classmethod
    def create(cls, meta: dict[str, Any], settings: Settings) -> Metrics:
        """The metrics of a server for the model ``meta`` (its info gauge set).

        Args:
            meta: The model package's metadata.
            settings: The server settings.

        Returns:
            The metrics.

        """
        registry = CollectorRegistry()
        requests = Counter("eoengine_requests", "HTTP requests", ["route", "status"], registry=registry)
        latency = Histogram("eoengine_request_seconds", "Request latency", ["route"], registry=registry,
                            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        Gauge("eoengine_model_info", "The model being served", ["name", "model", "run", "dataset_version"], registry=registry).labels(
            settings.model_name, meta["model"], str(meta.get("run_id", "")), str(meta.get("dataset", {}).get("version", ""))).set(1)
        batch_sizes = Histogram("eoengine_batch_size", "Instances per forward pass", registry=registry, buckets=(1, 2, 4, 8, 16, 32, 64))
        return cls(registry, requests, latency, batch_sizes)


@dataclass
class Server:
    """The state every route of one model server shares."""

    pkg: ModelPackage
    settings: Settings
    heads: list[Head]
    version: str
    predictor: Predictor
    batcher: Batcher
    metrics: Metrics
    maps: asyncio.Semaphore
    model_lock: asyncio.Lock
    areas: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(8, "eoengine-aoi"))
    """Where ``/predict/aoi`` runs: its threads wait there for a map slot, never in the pool an upload holding one needs."""

    @property
    def meta(self) -> dict[str, Any]:
        """The model package's metadata."""
        return self.pkg.meta

    @property
    def multiple(self) -> int:
        """The side multiple the model needs its inputs padded to."""
        return int(self.meta.get("size_multiple", 1))


def server_state(pkg: ModelPackage, settings: Settings) -> Server:
    """The shared state of a server for ``pkg`` (already loaded), its engine chosen and its batcher started.

    Args:
        pkg: The model package.
        settings: The server settings.

    Returns:
        The state.

    """
    meta = pkg.meta
    metrics = Metrics.create(meta, settings)
    predictor = Predictor(pkg, engine=settings.engine)  # its engine (PyTorch or ONNX Runtime) serves every route

    def forward(batch: np.ndarray) -> np.ndarray:
        metrics.batch_sizes.observe(len(batch))
        return predictor.forward(batch).numpy()  # type: ignore[no-any-return]

    return Server(pkg, settings, heads_from_meta(meta), str(meta.get("run_id") or meta.get("created") or "unversioned"),
                  predictor, Batcher(forward, settings.max_batch, settings.max_wait_ms), metrics,
                  asyncio.Semaphore(settings.max_concurrent_maps), asyncio.Lock())


def get_server(request: Request) -> Server:
    """The dependency that hands a route its server's state.

    Args:
        request: The request.

    Returns:
        ``request.app.state.server``.

    """
    return request.app.state.server  # type: ignore[no-any-return]


ServerDep = Annotated[Server, Depends(get_server)]
"""A route parameter annotated with this receives the server's :class:`Server`."""
