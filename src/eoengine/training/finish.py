"""What a finished training run leaves behind: scores, plots, the model package, MLflow records.

Called in the primary process inside the run's MLflow context, after the best checkpoint
has been scored on the validation and test splits.
"""

from __future__ import annotations

import json
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from torch import nn

from eoengine.config.schema import ProjectConfig
from eoengine.datasets.location import dataset_source
from eoengine.datasets.schema import DatasetManifest
from eoengine.models.heads import Head, output_channels
from eoengine.models.meta import DatasetRef, Normalization, PackageMeta
from eoengine.models.package import save_package, stack_indexes
from eoengine.training.heads import HEAD_SCALARS
from eoengine.training.metrics import per_class_metrics
from eoengine.training.plots import plot_confusion, plot_curves

PACKAGES = ("torch", "lightning", "torchmetrics", "mlflow", "rasterio", "numpy", "apache-beam", "zarr", "eoengine")


@dataclass
class RunRecord:
    """The facts of one run that its outputs record."""

    cfg: ProjectConfig
    manifest: DatasetManifest
    root: Path
    heads: list[Head]
    run_id: str
    run_dir: Path
    tracking_uri: str
    best_epoch: int
    history: dict[str, list[tuple[int, float]]]


def environment() -> dict[str, str]:
    """Python, platform, PyTorch's CPU thread count and the versions of the packages a run depends on."""
    # CPU kernels sum in a thread-dependent order: the same seed gives other scores on other thread counts
    env = {"python": sys.version.split()[0], "platform": platform.platform(), "torch.threads": str(torch.get_num_threads())}
    for name in PACKAGES:
        try:
            env[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            env[name] = "not installed"
    return env


def log_environment() -> None:
    """Record the environment on the active MLflow run (tags and environment.json)."""
    import mlflow

    env = environment()
    mlflow.set_tags({f"env.{k}": v for k, v in env.items()})
    mlflow.log_dict(env, "environment.json")


def package_meta(rec: RunRecord, kwargs: dict[str, Any]) -> PackageMeta:
    """The model package's description of itself.

    Args:
        rec: The run (config, dataset manifest and folder, heads, run id, best epoch).
        kwargs: The arguments the model was built with.

    Returns:
        The description, without what the written files add (``size_multiple``, ``onnx``).

    """
    cfg, m = rec.cfg, rec.manifest
    stats = m.statistics.train
    return PackageMeta(
        model=cfg.model.name, model_kwargs=kwargs,
        task=cfg.task.type, heads=[h.meta() for h in rec.heads], output_channels=output_channels(rec.heads),
        target_name=m.targets.values.name if m.targets.values else None, timesteps=m.timesteps,
        bands=m.bands, band_specs=m.band_specs, stack_indexes=stack_indexes(m), indices=m.indices,
        index_constants=m.index_constants, channels=m.channels,
        normalization=Normalization(mean=stats.mean, std=stats.std),
        patch_size=m.patch_size, classes=m.classes, resampling=m.resampling,
        dataset=DatasetRef(name=m.name, version=m.version, path=dataset_source(rec.root)),
        run_id=rec.run_id, tracking_uri=rec.tracking_uri, best_epoch=rec.best_epoch,
        created=datetime.now(UTC).isoformat(timespec="seconds"), prediction=cfg.prediction.model_dump(),
    )


def finish_run(
    rec: RunRecord, model: nn.Module | None, val_all: dict[str, Any], test_all: dict[str, Any], kwargs: dict[str, Any],
    save: Callable[[PackageMeta, Path], Path] | None = None,
) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """Write plots, scores and the package; log them to MLflow. Returns (package, val, test).

    ``save(meta, folder)`` writes the package; by default ``model`` is saved with its weights
    and ONNX export (classical models pass their own writer and no module).
    """
    import mlflow

    heads, run_dir = rec.heads, rec.run_dir
    plot_curves(rec.history, run_dir / "training_curves.png")
    artifacts = ["training_curves.png", "scores.json"]
    final = test_all or val_all
    confusion = next((h for h in heads if "confusion_matrix" in final[h.name]), None)
    if confusion is not None:
        plot_confusion(final[confusion.name]["confusion_matrix"], [c.name for c in rec.manifest.classes],
                       run_dir / "confusion_matrix.png", f"confusion matrix ({'test' if test_all else 'val'} split)")
        artifacts.append("confusion_matrix.png")
    names = [c.name for c in rec.manifest.classes]
    summary = {f"best_val_{h.prefix}{k}": val_all[h.name][k] for h in heads for k in HEAD_SCALARS[h.type]}
    for h in heads:
        summary |= per_class_metrics(val_all[h.name], names, f"best_val_{h.prefix}")
    if test_all:
        summary |= {f"test_{h.prefix}{k}": test_all[h.name][k] for h in heads for k in HEAD_SCALARS[h.type]}
        for h in heads:
            summary |= per_class_metrics(test_all[h.name], names, f"test_{h.prefix}")
    mlflow.log_metrics(summary)
    single = len(heads) == 1
    val = val_all[heads[0].name] if single else val_all
    test = (test_all[heads[0].name] if test_all else {}) if single else test_all
    if save is None:
        assert model is not None, "finish_run needs the model or a package writer"
        save = partial(save_package, model)
    model_dir = save(package_meta(rec, kwargs), run_dir / "model")
    (run_dir / "scores.json").write_text(json.dumps({"val": val, "test": test, "best_epoch": rec.best_epoch}, indent=2))
    mlflow.log_artifacts(str(model_dir), "model")
    for name in artifacts:
        mlflow.log_artifact(str(run_dir / name))
    return model_dir, val, test
