"""Checks of a config that need more than its schema: files, names, labels, components, the dataset.

``eoengine validate`` and ``train`` both run :func:`check_config`: every check that can run
before work starts, with the very functions ``dataset build`` and ``train`` use (the build's
plan, the model registry), so validate never calls valid a config that they reject, and says
so in the same words. A config that trains on an existing dataset (``training.dataset``) is
checked against that dataset's manifest (classes, targets, channels, dates) instead of a plan.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eoengine.config.output_dir import check_output_dir
from eoengine.config.schema import ImageryConfig, LabelsConfig, ProjectConfig, timesteps_problem
from eoengine.datasets.location import is_url
from eoengine.errors import EOError

if TYPE_CHECKING:
    from eoengine.datasets.schema import DatasetManifest


def _try(problems: list[str], field: str | None, fn: Callable[..., Any], *args: object) -> bool:
    try:
        fn(*args)
    except EOError as exc:
        problems.append(f"{field}: {exc}" if field else str(exc))
        return False
    return True


def _imagery_problems(cfg: ProjectConfig, imagery: ImageryConfig) -> list[str]:
    from eoengine.features.indices import check_indices
    from eoengine.raster.scene import SceneReader, resolve_scene_bands

    problems: list[str] = []
    for i, scene in enumerate(imagery.scenes):
        try:
            with SceneReader(resolve_scene_bands(imagery.bands, scene, cfg.base_dir)) as reader:
                reader.check_pixels()
        except EOError as exc:
            problems.append(f"imagery.scenes[{i}] ({scene.id}): {exc}")
    bands = imagery.bands
    _try(problems, "features.indices", check_indices, cfg.features.indices,
         [b.name for b in bands], [b.common_name for b in bands])
    source = imagery.source
    if source is not None and "://" not in source.catalog and not Path(cfg.resolve(source.catalog)).exists():
        problems.append(f"imagery.source.catalog: not found: {cfg.resolve(source.catalog)}")
    return problems


def _label_problems(cfg: ProjectConfig, lab: LabelsConfig) -> list[str]:
    from eoengine.labels.vector import read_labelled_area, read_vector_labels
    from eoengine.raster.scene import open_raster

    problems: list[str] = []
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
    return problems


def _input_problems(cfg: ProjectConfig) -> list[str]:
    problems = _imagery_problems(cfg, cfg.imagery) if cfg.imagery is not None else []
    if cfg.labels is not None:
        problems += _label_problems(cfg, cfg.labels)
    if cfg.dataset.split.path and not Path(cfg.resolve(cfg.dataset.split.path)).exists():
        problems.append(f"dataset.split.path: file not found: {cfg.resolve(cfg.dataset.split.path)}")
    return problems


def _plan(cfg: ProjectConfig) -> None:
    from eoengine.datasets.plan import plan_build

    with tempfile.TemporaryDirectory() as scratch:
        plan_build(cfg.for_build(), Path(scratch))


def dataset_folder(cfg: ProjectConfig, dataset: Path | str | None) -> Path | None:
    """The dataset named outside the config, else by ``training.dataset``, as a local folder.

    Args:
        cfg: The project config (a path in ``training.dataset`` is relative to its folder).
        dataset: A folder or a served dataset's URL given outside the config, if any.

    Returns:
        The folder (for a URL, its cache folder with the manifest just fetched); None when no
        dataset is named.

    Raises:
        EOError: A URL's server refused the token, cannot be reached or has no dataset there
            (as :func:`eoengine.datasets.remote.dataset_root` says).

    """
    from eoengine.datasets.remote import dataset_root

    if dataset is None:
        if not cfg.training.dataset:
            return None
        dataset = cfg.training.dataset if is_url(cfg.training.dataset) else cfg.resolve(cfg.training.dataset)
    return dataset_root(dataset)


def _dataset_manifest(cfg: ProjectConfig, dataset: Path | None, problems: list[str]) -> tuple[Path, DatasetManifest] | None:
    from eoengine.datasets.schema import DatasetManifest

    try:
        root = dataset_folder(cfg, dataset)
        return None if root is None else (root, DatasetManifest.read(root))
    except EOError as exc:
        problems.append(f"training.dataset: {exc}")
        return None


def _fit_problems(cfg: ProjectConfig, root: Path, manifest: DatasetManifest) -> list[str]:
    from eoengine.training.heads import build_heads
    from eoengine.training.train import check_bands, check_splits

    problems: list[str] = []
    weights = cfg.training.loss.class_weights
    if not isinstance(weights, list) or len(weights) == len(manifest.classes):  # else said by the training checks
        _try(problems, "training.dataset", build_heads, cfg, manifest)  # the targets the heads need, class weights
    _try(problems, "training.dataset", check_splits, root, manifest)
    _try(problems, "model.kwargs.in_channels", check_bands, cfg, manifest)
    problem = timesteps_problem(cfg.task.type, manifest.timesteps)
    if problem:
        problems.append(f"task.type: the dataset {manifest.name}: {problem}")
    return problems


def _optimization(cfg: ProjectConfig, train_chips: int) -> None:
    import torch

    from eoengine.training.optim import check_optimization

    tc = cfg.training
    steps = tc.epochs * max(1, -(-train_chips // tc.batch_size))
    check_optimization(tc.optimizer, tc.scheduler, [torch.nn.Parameter(torch.zeros(1))], steps, tc.epochs)


def _training_problems(cfg: ProjectConfig, n_classes: int | None, train_chips: int) -> list[str]:
    from eoengine.models import classical
    from eoengine.models.registry import check_model_kwargs, check_model_name
    from eoengine.training.heads import check_head_losses, planned_heads
    from eoengine.training.optim import check_optimizer, check_scheduler

    problems: list[str] = []
    if _try(problems, "model.name", check_model_name, cfg.model.name):
        given = {k: v for k, v in cfg.model.kwargs.items() if k != "in_channels"}  # checked against the dataset
        checker = classical.check_kwargs if classical.is_classical(cfg.model.name) else check_model_kwargs
        _try(problems, "model.kwargs", checker, cfg.model.name, given)
    names = _try(problems, "training.optimizer.name", check_optimizer, cfg.training.optimizer.name)
    if cfg.training.scheduler:
        names &= _try(problems, "training.scheduler.name", check_scheduler, cfg.training.scheduler.name)
    if names and not classical.is_classical(cfg.model.name):  # their arguments, on a stand-in parameter
        _try(problems, "training.optimizer", _optimization, cfg, train_chips)
    if n_classes is None:  # the dataset could not be read (said already): nothing to count classes against
        return problems
    loss = cfg.training.loss
    _try(problems, "training.loss", check_head_losses, cfg, n_classes)
    if cfg.training.early_stopping and cfg.training.early_stopping.monitor:
        from eoengine.training.train import check_monitor

        _try(problems, "training.early_stopping.monitor", check_monitor, cfg.training.early_stopping.monitor,
             planned_heads(cfg, n_classes))
    if isinstance(loss.class_weights, list) and len(loss.class_weights) != n_classes:
        problems.append(f"training.loss.class_weights: {len(loss.class_weights)} values for {n_classes} classes")
    return problems


def check_config(cfg: ProjectConfig, dataset: Path | None = None) -> list[str]:
    """Every problem found, each naming the field; empty when the config is ready to run.

    Args:
        cfg: The loaded config.
        dataset: The dataset to train on, when given outside the config (``train --dataset``,
            a resumed run, the project's latest build); otherwise ``training.dataset`` if set.
            With a dataset, the config is checked against its manifest (imagery and labels
            are not needed); without one, against the build's own plan of its imagery and labels.

    Returns:
        One line per problem, each starting with the field it concerns.

    """
    problems: list[str] = []
    _try(problems, None, check_output_dir, cfg.output_path)
    names_dataset = dataset is not None or bool(cfg.training.dataset)
    found = _dataset_manifest(cfg, dataset, problems)
    if not names_dataset:
        inputs = _input_problems(cfg)
        problems += inputs
        if not inputs and cfg.imagery is not None and cfg.labels is not None and cfg.imagery.source is None:
            _try(problems, None, _plan, cfg)  # the build's own plan (a search's scenes are fetched by build)
    if found is None:
        n_classes = None if names_dataset else len(cfg.classes)
        return problems + _training_problems(cfg, n_classes, 1000)
    root, manifest = found
    problems += _training_problems(cfg, len(manifest.classes), manifest.splits.get("train", 0))
    return problems + _fit_problems(cfg, root, manifest)
