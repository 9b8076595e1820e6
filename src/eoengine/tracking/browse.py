"""Tracked runs and registered models as typed, JSON-ready records: what the team server shows.

Built on :mod:`eoengine.tracking.runs` (the queries ``eoengine runs`` makes): a run's summary
(main params, final scores, dataset version, model references), its detail (every param,
the tags as shown, per-epoch history of each metric, confusion matrices with class names
from the run's ``scores.json`` and evaluation report, artifacts), a comparison of runs, and
the Model Registry's models with aliases and, where a version's files are on this machine,
its package description. Every record's :meth:`Browsed.to_json` is plain JSON (a non-finite
score is ``null``). Nothing here writes to the store, and a local store that is missing is not
created (:func:`~eoengine.tracking.runs.open_store`).
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from eoengine.datasets.schema import ClassInfo, DatasetManifest
from eoengine.errors import EOError, Invalid, NotFound
from eoengine.models.meta import META, DatasetRef, PackageMeta
from eoengine.tracking.runs import (
    RunInfo,
    artifacts,
    differing_params,
    get_run,
    history,
    is_final,
    iso_time,
    local_path,
    open_store,
    shown_tags,
)
from eoengine.tracking.runs import list_runs as _list_runs

log = logging.getLogger(__name__)

MAIN_PARAMS = ("model.name", "task.type", "training.epochs", "training.batch_size", "training.optimizer.name",
               "training.optimizer.kwargs.lr", "training.loss.name")
"""The params a run's summary carries (its detail has all)."""
MAX_COMPARED = 20
"""At most this many runs side by side."""
MODEL_FIX = "list the registered models, or register one with 'eoengine register MODEL --name NAME'"


class Browsed(BaseModel):
    """A record of this module: a pydantic model whose JSON form is plain JSON."""

    def to_json(self) -> dict[str, Any]:
        """The record as JSON-ready builtins.

        Returns:
            Dicts, lists, strings, numbers, booleans and None only.

        """
        return self.model_dump(mode="json")


class RunSummary(Browsed):
    """One run as a list shows it: ids, state, times (ISO 8601, UTC), main params and final scores.

    ``model_ref`` is the run's own model package (``runs:/<id>/model``) when it logged one;
    ``registered`` the Model Registry versions made from the run (``models:/NAME/VERSION``).
    """

    run_id: str
    name: str
    status: str
    started_at: str | None
    ended_at: str | None
    model: str | None
    task: str | None
    params: dict[str, str]
    metrics: dict[str, float | None]
    dataset_name: str | None
    dataset_version: str | None
    model_ref: str | None
    registered: list[str]
    sweep: str | None
    sweep_best: bool


class MetricPoint(Browsed):
    """One logged value of a metric: the step (the epoch, for per-epoch metrics) and the value."""

    step: int
    value: float | None


class ConfusionMatrix(Browsed):
    """A confusion matrix (rows truth, columns prediction; counts of pixels, or of chips for classification).

    ``source`` is ``training`` (the run's ``scores.json``, the val and test splits scored with
    the best checkpoint) or ``evaluation`` (``eoengine evaluate``'s report logged to the run);
    ``head`` names the output head when the model has several.
    """

    source: Literal["training", "evaluation"]
    split: str
    head: str | None
    classes: list[str]
    matrix: list[list[int]]


class ArtifactEntry(Browsed):
    """One of a run's artifacts: path relative to the run's artifact root, folder or file, size in bytes."""

    path: str
    is_dir: bool
    size: int | None


class RunDetail(RunSummary):
    """Everything a run recorded: its summary with *every* param, the tags as shown, per-epoch history, and more.

    ``history`` holds each per-epoch metric's points (final metrics, in ``metrics``, are logged once).
    """

    tags: dict[str, str]
    history: dict[str, list[MetricPoint]]
    best_epoch: int | None
    confusion_matrices: list[ConfusionMatrix]
    artifacts: list[ArtifactEntry]


class RunComparison(Browsed):
    """Runs side by side: each list holds one value per run, in the order of ``runs`` (None: not recorded)."""

    runs: list[RunSummary]
    params: dict[str, list[str | None]]
    metrics: dict[str, list[float | None]]


class PackageSummary(Browsed):
    """What a model package says of itself (``eoengine-model.json``), with the pixel size of its dataset."""

    model: str
    task: str
    bands: list[str]
    channels: list[str]
    classes: list[ClassInfo]
    patch_size: int
    timesteps: int
    resolution: float | None
    dataset: DatasetRef
    run_id: str | None
    best_epoch: int | None
    created: str | None
    onnx: bool


class ModelVersionInfo(Browsed):
    """A registered model version; ``package`` is None when its files are not on this machine."""

    name: str
    version: str
    ref: str
    run_id: str | None
    created_at: str | None
    status: str
    aliases: list[str]
    tags: dict[str, str]
    description: str | None
    package: PackageSummary | None


class RegisteredModelInfo(Browsed):
    """A registered model: its aliases (alias → version) and versions, newest first."""

    name: str
    description: str | None
    created_at: str | None
    updated_at: str | None
    aliases: dict[str, str]
    tags: dict[str, str]
    versions: list[ModelVersionInfo]


class ModelDetail(RegisteredModelInfo):
    """A registered model with the summaries of the runs its versions came from (by run id; runs still stored)."""

    runs: dict[str, RunSummary]


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _registered_by_run(client: Any, run_ids: list[str]) -> dict[str, list[str]]:
    """``models:/NAME/VERSION`` of the registry versions made from each of ``run_ids``."""
    if not run_ids:
        return {}
    quoted = ", ".join(f"'{run_id}'" for run_id in run_ids)  # MLflow's own ids: hex digits
    found: dict[str, list[str]] = {}
    for mv in sorted(client.search_model_versions(f"run_id IN ({quoted})"), key=lambda v: (v.name, int(v.version))):
        found.setdefault(mv.run_id, []).append(f"models:/{mv.name}/{mv.version}")
    return found


def _has_model(client: Any, info: RunInfo) -> bool:
    local = local_path(info.artifact_uri)
    if local is not None:
        return (local / "model" / META).is_file()
    return bool(client.list_artifacts(info.run_id, "model"))


def _summary(client: Any, info: RunInfo, registered: list[str]) -> RunSummary:
    return RunSummary(
        run_id=info.run_id, name=info.name, status=info.status, started_at=info.started_at or None,
        ended_at=info.ended_at, model=info.params.get("model.name"), task=info.tags.get("task"),
        params={k: info.params[k] for k in MAIN_PARAMS if k in info.params},
        metrics={k: _finite(v) for k, v in sorted(info.metrics.items()) if is_final(k)},
        dataset_name=info.tags.get("dataset.name"), dataset_version=info.tags.get("dataset.version"),
        model_ref=f"runs:/{info.run_id}/model" if _has_model(client, info) else None, registered=registered,
        sweep=info.tags.get("eoengine.sweep"), sweep_best=info.tags.get("eoengine.sweep.best") == "true",
    )


def list_runs(tracking_uri: str, experiment: str, sort: str | None = None, limit: int = 50) -> list[RunSummary]:
    """The runs of an experiment, newest first (or best first by ``sort``).

    Args:
        tracking_uri: The MLflow tracking URI.
        experiment: The experiment's name (a project's is ``training.experiment``, else its name).
        sort: A metric to order by, best first (``test_miou``).
        limit: At most this many runs.

    Returns:
        The runs' summaries.

    Raises:
        NotFound: There is no store at ``tracking_uri``, or no such experiment in it.

    """
    infos = _list_runs(tracking_uri, experiment, sort, limit)
    client = open_store(tracking_uri)
    registered = _registered_by_run(client, [r.run_id for r in infos])
    return [_summary(client, r, registered.get(r.run_id, [])) for r in infos]


def _artifact_file(client: Any, info: RunInfo, path: str, into: Path) -> Path | None:
    """One of a run's artifact files on this machine: itself in a local store, else a copy in ``into``."""
    from mlflow.exceptions import MlflowException

    local = local_path(info.artifact_uri)
    if local is not None:
        return local / path if (local / path).is_file() else None
    try:
        return Path(client.download_artifacts(info.run_id, path, str(into)))
    except (MlflowException, OSError):
        return None


def _read_json(file: Path | None) -> dict[str, Any]:
    if file is None:
        return {}
    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        log.warning("cannot read %s: %s", file, exc)
        return {}
    return data if isinstance(data, dict) else {}


def _by_head(scores: dict[str, Any]) -> dict[str | None, dict[str, Any]]:
    """Scores per head name (None for a single head): a multi-head record maps head names to score dicts."""
    if scores and all(isinstance(v, dict) for v in scores.values()):
        heads: dict[str | None, dict[str, Any]] = {name: s for name, s in scores.items()}
        return {None: next(iter(scores.values()))} if len(scores) == 1 else heads
    return {None: scores} if scores else {}


def _matrices(source: Literal["training", "evaluation"], split: str, scores: dict[str, Any],
              names: list[str]) -> list[ConfusionMatrix]:
    found = []
    for head, s in _by_head(scores).items():
        cm = s.get("confusion_matrix")
        if isinstance(cm, list) and cm:
            classes = names if len(names) == len(cm) else [str(i) for i in range(len(cm))]
            found.append(ConfusionMatrix(source=source, split=split, head=head, classes=classes, matrix=cm))
    return found


def _confusion_matrices(scores: dict[str, Any], report: dict[str, Any], names: list[str]) -> list[ConfusionMatrix]:
    """The matrices of the training scores (val, test) and of an evaluation report (its split)."""
    found = [m for split in ("val", "test") for m in _matrices("training", split, scores.get(split) or {}, names)]
    if report:
        split = str(report.get("split", ""))
        found += _matrices("evaluation", split, {k: v for k, v in report.items() if k != "split"}, names)
    return found


def _run_package(file: Path | None) -> PackageMeta | None:
    if file is None:
        return None
    try:
        return PackageMeta.from_file(file, "retrain the run")
    except EOError as exc:
        log.warning("run package description %s unreadable: %s", file, exc)
        return None


def run_detail(tracking_uri: str, run_id: str) -> RunDetail:
    """Everything a run recorded.

    Args:
        tracking_uri: The MLflow tracking URI.
        run_id: The run's id (32 hex digits).

    Returns:
        The run's summary with every param, its tags (MLflow's own left out, secret-looking values
        hidden: :func:`~eoengine.tracking.runs.shown_tags`), each per-epoch metric's history, the
        best epoch, confusion matrices with class names, and its artifacts (all levels).

    Raises:
        NotFound: There is no store at ``tracking_uri``, or no such run in it.

    """
    info = get_run(tracking_uri, run_id)
    client = open_store(tracking_uri)
    summary = _summary(client, info, _registered_by_run(client, [info.run_id]).get(info.run_id, []))
    hist = {k: [MetricPoint(step=step, value=_finite(v)) for step, v in history(tracking_uri, info.run_id, k)]
            for k in sorted(info.metrics) if not is_final(k)}
    with tempfile.TemporaryDirectory(prefix="eoengine-run-") as tmp:
        scores = _read_json(_artifact_file(client, info, "scores.json", Path(tmp)))
        report = _read_json(_artifact_file(client, info, "report/scores.json", Path(tmp)))
        meta = _run_package(_artifact_file(client, info, f"model/{META}", Path(tmp)))
    names = [c.name for c in meta.classes] if meta else []
    best = scores.get("best_epoch")
    return RunDetail(
        **(summary.model_dump() | {"params": dict(sorted(info.params.items()))}),
        tags=dict(sorted(shown_tags(info.tags).items())), history=hist, best_epoch=best if isinstance(best, int) else None,
        confusion_matrices=_confusion_matrices(scores, report, names),
        artifacts=[ArtifactEntry(path=p, is_dir=d, size=s) for p, d, s in artifacts(tracking_uri, info.run_id, depth=99)],
    )


def compare_runs(tracking_uri: str, run_ids: list[str]) -> RunComparison:
    """Runs side by side: the params whose values differ, and every final metric.

    Args:
        tracking_uri: The MLflow tracking URI.
        run_ids: Two to :data:`MAX_COMPARED` run ids (a repeated id counts once).

    Returns:
        The runs' summaries, and per differing param and per final metric one value per run.

    Raises:
        Invalid: Fewer than two different runs, or more than :data:`MAX_COMPARED`.
        NotFound: There is no store at ``tracking_uri``, or one of the runs is not in it.

    """
    ids = list(dict.fromkeys(run_ids))
    if not 2 <= len(ids) <= MAX_COMPARED:
        raise Invalid(f"comparing needs 2 to {MAX_COMPARED} different runs, got {len(ids)}",
                      f"pass between 2 and {MAX_COMPARED} different run ids")
    infos = [get_run(tracking_uri, run_id) for run_id in ids]
    client = open_store(tracking_uri)
    registered = _registered_by_run(client, ids)
    finals = sorted({k for r in infos for k in r.metrics if is_final(k)})
    return RunComparison(
        runs=[_summary(client, r, registered.get(r.run_id, [])) for r in infos],
        params={k: [r.params.get(k) for r in infos] for k in differing_params(infos)},
        metrics={k: [_finite(r.metrics[k]) if k in r.metrics else None for r in infos] for k in finals},
    )


def _resolution(dataset: str) -> float | None:
    """The pixel size of the dataset at ``dataset`` (configured, else its first scene's grid); None if not here."""
    root = Path(dataset) if dataset else None
    if root is None or not (root / "manifest.json").is_file():
        return None
    try:
        manifest = DatasetManifest.read(root)
    except EOError:
        return None
    if manifest.resolution:
        return manifest.resolution
    return abs(manifest.scenes[0].grid.transform[0]) if manifest.scenes else None


def _version_folder(client: Any, source: str) -> Path | None:
    """The local folder of a model version's files (a logged model's or a run's artifacts); None if remote."""
    from mlflow.exceptions import MlflowException

    try:
        if source.startswith("models:/"):
            location = client.get_logged_model(source.removeprefix("models:/").split("/")[0]).artifact_location
        elif source.startswith("runs:/"):
            run_id, _, sub = source.removeprefix("runs:/").partition("/")
            location = f"{client.get_run(run_id).info.artifact_uri.rstrip('/')}/{sub}"
        else:
            location = source
    except MlflowException:
        return None
    folder = local_path(location)
    return folder if folder is not None and folder.is_dir() else None


def _package(client: Any, source: str) -> PackageSummary | None:
    folder = _version_folder(client, source)
    found = sorted(folder.glob(f"artifacts/**/{META}")) if folder else []
    if not found:
        return None
    try:
        meta = PackageMeta.read(found[0].parent)
    except EOError as exc:
        log.warning("registered package %s unreadable: %s", found[0], exc)
        return None
    return PackageSummary(
        model=meta.model, task=meta.task, bands=meta.bands, channels=meta.channels, classes=meta.classes,
        patch_size=meta.patch_size, timesteps=meta.timesteps, resolution=_resolution(meta.dataset.path),
        dataset=meta.dataset, run_id=meta.run_id, best_epoch=meta.best_epoch, created=meta.created,
        onnx=bool(meta.onnx),
    )


def _model_info(client: Any, rm: Any) -> RegisteredModelInfo:
    escaped = rm.name.replace("'", "\\'")
    aliases = {alias: str(version) for alias, version in sorted((rm.aliases or {}).items())}
    versions = sorted(client.search_model_versions(f"name = '{escaped}'"), key=lambda v: int(v.version), reverse=True)
    return RegisteredModelInfo(
        name=rm.name, description=rm.description or None, created_at=iso_time(rm.creation_timestamp),
        updated_at=iso_time(rm.last_updated_timestamp), aliases=aliases, tags=dict(rm.tags or {}),
        versions=[ModelVersionInfo(
            name=rm.name, version=str(mv.version), ref=f"models:/{rm.name}/{mv.version}", run_id=mv.run_id or None,
            created_at=iso_time(mv.creation_timestamp), status=str(mv.status),
            aliases=[a for a, v in aliases.items() if v == str(mv.version)], tags=dict(mv.tags or {}),
            description=mv.description or None, package=_package(client, mv.source or ""),
        ) for mv in versions],
    )


def list_models(tracking_uri: str) -> list[RegisteredModelInfo]:
    """The Model Registry's models, by name, each with its aliases and versions.

    Args:
        tracking_uri: The MLflow tracking URI (the registry is the tracking store's).

    Returns:
        The registered models (none: an empty list).

    Raises:
        NotFound: There is no store at ``tracking_uri``.

    """
    client = open_store(tracking_uri)
    models, token = [], None
    while True:
        page = client.search_registered_models(max_results=200, order_by=["name ASC"], page_token=token)
        models += list(page)
        token = page.token
        if not token:
            return [_model_info(client, rm) for rm in models]


def model_detail(tracking_uri: str, name: str) -> ModelDetail:
    """One registered model, with the summaries of the runs its versions came from.

    Args:
        tracking_uri: The MLflow tracking URI.
        name: The registered model's name.

    Returns:
        The model, its aliases and versions (newest first) and their runs' summaries.

    Raises:
        NotFound: There is no store at ``tracking_uri``, or no model ``name`` in its registry.

    """
    from mlflow.exceptions import MlflowException

    client = open_store(tracking_uri)
    try:
        rm = client.get_registered_model(name)
    except MlflowException:
        raise NotFound(f"no registered model '{name}' in {tracking_uri}", MODEL_FIX) from None
    info = _model_info(client, rm)
    run_ids = list(dict.fromkeys(v.run_id for v in info.versions if v.run_id))
    registered = _registered_by_run(client, run_ids)
    runs = {}
    for run_id in run_ids:
        try:
            runs[run_id] = _summary(client, get_run(tracking_uri, run_id), registered.get(run_id, []))
        except NotFound:
            continue  # the run was deleted; its version stays
    return ModelDetail(**info.model_dump(), runs=runs)
