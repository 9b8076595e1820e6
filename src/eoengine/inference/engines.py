"""Inference engines for prediction: PyTorch, ONNX Runtime (fp32 or int8), or whichever is faster.

Every engine is a function from a float32 batch (B, C, H, W) as numpy to the model's raw
output as a torch tensor. ``auto`` uses PyTorch on a GPU; on the CPU it times PyTorch and
ONNX Runtime on a batch of tiles and keeps the faster. The choice is recorded (in
``engines.json`` of the cache folder, ``EOENGINE_CACHE`` or ~/.cache/eoengine) per model,
batch shape, machine and library versions, so later runs with ``auto`` use the same engine
and give the same bytes instead of following the noise of a new timing. Classical models
(random forest, gradient boosting) have only their ONNX graph: ``auto`` and ``onnx`` run it.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from eoengine.errors import EOError, NotFound
from eoengine.hashing import canonical_hash, file_sha256
from eoengine.models.classical import is_classical
from eoengine.models.package import ONNX, WEIGHTS, ModelPackage

ENGINES = ("auto", "torch", "onnx", "onnx-int8")
Forward = Callable[[np.ndarray], torch.Tensor]
log = logging.getLogger(__name__)


def _torch(pkg: ModelPackage) -> Forward:
    def forward(batch: np.ndarray) -> torch.Tensor:
        with torch.inference_mode():
            return pkg.model(torch.from_numpy(batch))  # type: ignore[no-any-return]

    return forward


def _onnx(pkg: ModelPackage, file: str) -> Forward:
    from eoengine.models.onnx import session

    path = pkg.path / file
    if not path.exists():
        hint = "eoengine quantize MODEL" if file != ONNX else "eoengine export MODEL --format onnx"
        raise NotFound(f"{path} does not exist", f"create it with '{hint}', or use --engine torch")
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
        raise EOError(f"a {pkg.meta.model} model runs its ONNX graph only, not --engine {engine}",
                      "use --engine onnx (or auto)")
    return "onnx", _onnx(pkg, ONNX)


def _choices() -> Path:
    from eoengine.files import cache_dir

    return cache_dir() / "engines.json"


def _choice_key(pkg: ModelPackage, probe: np.ndarray) -> str:
    """What a recorded choice holds for: the model's files, the batch, the machine and the libraries."""
    import onnxruntime

    files = [pkg.path / f for f in (WEIGHTS, ONNX) if (pkg.path / f).exists()]
    return canonical_hash({"files": [file_sha256(f) for f in files], "batch": list(probe.shape), "cpus": os.cpu_count(),
                           "machine": platform.machine(), "torch": torch.__version__, "onnxruntime": onnxruntime.__version__})


def _recorded(key: str) -> str | None:
    try:
        choice = json.loads(_choices().read_text()).get(key)
    except (OSError, ValueError, AttributeError):
        return None
    return choice if choice in ("torch", "onnx") else None


def _record(key: str, choice: str) -> str:
    """Record ``choice`` unless another process recorded one meanwhile; returns the recorded choice."""
    from eoengine.files import atomic_write_json

    path = _choices()
    try:
        known = json.loads(path.read_text()) if path.exists() else {}
        if not isinstance(known, dict):
            known = {}
        if known.get(key) in ("torch", "onnx"):
            return str(known[key])
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, known | {key: choice})
    except (OSError, ValueError) as exc:  # an unwritable cache: this run still predicts, later runs time again
        log.warning("could not record the engine choice in %s: %s", path, exc)
    return choice


def _fastest(pkg: ModelPackage, probe: np.ndarray) -> tuple[str, Forward]:
    """The recorded ``auto`` choice for this model, batch and machine, or the faster of a timing (then recorded)."""
    candidates: dict[str, Any] = {"torch": _torch(pkg), "onnx": _onnx(pkg, ONNX)}
    key = _choice_key(pkg, probe)
    best = _recorded(key)
    if best is None:
        timings = {name: _time(fn, probe) for name, fn in candidates.items()}
        best = _record(key, min(timings, key=lambda k: timings[k]))
        log.info("engine: %s (%s)", best, ", ".join(f"{k} {1000 * v:.0f} ms" for k, v in timings.items()))
    return best, candidates[best]


def select_engine(pkg: ModelPackage, engine: str, probe: np.ndarray) -> tuple[str, Forward]:
    """The engine's name and forward function; ``auto`` picks by timing ``probe`` (a tile batch) once per model and machine.

    Args:
        pkg: The model package.
        engine: One of :data:`ENGINES`.
        probe: A batch of tiles of the size prediction will use.

    Returns:
        The engine's name and its forward function.

    Raises:
        EOError: An unknown engine, one the package has no file for, or one a classical model cannot run.

    """
    if engine not in ENGINES:
        raise EOError(f"unknown engine '{engine}'", f"use one of: {', '.join(ENGINES)}")
    if is_classical(pkg.meta.model):
        return _graph_only(pkg, engine)
    if engine == "torch":
        return engine, _torch(pkg)
    if engine == "onnx":
        return engine, _onnx(pkg, ONNX)
    if engine == "onnx-int8":
        return engine, _onnx(pkg, "model.int8.onnx")
    if torch.cuda.is_available() or not (pkg.path / ONNX).exists():
        return "torch", _torch(pkg)
    return _fastest(pkg, probe)
