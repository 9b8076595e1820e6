"""Smaller, faster models: int8 quantization with ONNX Runtime and pruning with PyTorch.

Both write new files beside the package and report, side by side with the fp32 model: file
size, inference time on a batch of real chips, and the test-split scores, so the trade-off is
visible before a compressed model is deployed.

- ``quantize``: static int8 (QDQ, per-channel weights, activations calibrated on train chips)
  and dynamic int8 (weights only; activations quantized on the fly).
- ``prune``: L1 unstructured (individual weights, global across layers) or Ln structured
  (whole output channels per layer) on every convolution and linear layer, made permanent,
  with optional fine-tuning on the train split; saved as a new model package.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from eoengine.deploy.int8 import StaticInt8
from eoengine.deploy.onnx import sample_chips
from eoengine.errors import EOError, NotFound
from eoengine.models.classical import refuse_network_only
from eoengine.models.heads import heads_from_meta
from eoengine.models.meta import PackageMeta, Pruning
from eoengine.models.onnx import ort_forward, session
from eoengine.models.package import ModelPackage, save_package
from eoengine.training.heads import HEAD_SCALARS

INT8_STATIC = "model.int8.onnx"
INT8_DYNAMIC = "model.int8-dynamic.onnx"


def _dataset(pkg: ModelPackage) -> Path:
    from eoengine.datasets.remote import dataset_root

    root = dataset_root(pkg.meta.dataset.path)
    if not (root / "manifest.json").exists():
        raise NotFound(f"the model's dataset is not at '{root}'", "keep the dataset the model was trained on beside it")
    return root


def main_metric(pkg: ModelPackage) -> str:
    """The report's compared score, as its scores name it: mean IoU, F1 or RMSE of the first head."""
    head = heads_from_meta(pkg.meta)[0]
    return head.prefix + {"regression": "rmse", "multilabel": "f1"}.get(head.type, "miou")


def measure(pkg: ModelPackage, forward: Callable[[torch.Tensor], torch.Tensor], chips: torch.Tensor,
            size_bytes: int, repeats: int = 5) -> dict[str, Any]:
    """Size, time per batch of ``chips`` (median of ``repeats``) and test-split scores of one variant."""
    from eoengine.training.scores import split_scores

    with torch.inference_mode():
        forward(chips)  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            forward(chips)
            times.append(time.perf_counter() - start)
    scores = split_scores(pkg, _dataset(pkg), "test", forward=forward)
    heads = heads_from_meta(pkg.meta)
    flat = {f"{h.prefix}{k}": float(scores[h.name][k]) for h in heads for k in HEAD_SCALARS[h.type]}
    return {"size_mb": size_bytes / 2**20, "ms_per_batch": 1000 * float(np.median(times)), "batch": len(chips), "scores": flat}


def quantize(pkg: ModelPackage, calibration_chips: int = 64, bench_chips: int = 8) -> dict[str, Any]:
    """Write int8 static and dynamic ONNX models beside the package; return the side-by-side report."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with StaticInt8(pkg, calibration_chips) as static:
        static.write(pkg.path / INT8_STATIC)
        quantize_dynamic(str(static.prepared), str(pkg.path / INT8_DYNAMIC), weight_type=QuantType.QInt8)
    fp32 = static.fp32
    chips = sample_chips(pkg, bench_chips)
    report = {
        "pytorch_fp32": measure(pkg, pkg.model, chips, (pkg.path / "weights.pt").stat().st_size),
        "onnx_fp32": measure(pkg, ort_forward(session(fp32)), chips, fp32.stat().st_size),
    }
    for key, name in (("onnx_int8_static", INT8_STATIC), ("onnx_int8_dynamic", INT8_DYNAMIC)):
        try:
            report[key] = measure(pkg, ort_forward(session(pkg.path / name)), chips, (pkg.path / name).stat().st_size)
        except EOError as exc:  # e.g. an operator the CPU provider has no int8 kernel for
            report[key] = {"error": str(exc)}
    _record(pkg, "quantization", report)
    return report


def _prunable(model: nn.Module) -> list[tuple[nn.Module, str]]:
    return [(m, "weight") for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear | nn.Conv3d | nn.ConvTranspose2d)]


def _weight(module: nn.Module) -> torch.Tensor:
    weight: torch.Tensor = module.weight  # type: ignore[assignment]
    return weight


def sparsity(model: nn.Module) -> float:
    """Share of zero weights over the prunable layers."""
    params = [_weight(m) for m, _ in _prunable(model)]
    total = sum(int(p.numel()) for p in params)
    return sum(int(torch.count_nonzero(p == 0)) for p in params) / max(total, 1)


def prune_model(model: nn.Module, amount: float, method: str = "unstructured") -> nn.Module:
    """Prune ``amount`` of the weights in place (made permanent) and return the model."""
    import torch.nn.utils.prune as tprune

    if not 0 < amount < 1:
        raise EOError(f"--amount must be between 0 and 1, got {amount}", "e.g. --amount 0.5 removes half the weights")
    layers = _prunable(model)
    if method == "unstructured":
        tprune.global_unstructured(layers, pruning_method=tprune.L1Unstructured, amount=amount)
    elif method == "structured":
        for module, name in layers:
            if _weight(module).shape[0] > 1 and not isinstance(module, nn.ConvTranspose2d):
                tprune.ln_structured(module, name, amount=amount, n=2, dim=0)
    else:
        raise EOError(f"unknown pruning method '{method}'", "use unstructured or structured")
    for module, name in layers:
        if tprune.is_pruned(module):
            tprune.remove(module, name)
    return model


def _finetune(pkg: ModelPackage, model: nn.Module, epochs: int, lr: float) -> None:
    """Train the pruned model a little on the train split, keeping pruned weights at zero."""
    from torch.utils.data import DataLoader

    from eoengine.models.heads import TARGET_KEY, split_outputs
    from eoengine.training.data import ChipDataset
    from eoengine.training.heads import loss_input
    from eoengine.training.losses import DEFAULT_LOSS, build_loss

    heads = heads_from_meta(pkg.meta)
    losses = [build_loss(DEFAULT_LOSS[h.type], kind=h.type) for h in heads]
    masks = [(_weight(m), _weight(m) != 0) for m, _ in _prunable(model)]
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    loader = DataLoader(ChipDataset(_dataset(pkg), "train"), batch_size=16, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    model.train()
    for _ in range(epochs):
        for x, targets in loader:
            opt.zero_grad()
            total = sum((fn(*loss_input(h, p, targets[TARGET_KEY[h.type]])) * h.weight
                         for h, fn, p in zip(heads, losses, split_outputs(model(x), heads), strict=True)), torch.zeros(()))
            total.backward()
            opt.step()
            with torch.no_grad():
                for weight, keep in masks:
                    weight.mul_(keep)
    model.eval()


def prune(pkg: ModelPackage, amount: float, method: str = "unstructured", finetune_epochs: int = 0,
          lr: float = 1e-4, out: Path | None = None, bench_chips: int = 8) -> tuple[Path, dict[str, Any]]:
    """Write a pruned copy of the package (default ``<package>-pruned``) and the side-by-side report."""
    from eoengine.models.package import load_package

    refuse_network_only(pkg.meta, "prune")
    chips = sample_chips(pkg, bench_chips)
    before = measure(pkg, pkg.model, chips, _gzip_size(pkg.path / "weights.pt"))
    before["sparsity"] = sparsity(pkg.model)
    model = prune_model(load_package(pkg.path).model, amount, method)
    if finetune_epochs:
        _finetune(pkg, model, finetune_epochs, lr)
    meta = PackageMeta.model_validate(pkg.meta.as_dict() | {"pruning": Pruning(
        amount=amount, method=method, finetune_epochs=finetune_epochs, source=str(pkg.path))})
    dest = save_package(model.eval(), meta, out or pkg.path.with_name(pkg.path.name + "-pruned"))
    pruned = load_package(dest)
    after = measure(pruned, pruned.model, chips, _gzip_size(dest / "weights.pt"))
    after["sparsity"] = sparsity(pruned.model)
    report = {"original": before, "pruned": after}
    _record(pruned, "pruning", report)
    return dest, report


def _gzip_size(path: Path) -> int:
    """Compressed size: zeros left by pruning shrink the file only once compressed."""
    return len(gzip.compress(path.read_bytes(), compresslevel=6))


def _record(pkg: ModelPackage, key: str, report: dict[str, Any]) -> None:
    (pkg.path / f"{key}.json").write_text(json.dumps(report, indent=2))
