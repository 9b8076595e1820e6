"""ONNX Runtime sessions, and a graph wrapped as a PyTorch module.

Model packages of the classical models hold only a graph; they, ``predict --engine onnx``, the
export check and the quantization report run graphs through these.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from eoengine.errors import EOError

KEPT_FP32 = ["WeightBiasQuantization"]
"""ONNX Runtime optimisers every session leaves out: ``WeightBiasQuantization`` quantizes the weights of an fp32
convolution or matrix product whose input and output are quantized, undoing a node left in fp32 on purpose
(``eoengine quantize --max-drop``); a graph quantized in full or not at all is the same without it."""


def session(path: Path | bytes, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session (of a file, or a serialised graph) using ``threads`` (default: every core)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or os.cpu_count() or 1
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(path if isinstance(path, bytes) else str(path), opts, providers=["CPUExecutionProvider"],
                                    disabled_optimizers=KEPT_FP32)
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        where = "the graph" if isinstance(path, bytes) else path
        raise EOError(f"ONNX Runtime cannot load {where}: {str(exc).splitlines()[0]}",
                      "re-export it with 'eoengine export MODEL --format onnx'") from None


def ort_forward(sess: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """A torch-in, torch-out forward function over an ONNX Runtime session."""
    name = sess.get_inputs()[0].name

    def forward(x: torch.Tensor) -> torch.Tensor:
        out = sess.run(None, {name: np.ascontiguousarray(x.numpy(), dtype=np.float32)})[0]
        return torch.from_numpy(out)

    return forward


class OnnxModule(nn.Module):
    """An ONNX graph run by ONNX Runtime, usable wherever a package's PyTorch model is.

    Models without PyTorch weights (the classical ones) are loaded as this, so evaluation,
    prediction, serving and the registry's pyfunc run their graph unchanged.
    """

    def __init__(self, sess: Any) -> None:
        super().__init__()
        self._forward = ort_forward(sess)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) normalised images -> the graph's output."""
        return self._forward(x)
