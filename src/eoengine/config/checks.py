"""Checks of a config that need more than its schema: files, names, labels, components."""

from __future__ import annotations

from pathlib import Path

from eoengine.config.schema import ProjectConfig
from eoengine.errors import EOError


def _try(problems: list[str], field: str, fn: object, *args: object) -> None:
    try:
        fn(*args)  # type: ignore[operator]
    except EOError as exc:
        problems.append(f"{field}: {exc}")


def check_config(cfg: ProjectConfig) -> list[str]:
    """Every problem found, each naming the field; empty when the config is ready to run."""
    from eoengine.features.indices import check_indices
    from eoengine.labels.vector import read_labelled_area, read_vector_labels
    from eoengine.models.registry import check_model_name
    from eoengine.raster.scene import open_raster, resolve_scene_bands
    from eoengine.training.heads import check_head_losses, planned_heads
    from eoengine.training.optim import check_optimizer, check_scheduler

    problems: list[str] = []
    bands = cfg.imagery.bands
    for i, scene in enumerate(cfg.imagery.scenes):
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
    source = cfg.imagery.source
    if source is not None and "://" not in source.catalog and not Path(cfg.resolve(source.catalog)).exists():
        problems.append(f"imagery.source.catalog: not found: {cfg.resolve(source.catalog)}")
    lab = cfg.labels
    if lab.type == "vector" and lab.path:
        _try(problems, "labels", read_vector_labels, cfg.resolve(lab.path), lab.class_column, cfg.classes, lab.layer,
             lab.class_value)
        if lab.labelled_area:
            _try(problems, "labels.labelled_area", read_labelled_area, cfg.resolve(lab.labelled_area))
    elif lab.type == "raster":
        paths = [s.labels for s in cfg.imagery.scenes if s.labels] or ([lab.path] if lab.path else [])
        if not paths:
            problems.append("labels.path: a raster label source needs labels.path (or labels per scene)")
        for p in paths:
            _try(problems, "labels.path", lambda q: open_raster(str(cfg.resolve(q))).close(), p)
    if cfg.dataset.split.path and not Path(cfg.resolve(cfg.dataset.split.path)).exists():
        problems.append(f"dataset.split.path: file not found: {cfg.resolve(cfg.dataset.split.path)}")
    _try(problems, "model.name", check_model_name, cfg.model.name)
    loss = cfg.training.loss
    _try(problems, "training.loss", check_head_losses, cfg)
    _try(problems, "training.optimizer.name", check_optimizer, cfg.training.optimizer.name)
    if cfg.training.scheduler:
        _try(problems, "training.scheduler.name", check_scheduler, cfg.training.scheduler.name)
    if cfg.training.early_stopping and cfg.training.early_stopping.monitor:
        from eoengine.training.train import check_monitor

        _try(problems, "training.early_stopping.monitor", check_monitor, cfg.training.early_stopping.monitor,
             planned_heads(cfg))
    if isinstance(loss.class_weights, list) and len(loss.class_weights) != len(cfg.classes):
        problems.append(f"training.loss.class_weights: {len(loss.class_weights)} values for {len(cfg.classes)} classes")
    return problems
