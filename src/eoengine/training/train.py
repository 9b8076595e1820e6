"""Train a model on a dataset, tracked as an MLflow run.

The run records the config as params, the dataset (name, version, path) as its input,
per-epoch metrics, and artifacts: the best checkpoint, the model package (weights, ONNX,
bands, normalisation, classes), training curves and the confusion matrix as PNG, and the
test scores as JSON. The same files are kept under ``<output_dir>/runs/<run id>/``.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import tempfile
from contextlib import ExitStack, nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint

import eoengine
from eoengine.config.output_dir import check_output_dir
from eoengine.config.schema import ProjectConfig
from eoengine.datasets.build import latest_dataset
from eoengine.datasets.location import as_location, dataset_source, remote_url
from eoengine.datasets.schema import DatasetManifest
from eoengine.errors import ConfigError, Conflict, EOError, NotFound
from eoengine.models.classical import is_classical
from eoengine.models.heads import Head, default_monitor, monitor_mode, output_channels
from eoengine.models.registry import MODELS, build_model, size_multiple
from eoengine.progress import current_reporter
from eoengine.tracking.lifecycle import LOCK, mark_interrupted, process_gone, running
from eoengine.tracking.store import ensure_experiment, tracking_uri
from eoengine.training.callbacks import EpochLines, EpochLogger, ReportedEpochs, ResumeHint, RNGState
from eoengine.training.checks import check_config, dataset_folder
from eoengine.training.data import ChipDataModule
from eoengine.training.defaults import dataset_defaults
from eoengine.training.finish import RunRecord, finish_run, log_environment
from eoengine.training.heads import build_heads, check_model_output, head_monitors
from eoengine.training.module import TrainingTask


@dataclass
class TrainResult:
    """What a training run produced."""

    run_id: str
    run_dir: Path
    model_path: Path
    tracking_uri: str
    best_epoch: int
    val: dict[str, Any]
    test: dict[str, Any]
    primary: bool = True


def _flatten(prefix: str, value: Any, out: dict[str, str]) -> dict[str, str]:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = str(value)[:500]
    return out


def _git_commit() -> str:
    try:
        here = Path(eoengine.__file__).parent
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def model_kwargs(cfg: ProjectConfig, manifest: DatasetManifest | None = None) -> dict[str, Any]:
    """The model's kwargs plus the common settings and dataset facts it accepts.

    Common settings: activation, dropout, batch norm; from the dataset: the number of dates
    (``timesteps``) and the channel groups (``input_groups``).

    Args:
        cfg: The project config (its ``model`` section).
        manifest: The dataset's manifest; None: no dataset facts.

    Returns:
        The keyword arguments for :func:`~eoengine.models.registry.build_model`.

    """
    kwargs = dict(cfg.model.kwargs)
    factory = MODELS.get(cfg.model.name)
    accepted = inspect.signature(factory).parameters if factory else {}
    for key in ("activation", "dropout", "batch_norm"):
        if key in accepted and key not in kwargs:
            kwargs[key] = getattr(cfg.model, key)
    if manifest is not None:
        if "timesteps" in accepted and "timesteps" not in kwargs:
            kwargs["timesteps"] = manifest.timesteps
        if "input_groups" in accepted and "input_groups" not in kwargs:
            kwargs["input_groups"] = list((manifest.channel_groups or {}).values()) or None
    return kwargs


def make_model(cfg: ProjectConfig, channels: int, classes: int, manifest: DatasetManifest | None = None) -> torch.nn.Module:
    """Build the configured model.

    Args:
        cfg: The project config.
        channels: Input channels.
        classes: Output channels.
        manifest: The dataset's manifest (dates, channel groups); None: none.

    Returns:
        The network.

    """
    return build_model(cfg.model.name, channels, classes, **model_kwargs(cfg, manifest))


def monitors(heads: list[Head]) -> list[str]:
    """Metrics that early stopping and checkpoint selection can watch."""
    names = ["train_loss", "val_loss"]
    if len(heads) > 1:
        names += [f"val_{h.prefix}loss" for h in heads]
    return names + [m for h in heads for m in head_monitors(h)]


def check_monitor(name: str, heads: list[Head]) -> None:
    """Raise :class:`EOError` unless ``name`` is a metric the task's heads log every epoch."""
    valid = monitors(heads)
    if name not in valid:
        raise EOError(f"training.early_stopping.monitor '{name}' is not a logged metric", f"use one of: {', '.join(valid)}")


def check_bands(cfg: ProjectConfig, manifest: DatasetManifest) -> None:
    """Raise :class:`EOError` when a model's fixed input size disagrees with the dataset's channels.

    Args:
        cfg: The project config (``model.kwargs.in_channels``, if set).
        manifest: The dataset's manifest (its channels).

    Raises:
        EOError: ``in_channels`` is not the dataset's channel count.

    """
    declared = cfg.model.kwargs.get("in_channels")
    channels = len(manifest.channels)
    if declared is not None and int(declared) != channels:
        raise EOError(
            f"model.kwargs.in_channels is {declared} but the dataset has {channels} channels ({', '.join(manifest.channels)})",
            "drop in_channels (eoengine sets it from the dataset) or rebuild the dataset with the bands the model expects",
        )


def check_splits(root: Path, manifest: DatasetManifest) -> None:
    """Raise :class:`EOError` when the dataset has no validation chips.

    Checkpoint selection and early stopping need scores on chips the model does not train
    on; scoring training chips instead would label training scores as validation ones.

    Args:
        root: The dataset folder (named in the message).
        manifest: Its manifest (chips per split).

    Raises:
        EOError: The val split has no chips.

    """
    if not manifest.splits.get("val"):
        raise EOError(
            f"dataset {root} has no validation chips, so no epoch could be chosen or training stopped on unseen data",
            "rebuild it with a val split: dataset.split.ratios.val above 0 (on small scenes also a smaller patch_size)",
        )


def log_dataset_input(root: Path, manifest: DatasetManifest) -> None:
    """Record the dataset (name, version as digest, location: a served one's URL) as the active run's input.

    Args:
        root: The dataset folder (or a served dataset's cache folder).
        manifest: Its manifest (name, version).

    """
    import warnings

    import mlflow
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        source = resolve_dataset_source(remote_url(root) or root.resolve().as_uri())
    mlflow.log_input(MetaDataset(  # type: ignore[abstract]
        source, name=manifest.name, digest=manifest.version[:12]), context="training")


def log_run_start(cfg: ProjectConfig, manifest: DatasetManifest, root: Path, tags: dict[str, str] | None) -> None:
    """Record a new run's config as params, its dataset, code version and environment as tags and input.

    Args:
        cfg: The project config (model, task and training sections become params).
        manifest: The dataset's manifest.
        root: The dataset folder.
        tags: Extra tags for the run.

    """
    import mlflow

    mlflow.log_params(_flatten("", {"model": cfg.model.model_dump(), "task": cfg.task.model_dump(),
                                    "training": cfg.training.model_dump(exclude={"tracking_uri"})}, {}))
    mlflow.set_tags({
        "dataset.name": manifest.name, "dataset.version": manifest.version, "task": cfg.task.type,
        "dataset.path": dataset_source(root), "eoengine.version": eoengine.__version__, "git.commit": _git_commit(),
    })
    mlflow.set_tags(tags or {})
    log_dataset_input(root, manifest)
    log_environment()


def _dataset_at(cfg: ProjectConfig, dataset: Path | str | None) -> tuple[Path, DatasetManifest]:
    root = dataset_folder(cfg, dataset) or latest_dataset(cfg)
    return root, DatasetManifest.read(root)  # a mistyped path fails here, naming both ways to make a dataset


def resolve_dataset(cfg: ProjectConfig, dataset: Path | str | None) -> Path:
    """The dataset to train on: given, configured, or the project's latest build (a served one's cache folder)."""
    return _dataset_at(cfg, dataset)[0]


def checked_dataset(cfg: ProjectConfig, dataset: Path | str | None) -> tuple[Path, DatasetManifest]:
    """The dataset to train on and its manifest, once every check ``validate`` runs has passed.

    Args:
        cfg: The project config.
        dataset: The dataset given outside the config (``--dataset``, or the run resumed), if
            any: a folder or a served dataset's URL.

    Returns:
        (dataset folder (a served dataset's cache folder), its manifest).

    Raises:
        ConfigError: The checks ``validate`` runs found problems (so one accepts what the other
            does), among them no validation chips or bands that do not fit the model.
        EOError: No dataset built yet; a served dataset's server refused the token (Invalid),
            cannot be reached (Unavailable) or has none there (NotFound).

    """
    dataset = dataset_folder(cfg, dataset)  # a served dataset's errors keep their kind, before the config's checks
    if dataset is None:
        with suppress(EOError):  # none built yet: the config's own checks come first, then that
            dataset = latest_dataset(cfg)  # the build is there: no need to plan it again
    problems = check_config(cfg, dataset)
    if problems:
        raise ConfigError(f"project '{cfg.name}'", problems)
    return _dataset_at(cfg, dataset)


def train(
    cfg: ProjectConfig,
    dataset: Path | str | None = None,
    uri: str | None = None,
    resume: str | None = None,
    tags: dict[str, str] | None = None,
    callbacks: list[Callback] | None = None,
) -> TrainResult:
    """Train the configured model on the dataset; returns the run and its scores.

    ``resume`` names a run of this project that was interrupted: it continues from its last
    checkpoint, in the same MLflow run, to the result it would have reached uninterrupted.
    ``tags`` are added to the MLflow run; ``callbacks`` to the Lightning trainer (sweeps use both).
    Lightning's deterministic mode is switched off again afterwards, as it was found. A
    classical model (``random_forest``, ``gradient_boosting``) is fitted by
    :func:`eoengine.training.classical.train_classical` instead, recorded the same way.

    Args:
        cfg: The validated project config.
        dataset: A dataset folder or a served dataset's URL; default: the one the config builds
            (or ``training.dataset``).
        uri: The MLflow tracking URI; default: as ``eoengine.tracking.store.tracking_uri`` finds it.
        resume: The id of an interrupted run of this project to continue.
        tags: Tags added to the MLflow run.
        callbacks: Lightning callbacks added to the trainer.

    Returns:
        The run id, the best epoch, the scores per split and the model package's path.

    Raises:
        EOError: The config does not fit the dataset (every problem ``eoengine validate``
            finds), the run to resume is not found or still running, or training diverged.

    """
    if is_classical(cfg.model.name):
        from eoengine.training.classical import train_classical

        return train_classical(cfg, dataset, uri, resume, tags)
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        return _train(cfg, dataset, uri, resume, tags, callbacks)
    finally:
        torch.use_deterministic_algorithms(was_deterministic, warn_only=warn_only)


def _train(
    cfg: ProjectConfig, dataset: Path | str | None, uri: str | None, resume: str | None,
    tags: dict[str, str] | None, callbacks: list[Callback] | None,
) -> TrainResult:
    import mlflow

    out = cfg.output_path
    last_ckpt = None
    if resume:
        check_output_dir(out)
        last_ckpt, dataset = resumable(out, tracking_uri(out, cfg.training.tracking_uri, uri), resume)
    root, manifest = checked_dataset(cfg, dataset)
    track = tracking_uri(out, cfg.training.tracking_uri, uri)
    cfg = dataset_defaults(cfg, manifest)  # e.g. 1x1 point chips: larger batches, no flips
    channels, patch = len(manifest.channels), manifest.patch_size
    tc = cfg.training
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS on GPUs
    L.seed_everything(tc.seed, workers=True, verbose=False)
    heads, losses = build_heads(cfg, manifest)
    model = make_model(cfg, channels, output_channels(heads), manifest)
    mult = size_multiple(model)
    if patch % mult:
        raise EOError(
            f"model '{cfg.model.name}' needs sides that are multiples of {mult}, the dataset's patch is {patch}",
            f"rebuild with a patch_size multiple of {mult}, lower the model depth, or use pixel_dnn",
        )
    _probe(model, heads, channels, patch, cfg.model.name)
    es = tc.early_stopping
    monitor = (es.monitor if es and es.monitor else None) or default_monitor(heads)
    mode = (es.mode if es and es.mode else None) or monitor_mode(monitor)
    check_monitor(monitor, heads)
    task = TrainingTask(model, heads, losses, tc.optimizer, tc.scheduler, monitor)
    dm = ChipDataModule(root, tc.batch_size, tc.num_workers, tc.augmentation, tc.seed, tc.sampling)
    primary = is_primary_process()
    run_ctx: Any = nullcontext(None)
    if primary:
        exp = ensure_experiment(tc.experiment or cfg.name, track, out / "mlartifacts")
        mark_interrupted(track, exp, out / "runs")
        run_ctx = mlflow.start_run(experiment_id=exp, run_id=resume)
    with ExitStack() as held, run_ctx as run:  # the lock outlives the run: released once MLflow has ended it
        # other DDP ranks track nothing; Lightning broadcasts rank 0's checkpoint folder to them
        run_id = run.info.run_id if run else "rank-worker"
        run_dir = out / "runs" / run_id if run else Path(tempfile.mkdtemp(prefix="eoengine-rank-"))
        run_dir.mkdir(parents=True, exist_ok=True)
        if run:
            held.enter_context(running(run_dir))
        if not primary:
            logger_cb = EpochLogger()
        elif resume:
            logger_cb = EpochLogger(_history(track, run_id))
        else:
            log_run_start(cfg, manifest, root, tags)
            logger_cb = EpochLogger()
        ckpt = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best", monitor=monitor, mode=mode,
                               enable_version_counter=False)
        # every epoch (Lightning's save_last only follows improvements): what --resume continues from
        latest = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="last", monitor=None, save_top_k=1,
                                 enable_version_counter=False)
        hint = ResumeHint(f"eoengine train CONFIG --resume {run_id}", run_dir / "checkpoints" / "last.ckpt")
        all_callbacks: list[Callback] = [ckpt, latest, logger_cb, RNGState(), hint, *(callbacks or [])]
        reporter = current_reporter()
        bars = reporter.console and sys.stdout.isatty()  # Lightning's bars write to stdout
        if not reporter.console:
            all_callbacks.append(ReportedEpochs(reporter))
        elif not bars:
            all_callbacks.append(EpochLines(monitor, [h.prefix for h in heads]))
        if es:
            all_callbacks.append(EarlyStopping(monitor=monitor, patience=es.patience, mode=mode, min_delta=es.min_delta))
        trainer = L.Trainer(
            max_epochs=tc.epochs, logger=False, callbacks=all_callbacks, deterministic="warn",
            enable_progress_bar=bars, enable_model_summary=False, num_sanity_val_steps=0,
            log_every_n_steps=1, default_root_dir=str(run_dir), use_distributed_sampler=False,
            **trainer_options(cfg),
        )
        try:
            trainer.fit(task, dm, ckpt_path=str(last_ckpt) if last_ckpt else None)
        except FloatingPointError as exc:
            if primary:
                mlflow.set_tag("failure", str(exc))
            last = ckpt.best_model_path or "none (no epoch completed)"
            raise EOError(f"training stopped: {exc}; last good checkpoint: {last}",
                          "lower the learning rate, clip gradients (training.gradient_clip_val) or check the inputs for extreme values") from None
        best = torch.load(ckpt.best_model_path, map_location="cpu", weights_only=False)
        task.load_state_dict(best["state_dict"])
        val_all = _evaluate(trainer, task, dm.val_dataloader(), validation=True)
        test_all = _evaluate(trainer, task, dm.test_dataloader(), validation=False) if len(dm.test) else {}
        if primary:
            mlflow.set_tags({"world_size": trainer.world_size, "strategy": type(trainer.strategy).__name__})
        else:
            return TrainResult(run_id, run_dir, run_dir, track, int(best["epoch"]), {}, {}, primary=False)
        rec = RunRecord(cfg, manifest, root, heads, run_id, run_dir, track, int(best["epoch"]), logger_cb.history)
        model_dir, val, test = finish_run(rec, task.model.cpu(), val_all, test_all, model_kwargs(cfg, manifest))
        mlflow.log_artifact(ckpt.best_model_path, "checkpoints")
    return TrainResult(run_id, run_dir, model_dir, track, rec.best_epoch, val, test)


def resumable(out: Path, uri: str, run_id: str) -> tuple[Path, Path | str]:
    """The checkpoint and dataset a ``--resume`` continues from.

    Args:
        out: the project's output folder.
        uri: the MLflow tracking URI.
        run_id: the run to resume.

    Returns:
        (last checkpoint, dataset folder or a served dataset's URL).

    Raises:
        EOError: no such run, a run still training, or one that stopped before its first
            checkpoint (it is marked KILLED if it was left RUNNING; only starting again works).

    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    run_dir = out / "runs" / run_id
    last = run_dir / "checkpoints" / "last.ckpt"
    try:
        run = MlflowClient(tracking_uri=uri).get_run(run_id)
    except MlflowException:
        raise NotFound(f"run {run_id} has no checkpoint to resume from: there is no such run in {uri}",
                       "pass the id of an interrupted run of this project (see 'eoengine runs list')") from None
    if run.info.status == "RUNNING" and (run_dir / LOCK).exists() and not process_gone(run_dir):
        raise Conflict(f"run {run_id} is still training", "wait for it to end, or stop its process before resuming")
    mark_interrupted(uri, run.info.experiment_id, out / "runs")
    if not last.exists():
        raise EOError(f"run {run_id} has no checkpoint to resume from: it stopped before its first epoch ended",
                      "nothing of it can be continued; start again with 'eoengine train CONFIG' (a new run)")
    return last, as_location(run.data.tags["dataset.path"])


def is_primary_process() -> bool:
    """False in the extra processes of a distributed run (DDP ranks other than 0)."""
    ranks = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK")
    return all(os.environ.get(k, "0") == "0" for k in ranks)


def _history(uri: str, run_id: str) -> dict[str, list[tuple[int, float]]]:
    """Per-epoch metrics a run logged before it stopped (for its curves; not logged twice)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    keys = client.get_run(run_id).data.metrics
    return {
        k: [(m.step, m.value) for m in sorted(client.get_metric_history(run_id, k), key=lambda m: m.step)]
        for k in keys
    }


def _evaluate(trainer: L.Trainer, task: TrainingTask, loader: Any, validation: bool) -> dict[str, Any]:
    task.score_as(validation)
    trainer.test(task, loader, verbose=False)
    return dict(task.last_test)


def trainer_options(cfg: ProjectConfig) -> dict[str, Any]:
    """Lightning Trainer settings from the config: hardware, precision, accumulation, clipping."""
    tc = cfg.training
    precision = tc.precision
    if precision == "auto":
        precision = "16-mixed" if torch.cuda.is_available() else "32-true"
    return {
        "accelerator": tc.accelerator, "devices": tc.devices, "num_nodes": tc.num_nodes, "strategy": tc.strategy,
        "precision": precision, "accumulate_grad_batches": tc.accumulate_grad_batches,
        "gradient_clip_val": tc.gradient_clip_val, "gradient_clip_algorithm": tc.gradient_clip_algorithm,
    }


def _probe(model: torch.nn.Module, heads: list[Head], channels: int, patch: int, name: str) -> None:
    """Run one tiny batch through the model to check its output suits the task's heads."""
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(1, channels, patch, patch))
    except RuntimeError as exc:
        raise EOError(f"model '{name}' failed on a ({channels}, {patch}, {patch}) chip: {str(exc).splitlines()[0]}",
                      "check the model's in_channels and size requirements against the dataset") from None
    finally:
        model.train(was)
    check_model_output(heads, out, name)
