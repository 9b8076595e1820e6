"""Checks of a config that need more than its schema: files, names, labels, components, the dataset.

``validate`` and ``train`` both run :func:`check_config`, so a config one accepts the other
accepts too. A config that trains on an existing dataset (``training.dataset``) is checked
against that dataset's manifest (classes, targets, channels, dates) instead of imagery.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eoengine.config.schema import ImageryConfig, LabelsConfig, ProjectConfig, timesteps_problem
from eoengine.errors import EOError


def _try(problems: list[str], field: str, fn: object, *args: object) -> None:
    try:
        fn(*args)  # type: ignore[operator]
    except EOError as exc:
        problems.append(f"{field}: {exc}")


def _check_imagery(cfg: ProjectConfig, imagery: ImageryConfig, problems: list[str]) -> None:
    from eoengine.features.indices import check_indices
    from eoengine.raster.scene import open_raster, resolve_scene_bands

    bands = imagery.bands
    for i, scene in enumerate(imagery.scenes):
        try:
            for src in resolve_scene_bands(bands, scene, cfg.base_dir):
                try:
                    open_raster(src.path).close()
                except EOError as exc:
                    problems.append(f"imagery.scenes[{i}] ({scene.id}), band {src.name}: {exc}")
        except EOError as exc:
            problems.append(f"imagery.scenes[{i}]: {exc}")
    _try(problems, "features.indices", check_indices, cfg.features.indices,
         [b.name for b in bands], [b.common_name for b in bands])
    source = imagery.source
    if source is not None and "://" not in source.catalog and not Path(cfg.resolve(source.catalog)).exists():
        problems.append(f"imagery.source.catalog: not found: {cfg.resolve(source.catalog)}")


def _check_labels(cfg: ProjectConfig, lab: LabelsConfig, problems: list[str]) -> None:
    from eoengine.labels.vector import read_labelled_area, read_vector_labels
    from eoengine.raster.scene import open_raster

    if lab.type == "vector" and lab.path:
        _try(problems, "labels", read_vector_labels, cfg.resolve(lab.path), lab.class_column, cfg.classes, lab.layer,
             lab.class_value)
        if lab.labelled_area:
            _try(problems, "labels.labelled_area", read_labelled_area, cfg.resolve(lab.labelled_area))
    elif lab.type == "raster":
        scenes = cfg.imagery.scenes if cfg.imagery else []
        paths = [s.labels for s in scenes if s.labels] or ([lab.path] if lab.path else [])
        if not paths:
            problems.append("labels.path: a raster label source needs labels.path (or labels per scene)")
        for p in paths:
            _try(problems, "labels.path", lambda q: open_raster(str(cfg.resolve(q))).close(), p)


def _dataset_manifest(cfg: ProjectConfig, dataset: Path | None, problems: list[str]) -> dict[str, Any] | None:
    from eoengine.datasets.store import read_manifest

    root = dataset if dataset is not None else cfg.resolve(cfg.training.dataset) if cfg.training.dataset else None
    if root is None:
        return None
    try:
        return read_manifest(Path(root))
    except EOError as exc:
        problems.append(f"training.dataset: {exc}")
        return None


def _check_fits_dataset(cfg: ProjectConfig, manifest: dict[str, Any], problems: list[str]) -> None:
    from eoengine.training.train import check_bands

    _try(problems, "model.kwargs.in_channels", check_bands, cfg, manifest)
    problem = timesteps_problem(cfg.task.type, int(manifest.get("timesteps", 1)))
    if problem:
        problems.append(f"task.type: the dataset {manifest['name']}: {problem}")


def check_config(cfg: ProjectConfig, dataset: Path | None = None) -> list[str]:
    """Every problem found, each naming the field; empty when the config is ready to run.

    Args:
        cfg: the loaded config.
        dataset: the dataset to train on, when given outside the config (``train --dataset``);
            otherwise ``training.dataset`` if set.

    Returns:
        One line per problem, each starting with the field it concerns.

    """
    from eoengine.models.registry import check_model_name
    from eoengine.training.heads import check_head_losses, planned_heads
    from eoengine.training.optim import check_optimizer, check_scheduler

    problems: list[str] = []
    if cfg.imagery is not None:
        _check_imagery(cfg, cfg.imagery, problems)
    if cfg.labels is not None:
        _check_labels(cfg, cfg.labels, problems)
    if cfg.dataset.split.path and not Path(cfg.resolve(cfg.dataset.split.path)).exists():
        problems.append(f"dataset.split.path: file not found: {cfg.resolve(cfg.dataset.split.path)}")
    manifest = _dataset_manifest(cfg, dataset, problems)
    n_classes = len(manifest["classes"]) if manifest else len(cfg.classes)
    _try(problems, "model.name", check_model_name, cfg.model.name)
    loss = cfg.training.loss
    _try(problems, "training.loss", check_head_losses, cfg, n_classes)
    _try(problems, "training.optimizer.name", check_optimizer, cfg.training.optimizer.name)
    if cfg.training.scheduler:
        _try(problems, "training.scheduler.name", check_scheduler, cfg.training.scheduler.name)
    if cfg.training.early_stopping and cfg.training.early_stopping.monitor:
        from eoengine.training.train import check_monitor

        _try(problems, "training.early_stopping.monitor", check_monitor, cfg.training.early_stopping.monitor,
             planned_heads(cfg, n_classes))
    if isinstance(loss.class_weights, list) and len(loss.class_weights) != n_classes:
        problems.append(f"training.loss.class_weights: {len(loss.class_weights)} values for {n_classes} classes")
    elif manifest is not None:
        from eoengine.training.heads import build_heads

        _try(problems, "training.dataset", build_heads, cfg, manifest)  # the targets the heads need, class weights
    if manifest is not None:
        _check_fits_dataset(cfg, manifest, problems)
    return problems
