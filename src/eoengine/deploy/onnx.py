"""The export check of a model package's ONNX graph against PyTorch.

``export_checked`` (re)exports a package's ``model.onnx`` with dynamic batch and spatial
size, then runs real chips of the package's dataset through both PyTorch and ONNX Runtime,
at the training patch size and at twice that size, and reports how far the logits and the
predicted classes differ. An export that disagrees beyond the tolerance is not kept.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from eoengine.errors import EOError, NotFound
from eoengine.models.onnx import ort_forward, session
from eoengine.models.package import ONNX, ModelPackage, export_onnx


def sample_chips(pkg: ModelPackage, n: int = 16, split: str = "test") -> torch.Tensor:
    """Up to ``n`` normalised chips of the package's dataset (test split, else train)."""
    from eoengine.datasets.remote import dataset_root
    from eoengine.training.data import ChipDataset

    root = dataset_root(pkg.meta.dataset.path)
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
        export_onnx(pkg.model, len(pkg.meta.channels), pkg.meta.patch_size, candidate)
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
