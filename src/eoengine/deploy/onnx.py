"""ONNX Runtime sessions for model packages, and the export check against PyTorch.

``export_checked`` (re)exports a package's ``model.onnx`` with dynamic batch and spatial
size, then runs real chips of the package's dataset through both PyTorch and ONNX Runtime,
at the training patch size and at twice that size, and reports how far the logits and the
predicted classes differ. An export that disagrees beyond the tolerance is not kept.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from eoengine.deploy.package import ONNX, ModelPackage, export_onnx
from eoengine.errors import EOError, NotFound


def session(path: Path | bytes, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session (of a file, or a serialised graph) using ``threads`` (default: every core)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or os.cpu_count() or 1
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(path if isinstance(path, bytes) else str(path), opts, providers=["CPUExecutionProvider"])
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


def sample_chips(pkg: ModelPackage, n: int = 16, split: str = "test") -> torch.Tensor:
    """Up to ``n`` normalised chips of the package's dataset (test split, else train)."""
    from eoengine.training.data import ChipDataset

    root = Path(pkg.meta.get("dataset", {}).get("path", ""))
    if not (root / "manifest.json").exists():
        raise NotFound(f"the model's dataset is not at '{root}'", "pass --dataset PATH to a dataset built with the model's bands")
    ds = ChipDataset(root, split)
    if len(ds) == 0:
        ds = ChipDataset(root, "train")
    return torch.stack([ds[i][0] for i in range(min(n, len(ds)))])


@dataclass
class ExportCheck:
    """How far ONNX Runtime is from PyTorch on real chips."""

    path: Path
    chips: int
    max_abs_diff: float
    class_agreement: float
    sizes_checked: list[int]
    tolerance: float

    @property
    def ok(self) -> bool:
        """Within tolerance."""
        return self.max_abs_diff <= self.tolerance


def compare(pkg: ModelPackage, onnx_path: Path, chips: torch.Tensor) -> tuple[float, float, list[int]]:
    """(max |logit difference|, share of pixels with the same class, sides checked)."""
    forward = ort_forward(session(onnx_path))
    worst, same, total = 0.0, 0, 0
    p = chips.shape[-1]
    big = torch.cat([torch.cat([chips[i], chips[(i + 1) % len(chips)]], -1) for i in range(2)], -2)[None] \
        if len(chips) >= 2 else None  # four real chips tiled into one 2P x 2P image: dynamic size
    sizes = [p]
    batches = [chips]
    if big is not None and big.shape[-1] == 2 * p and big.shape[-2] == 2 * p:
        sizes.append(2 * p)
        batches.append(big)
    with torch.inference_mode():
        for x in batches:
            a, b = pkg.model(x), forward(x)
            worst = max(worst, float((a - b).abs().max()))
            if a.ndim >= 2:
                same += int((a.argmax(1) == b.argmax(1)).sum())
                total += a.argmax(1).numel()
    return worst, same / max(total, 1), sizes


def export_checked(pkg: ModelPackage, out: Path | None = None, tolerance: float = 1e-4, chips: int = 16) -> ExportCheck:
    """Export the package's model to ONNX and check it on real chips; keep it only if it agrees."""
    x = sample_chips(pkg, chips)
    target = out or pkg.path / ONNX
    tmp = Path(tempfile.mkdtemp(prefix="eoengine-onnx-"))
    try:
        candidate = tmp / "model.onnx"
        export_onnx(pkg.model, len(pkg.meta["channels"]), int(pkg.meta["patch_size"]), candidate)
        worst, agree, sizes = compare(pkg, candidate, x)
        check = ExportCheck(target, len(x), worst, agree, sizes, tolerance)
        if not check.ok:
            raise EOError(f"the ONNX graph differs from PyTorch by up to {worst:.2e} on real chips (tolerance {tolerance:g})",
                          "raise --tolerance if that is acceptable, or report the model: an operator exports badly")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(candidate), target)
        return check
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
