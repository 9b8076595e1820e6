"""Static int8 quantization of a package's ONNX graph, calibrated once, with chosen nodes left in fp32.

:class:`StaticInt8` pre-processes the package's ``model.onnx`` and calibrates the activation ranges on train
chips once (ONNX Runtime's calibration cache); it then writes int8 graphs (QDQ, per-channel int8 weights,
uint8 activations) with any of the weighted nodes (convolutions and matrix products) excluded, and ranks those
nodes by sensitivity: how far the output moves from fp32 on the calibration chips when that node alone is int8.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from eoengine.deploy.onnx import sample_chips
from eoengine.models.classical import refuse_network_only
from eoengine.models.onnx import session
from eoengine.models.package import ONNX, ModelPackage, export_onnx

WEIGHTED_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")
"""The node types ranked and excluded: those whose weights are quantized."""
EXCLUDED_KEY = "eoengine.int8.excluded_nodes"
"""The int8 graph's metadata entry listing the nodes left in fp32 (a JSON list)."""


@dataclass
class NodeSensitivity:
    """How much quantizing one node alone moves the output from fp32 on the calibration chips."""

    node: str
    op: str
    mean_abs_diff: float
    """Mean absolute difference of the model's raw outputs (logits or scaled values) to fp32."""
    changed: float
    """Share of output positions whose top channel (the argmax over outputs) changed."""

    def as_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return asdict(self)


class _Reader:
    """Feeds calibration chips to ONNX Runtime's calibrator, one batch at a time."""

    def __init__(self, chips: np.ndarray, name: str, batch: int = 8) -> None:
        self.batches = [{name: chips[i:i + batch]} for i in range(0, len(chips), batch)]

    def get_next(self) -> dict[str, np.ndarray] | None:
        return self.batches.pop(0) if self.batches else None

    def rewind(self) -> None:  # pragma: no cover - part of the reader protocol
        pass


class StaticInt8:
    """A package's graph ready for static int8 quantization (use as a context manager: it keeps a temp folder).

    Args:
        pkg: The model package (a network; its ``model.onnx`` is exported if missing).
        calibration_chips: Train chips the activation ranges are calibrated on.

    Raises:
        EOError: A classical package, or the package's dataset is missing.

    """

    def __init__(self, pkg: ModelPackage, calibration_chips: int = 64) -> None:
        from onnxruntime.quantization.shape_inference import quant_pre_process

        refuse_network_only(pkg.meta, "quantize")
        self.fp32 = pkg.path / ONNX
        if not self.fp32.exists():
            export_onnx(pkg.model, len(pkg.meta.channels), pkg.meta.patch_size, self.fp32)
        self.chips = np.ascontiguousarray(sample_chips(pkg, calibration_chips, "train").numpy(), dtype=np.float32)
        self._tmp = Path(tempfile.mkdtemp(prefix="eoengine-int8-"))
        self.prepared = self._tmp / "prepared.onnx"
        try:
            quant_pre_process(str(self.fp32), str(self.prepared), skip_symbolic_shape=True)
        except Exception:  # noqa: BLE001 - pre-processing is an optimisation; quantize the export as is
            shutil.copy(self.fp32, self.prepared)
        self._cache = self._tmp / "calibration.json"
        self.input_name: str = session(self.prepared).get_inputs()[0].name

    def __enter__(self) -> StaticInt8:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Remove the temporary folder (pre-processed graph, calibration cache, ranking graphs)."""
        shutil.rmtree(self._tmp, ignore_errors=True)

    @property
    def nodes(self) -> list[tuple[str, str]]:
        """(name, type) of the weighted nodes of the pre-processed graph, in graph order."""
        import onnx

        graph = onnx.load(str(self.prepared), load_external_data=False).graph
        return [(n.name, n.op_type) for n in graph.node if n.op_type in WEIGHTED_OPS]

    def write(self, dest: Path, exclude: Iterable[str] = (), only: str | None = None) -> Path:
        """Write a static int8 graph, leaving the ``exclude`` nodes in fp32 (or quantizing ``only`` that node).

        Args:
            dest: The ``.onnx`` file to write.
            exclude: Node names (of :attr:`nodes`) kept in fp32.
            only: Quantize this node alone (for the ranking).

        Returns:
            ``dest``; the excluded nodes are recorded in its metadata under :data:`EXCLUDED_KEY`.

        """
        import onnx
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

        CalibrationDataReader.register(_Reader)
        excluded = list(exclude)
        reader = None if self._cache.exists() else _Reader(self.chips, self.input_name)
        quantize_static(str(self.prepared), str(dest), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                        weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                        nodes_to_quantize=[only] if only else None, nodes_to_exclude=excluded or None,
                        calibration_cache_path=self._cache)
        model = onnx.load(str(dest))
        entry = model.metadata_props.add()
        entry.key, entry.value = EXCLUDED_KEY, json.dumps(excluded)
        onnx.save_model(model, str(dest))
        return dest

    def _outputs(self, path: Path) -> np.ndarray:
        sess = session(path)
        return np.concatenate([sess.run(None, {self.input_name: self.chips[i:i + 16]})[0]
                               for i in range(0, len(self.chips), 16)])

    def sensitivity(self) -> list[NodeSensitivity]:
        """Rank the weighted nodes: quantize each alone and compare the output to fp32 on the calibration chips.

        Returns:
            One record per node, most sensitive (largest mean absolute output difference) first.

        """
        reference = self._outputs(self.prepared)
        ranked = []
        for name, op in self.nodes:
            out = self._outputs(self.write(self._tmp / "one.onnx", only=name))
            changed = float(np.mean(out.argmax(1) != reference.argmax(1))) if reference.ndim > 1 else 0.0
            ranked.append(NodeSensitivity(name, op, float(np.mean(np.abs(out - reference))), changed))
        return sorted(ranked, key=lambda s: s.mean_abs_diff, reverse=True)


def excluded_nodes(path: Path) -> list[str] | None:
    """The nodes an int8 graph written by :meth:`StaticInt8.write` left in fp32 (None: not recorded).

    Args:
        path: The int8 ``.onnx`` file.

    Returns:
        The node names, or None for a graph without the record.

    """
    import onnx

    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    return json.loads(props[EXCLUDED_KEY]) if EXCLUDED_KEY in props else None
