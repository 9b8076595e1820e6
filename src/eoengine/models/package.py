"""The model package: everything needed to predict, in one folder.

``eoengine-model.json`` (:class:`~eoengine.models.meta.PackageMeta`) records the architecture
and its arguments, band names and specs (scale, offset, nodata, common names), the band
indexes of the stack it was trained on (``stack_indexes``, so that very stack predicts as it
is; absent in older packages), derived indices, normalisation, patch size, classes
(position, value, name, colour), the dataset version and the run; ``weights.pt`` holds the state dict and
``model.onnx`` the exported graph (dynamic batch and spatial size). Classical models
(random forest, gradient boosting) have no weights: their ONNX graph is the model.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from eoengine.datasets.schema import DatasetManifest
from eoengine.errors import EOError
from eoengine.models.classical import is_classical
from eoengine.models.meta import META as META  # re-exported: beside WEIGHTS and ONNX, the package's files
from eoengine.models.meta import PackageMeta
from eoengine.models.registry import build_model, size_multiple

WEIGHTS = "weights.pt"
ONNX = "model.onnx"


@dataclass
class ModelPackage:
    """A loaded model package: metadata and the model in eval mode."""

    path: Path
    meta: PackageMeta
    model: nn.Module

    @property
    def bands(self) -> list[str]:
        """Input band names, in order."""
        return list(self.meta.bands)

    @property
    def class_names(self) -> list[str]:
        """Class names, by index."""
        return [c.name for c in self.meta.classes]


def stack_indexes(manifest: DatasetManifest) -> list[int] | None:
    """The 1-based band indexes every training scene read from its stack, if they share one layout.

    Args:
        manifest: A dataset manifest (its ``bands`` and its scenes' ``sources``).

    Returns:
        One index per band, or None when a scene (or date) reads several files or layouts differ.

    """
    n = len(manifest.bands)
    layouts = set()
    for scene in manifest.scenes:
        sources = scene.sources
        for k in range(0, len(sources), n):
            date = sources[k : k + n]
            if len({s.path for s in date}) != 1:
                return None
            layouts.add(tuple(s.index for s in date))
    return list(layouts.pop()) if len(layouts) == 1 else None


def export_onnx(model: nn.Module, channels: int, patch: int, path: Path) -> None:
    """Export to ONNX with dynamic batch, height and width.

    The TorchScript exporter goes first (a tenth of a second where torch.export takes
    several); a model it cannot trace, or whose trace warns (a Python value taken from a tensor
    may be fixed at the example's size), is exported by torch.export instead. The exporters'
    warnings and torch's log records below ERROR are kept quiet while they run; the ``torch``
    logger's level is put back afterwards.

    Args:
        model: The model (set to eval mode).
        channels: Its input channels.
        patch: The side of the example input.
        path: The ``.onnx`` file to write.

    """
    model = model.eval()
    x = torch.zeros(1, channels, patch, patch)
    dyn = torch.export.Dim.DYNAMIC
    torch_log = logging.getLogger("torch")
    level = torch_log.level
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch_log.setLevel(logging.ERROR)
        try:
            torch.onnx.export(
                model, (x,), str(path), input_names=["image"], output_names=["logits"],
                dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                              "logits": {0: "batch", 2: "height", 3: "width"}},
                dynamo=False, opset_version=17,
            )
            traced = not any(issubclass(w.category, torch.jit.TracerWarning) for w in caught)
        except Exception:  # noqa: BLE001 - a model it cannot trace
            traced = False
        try:
            if not traced:
                torch.onnx.export(
                    model, (x,), str(path), input_names=["image"], output_names=["logits"],
                    dynamic_shapes=({0: dyn, 2: dyn, 3: dyn},), dynamo=True, verbose=False,
                )
        finally:
            torch_log.setLevel(level)
    _inline_weights(path)


def _inline_weights(path: Path) -> None:
    """Keep weights inside the .onnx file (one file to copy, serve and quantize) below 2 GB."""
    import onnx

    data = [p for p in path.parent.iterdir() if p.name.startswith(path.name + ".") and p.suffix == ".data"]
    if not data or sum(p.stat().st_size for p in data) > 1.8 * 2**30:
        return
    graph = onnx.load(str(path), load_external_data=True)
    onnx.save_model(graph, str(path), save_as_external_data=False)
    for p in data:
        p.unlink()


def write_package(meta: PackageMeta, dest: Path, write_files: Callable[[Path], dict[str, Any]]) -> Path:
    """Write a package folder atomically: ``write_files(tmp)`` fills a temporary folder, then it is renamed.

    Args:
        meta: The package's description (``eoengine-model.json``).
        dest: The package folder; replaced if it exists.
        write_files: Writes the model files into the folder it is given; returns the fields of ``meta``
            they decide (``size_multiple``, ``onnx``, ...).

    Returns:
        ``dest``.

    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    try:
        PackageMeta.model_validate(meta.as_dict() | write_files(tmp)).write(tmp)
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def save_package(model: nn.Module, meta: PackageMeta, dest: Path, onnx: bool = True) -> Path:
    """Write a package folder atomically (temporary folder, then rename).

    Args:
        model: The network; its state dict becomes ``weights.pt``.
        meta: The package's description.
        dest: The package folder; replaced if it exists.
        onnx: Also export ``model.onnx``.

    Returns:
        ``dest``.

    """

    def files(tmp: Path) -> dict[str, Any]:
        added: dict[str, Any] = {"size_multiple": size_multiple(model)}
        torch.save(model.state_dict(), tmp / WEIGHTS)
        if onnx:
            export_onnx(model, len(meta.channels), meta.patch_size, tmp / ONNX)
            added["onnx"] = ONNX
        return added

    return write_package(meta, dest, files)


def load_package(path: Path) -> ModelPackage:
    """Load a package folder; the model is rebuilt from the registry and put in eval mode.

    Args:
        path: The package folder.

    Returns:
        The package: its metadata and its model.

    Raises:
        EOError: No or unreadable ``eoengine-model.json`` (see :meth:`PackageMeta.read`), or model files
            missing or not matching it.

    """
    path = Path(path)
    meta = PackageMeta.read(path)
    if is_classical(meta.model):
        return _load_graph_only(path, meta)
    try:
        model = build_model(meta.model, len(meta.channels), meta.outputs, **meta.model_kwargs)
        state = torch.load(path / WEIGHTS, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as exc:  # noqa: BLE001 - any unreadable or mismatched weights file
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise EOError(f"cannot load model {path}: {first}", "re-export the model, or point to an intact package") from None
    return ModelPackage(path, meta, model.eval())


def _load_graph_only(path: Path, meta: PackageMeta) -> ModelPackage:
    """A package whose model is its ONNX graph alone (classical models), run by ONNX Runtime."""
    from eoengine.models.onnx import OnnxModule, session

    if not (path / ONNX).exists():
        raise EOError(f"cannot load model {path}: its {meta.model} graph {ONNX} is missing",
                      "point to an intact package, or retrain it with 'eoengine train'")
    return ModelPackage(path, meta, OnnxModule(session(path / ONNX)).eval())
