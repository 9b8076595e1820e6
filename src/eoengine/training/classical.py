"""Train a classical per-pixel model (random forest, gradient boosting) as an MLflow run.

``eoengine train`` dispatches here when ``model.name`` is a classical model, so the run looks
like a network's: the same params, tags, dataset input and environment; validation and test
scores from the same metric code (the package's ONNX graph run over the splits' chips, as
``evaluate`` does); the same model package, with the ONNX graph in place of weights.

The estimator is fitted on labelled train pixels, normalised like a network's inputs. A
uniform random sample of at most ``max_pixels`` pixels is kept while the chips are read in
blocks, so memory stays flat however large the train split is. Class weights
(``training.loss.class_weights``) become per-pixel sample weights.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from eoengine.config.schema import ProjectConfig
from eoengine.datasets.schema import DatasetManifest
from eoengine.datasets.store import INDEX, open_arrays
from eoengine.errors import EOError
from eoengine.features.normalise import normalise
from eoengine.labels import IGNORE
from eoengine.models.classical import build_estimator, image_graph, split_kwargs
from eoengine.models.heads import Head
from eoengine.models.meta import PackageMeta
from eoengine.models.package import ONNX, ModelPackage, write_package
from eoengine.tracking.lifecycle import mark_interrupted, running
from eoengine.tracking.store import ensure_experiment, tracking_uri
from eoengine.training.finish import RunRecord, finish_run, package_meta
from eoengine.training.heads import HEAD_SCALARS, build_heads, loss_class_weights
from eoengine.training.train import TrainResult, checked_dataset, log_run_start

ESTIMATOR = "estimator.joblib"
"""The fitted scikit-learn estimator in the package (for inspection; prediction uses the ONNX graph)."""

BLOCK_PIXELS = 1_000_000
"""Pixels (of whole chips) read at a time while sampling train pixels."""


def split_ids(root: Path, split: str) -> np.ndarray:
    """Sorted chip ids of a split."""
    import pandas as pd

    index = pd.read_parquet(root / INDEX, columns=["chip_id", "split"])
    return np.sort(index.loc[index["split"] == split, "chip_id"].to_numpy())


def _labelled_blocks(root: Path, manifest: DatasetManifest, split: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(normalised pixels (N, C), classes (N,)) of a split's labelled pixels, block by block of chips."""
    stats = manifest.statistics.train
    mean, std = np.asarray(stats.mean, dtype=np.float32), np.asarray(stats.std, dtype=np.float32)
    images, labels = open_arrays(root)
    ids = split_ids(root, split)
    step = max(1, BLOCK_PIXELS // manifest.patch_size ** 2)
    for start in range(0, len(ids), step):
        block = ids[start:start + step]
        x = normalise(images.get_orthogonal_selection((block,)), mean, std)
        y = np.asarray(labels.get_orthogonal_selection((block,))).reshape(-1)
        x = x.transpose(0, 2, 3, 1).reshape(-1, x.shape[1])
        keep = y != IGNORE
        yield x[keep], y[keep].astype(np.int64)


def sample_pixels(root: Path, manifest: DatasetManifest, split: str, max_pixels: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A uniform random sample of at most ``max_pixels`` labelled pixels of a split.

    Each pixel gets a random key and the smallest keys are kept (a bottom-k reservoir), so at
    most ``max_pixels`` plus one block of pixels are held at any time.

    Args:
        root: The dataset folder.
        manifest: Its manifest (train statistics for normalisation).
        split: The split to sample.
        max_pixels: Pixels kept at most.
        seed: Seeds the keys; the same seed and dataset give the same sample.

    Returns:
        Pixels (N, channels) float32, normalised, and their classes (N,) int64.

    """
    rng = np.random.default_rng(seed)
    channels = len(manifest.channels)
    x, y, keys = np.zeros((0, channels), np.float32), np.zeros(0, np.int64), np.zeros(0)
    for bx, by in _labelled_blocks(root, manifest, split):
        x, y, keys = np.concatenate([x, bx]), np.concatenate([y, by]), np.concatenate([keys, rng.random(len(by))])
        if len(keys) > max_pixels:
            kept = np.sort(np.argpartition(keys, max_pixels - 1)[:max_pixels])
            x, y, keys = x[kept], y[kept], keys[kept]
    return x, y


def check_pixel_task(heads: list[Head], name: str) -> None:
    """Raise :class:`EOError` unless the task is one per-pixel class output (what a classical model predicts)."""
    if len(heads) != 1 or heads[0].type != "segmentation":
        kinds = ", ".join(sorted({h.type for h in heads}))
        raise EOError(f"model '{name}' classifies pixels; this task needs {kinds} output(s)",
                      "use task.type segmentation (also for 1x1 point datasets), or a network such as pixel_dnn")


def _train_pixels(cfg: ProjectConfig, root: Path, manifest: DatasetManifest, classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The sampled train pixels, their classes and their sample weights (from the class weights, or None)."""
    _, max_pixels = split_kwargs(cfg.model.kwargs)
    x, y = sample_pixels(root, manifest, "train", max_pixels, cfg.training.seed)
    if len(np.unique(y)) < 2:
        raise EOError(f"the train split of {root} has {len(np.unique(y))} labelled class(es); a classifier needs two",
                      "rebuild the dataset with labels of at least two classes in the train split")
    weights = loss_class_weights(cfg.training.loss, classes, manifest)
    return x, y, np.asarray(weights, dtype=np.float64)[y] if weights else None


def _scores(pkg: ModelPackage, root: Path, split: str) -> dict[str, Any]:
    from eoengine.training.scores import split_scores

    return split_scores(pkg, root, split, batch_size=256, validation=split == "val")


def _save(graph: Any, estimator: Any) -> Any:
    """A package writer for ``finish_run``: the ONNX graph, the estimator, no weights."""

    def save(meta: PackageMeta, dest: Path) -> Path:
        def files(tmp: Path) -> dict[str, Any]:
            import joblib

            (tmp / ONNX).write_bytes(graph.SerializeToString())
            joblib.dump(estimator, tmp / ESTIMATOR)
            return {"size_multiple": 1, "onnx": ONNX, "estimator": ESTIMATOR}

        return write_package(meta, dest, files)

    return save


def train_classical(
    cfg: ProjectConfig, dataset: Path | str | None = None, uri: str | None = None, resume: str | None = None,
    tags: dict[str, str] | None = None,
) -> TrainResult:
    """Fit the configured classical model on the train split and record it as a run.

    Args:
        cfg: The project config; ``model.name`` is ``random_forest`` or ``gradient_boosting``.
        dataset: The dataset folder or a served dataset's URL (default: configured, or the last build).
        uri: MLflow tracking URI (default: the project's).
        resume: Not supported: a classical model trains in one step.
        tags: Added to the MLflow run.

    Returns:
        The run, its package and its validation and test scores.

    Raises:
        EOError: On ``resume``, a task that is not per-pixel classes, bad kwargs or a train split without two classes.

    """
    import mlflow

    from eoengine.models.onnx import OnnxModule, session

    if resume:
        raise EOError(f"model '{cfg.model.name}' trains in one step; there is no checkpoint to resume",
                      f"run 'eoengine train CONFIG' again without --resume {resume}")
    root, manifest = checked_dataset(cfg, dataset)
    heads, _ = build_heads(cfg, manifest)
    check_pixel_task(heads, cfg.model.name)
    estimator = build_estimator(cfg.model.name, split_kwargs(cfg.model.kwargs)[0], cfg.training.seed)
    x, y, weights = _train_pixels(cfg, root, manifest, heads[0].num_classes)
    out = cfg.output_path
    track = tracking_uri(out, cfg.training.tracking_uri, uri)
    experiment = ensure_experiment(cfg.training.experiment or cfg.name, track, out / "mlartifacts")
    mark_interrupted(track, experiment, out / "runs")
    with ExitStack() as held, mlflow.start_run(experiment_id=experiment) as run:  # the lock outlives the run
        run_dir = out / "runs" / run.info.run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        held.enter_context(running(run_dir))
        log_run_start(cfg, manifest, root, tags)
        estimator.fit(x, y, sample_weight=weights)
        mlflow.log_params({"estimator": type(estimator).__name__, "train_pixels": len(y)}
                          | {f"estimator.{k}": str(v)[:500] for k, v in estimator.get_params().items()})
        graph = image_graph(estimator, len(manifest.channels), heads[0].num_classes)
        rec = RunRecord(cfg, manifest, root, heads, run.info.run_id, run_dir, track, 0, {})
        kwargs = dict(cfg.model.kwargs)
        pkg = ModelPackage(run_dir, package_meta(rec, kwargs), OnnxModule(session(graph.SerializeToString())))
        val_all = _scores(pkg, root, "val")
        test_all = _scores(pkg, root, "test") if manifest.splits.get("test") else {}
        val = {f"val_{k}": float(val_all[heads[0].name][k]) for k in HEAD_SCALARS["segmentation"]}
        mlflow.log_metrics(val, step=0)
        rec.history = {k: [(0, v)] for k, v in val.items()}
        model_dir, val_scores, test_scores = finish_run(rec, None, val_all, test_all, kwargs, save=_save(graph, estimator))
    return TrainResult(run.info.run_id, run_dir, model_dir, track, 0, val_scores, test_scores)
