"""Inference engines for prediction: PyTorch, ONNX Runtime (fp32 or int8), or whichever is faster.

Every engine is a function from a float32 batch (B, C, H, W) as numpy to the model's raw
output as a torch tensor. ``auto`` uses PyTorch on a GPU; on the CPU it times PyTorch and
ONNX Runtime on a batch of tiles and keeps the faster. Classical models (random forest,
gradient boosting) have only their ONNX graph: ``auto`` and ``onnx`` run it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from eoengine.deploy.package import ONNX, ModelPackage
from eoengine.errors import EOError
from eoengine.models.classical import is_classical

ENGINES = ("auto", "torch", "onnx", "onnx-int8")
Forward = Callable[[np.ndarray], torch.Tensor]
log = logging.getLogger("eoengine")


def _torch(pkg: ModelPackage) -> Forward:
    def forward(batch: np.ndarray) -> torch.Tensor:
        with torch.inference_mode():
            return pkg.model(torch.from_numpy(batch))  # type: ignore[no-any-return]

    return forward


def _onnx(pkg: ModelPackage, file: str) -> Forward:
    from eoengine.deploy.onnx import session

    path = pkg.path / file
    if not path.exists():
        hint = "eoengine quantize MODEL" if file != ONNX else "eoengine export MODEL --format onnx"
        raise EOError(f"{path} does not exist", f"create it with '{hint}', or use --engine torch")
    sess = session(path)
    name = sess.get_inputs()[0].name

    def forward(batch: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(sess.run(None, {name: np.ascontiguousarray(batch, dtype=np.float32)})[0])

    return forward


def _time(forward: Forward, batch: np.ndarray, repeats: int = 2) -> float:
    forward(batch)
    start = time.perf_counter()
    for _ in range(repeats):
        forward(batch)
    return (time.perf_counter() - start) / repeats


def _graph_only(pkg: ModelPackage, engine: str) -> tuple[str, Forward]:
    """A classical model's one engine: ONNX Runtime on its graph (it has no PyTorch weights)."""
    if engine not in ("auto", "onnx"):
        raise EOError(f"a {pkg.meta['model']} model runs its ONNX graph only, not --engine {engine}",
                      "use --engine onnx (or auto)")
    return "onnx", _onnx(pkg, ONNX)


def select_engine(pkg: ModelPackage, engine: str, probe: np.ndarray) -> tuple[str, Forward]:
    """The engine's name and forward function; ``auto`` picks by timing ``probe`` (a tile batch)."""
    if engine not in ENGINES:
        raise EOError(f"unknown engine '{engine}'", f"use one of: {', '.join(ENGINES)}")
    if is_classical(pkg.meta["model"]):
        return _graph_only(pkg, engine)
    if engine == "torch":
        return engine, _torch(pkg)
    if engine == "onnx":
        return engine, _onnx(pkg, ONNX)
    if engine == "onnx-int8":
        return engine, _onnx(pkg, "model.int8.onnx")
    if torch.cuda.is_available() or not (pkg.path / ONNX).exists():
        return "torch", _torch(pkg)
    candidates: dict[str, Any] = {"torch": _torch(pkg), "onnx": _onnx(pkg, ONNX)}
    timings = {name: _time(fn, probe) for name, fn in candidates.items()}
    best = min(timings, key=lambda k: timings[k])
    log.info("engine: %s (%s)", best, ", ".join(f"{k} {1000 * v:.0f} ms" for k, v in timings.items()))
    return best, candidates[best]
