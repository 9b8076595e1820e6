"""Importing a CLI project folder: registered in place, and what the CLI made there indexed.

The folder is not copied (its imagery may be large): ``HOME/projects/<slug>`` becomes a
symbolic link to it, so the routes, workers and jobs find it where they find every project,
and the CLI keeps working in it (the artefacts stay in the CLI's formats; the server adds
its own files under the config's ``output_dir``: the imagery catalog, job outputs).
Deleting the project removes the link, never the folder.

A folder may be imported only from under one of the server's import roots (``eoengine
server run --import-root DIR``); ``eoengine server import`` on the server's machine may name
any folder. The config is checked as a new project's (the CLI's schema and messages, its
files inside the folder or a data root, no ``training.tracking_uri``); a folder that fails
leaves nothing behind. Then the index gets, each with a ``*.import`` event and its lineage
inputs: the dataset versions (manifests under ``<output_dir>/datasets``), the runs of its
MLflow store that have a package (``<output_dir>/runs/<id>/model``), the registered model
versions, and the prediction maps under ``<output_dir>`` (one-band GeoTIFFs tagged
``EOENGINE_MODEL`` by ``eoengine predict``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from eoengine.config.schema import ProjectConfig
from eoengine.datasets.build import datasets_dir
from eoengine.datasets.schema import MANIFEST
from eoengine.errors import Conflict, Invalid
from eoengine.jobs.results import BuildDatasetResult, PredictResult, TrainResult
from eoengine.jobs.specs import BuildDatasetSpec, PredictSpec, TrainSpec
from eoengine.platform.db.models import Membership, Project
from eoengine.platform.events import record
from eoengine.platform.index import Output, outputs_of, registration, store_artifacts
from eoengine.platform.projects import CONFIG, config_hash, slugify, validate_config
from eoengine.platform.settings import PlatformSettings

log = logging.getLogger("eoengine.platform.importing")
ROOT_FIX = "start the server with --import-root DIR for the folder's parent, or run 'eoengine server import' on it"


def check_folder(path: str, roots: tuple[Path, ...] | None, data_roots: tuple[Path, ...] = ()) -> tuple[Path, str]:
    """The folder to import and its config text, checked as a new project's config.

    Args:
        path: The folder, as given (absolute).
        roots: The folders it must be under (None: anywhere, for the server's own command line).
        data_roots: Other folders its config may read from.

    Returns:
        (the resolved folder, its ``eoengine.yaml`` text).

    Raises:
        Invalid: A relative path, not a folder, outside the import roots, no config, or a config that fails its checks.

    """
    given = Path(path)
    if not given.is_absolute():
        raise Invalid(f"folder {path!r} is not an absolute path", "give the project folder's absolute path")
    try:
        folder = given.resolve()
        is_dir = folder.is_dir()
    except (ValueError, OSError) as exc:  # a NUL byte, a name too long
        raise Invalid(f"folder {path[:200]!r} is not a usable path: {exc}", "give the project folder's absolute path") from None
    if not is_dir:
        raise Invalid(f"{path} is not a folder", "give the folder that holds the project's eoengine.yaml")
    if roots is not None and not any(folder == r.resolve() or r.resolve() in folder.parents for r in roots):
        raise Invalid(f"{path} is outside the server's import roots", ROOT_FIX if roots else
                      "this server imports no folders: " + ROOT_FIX)
    if not (folder / CONFIG).is_file():
        raise Invalid(f"{path} has no {CONFIG}", f"import the folder the CLI ran in (the one holding its {CONFIG})")
    text = (folder / CONFIG).read_text()
    validate_config(text, folder, data_roots)
    return folder, text


def _datasets(cfg: ProjectConfig, folder: Path) -> list[Output]:
    out = []
    for manifest in sorted(datasets_dir(cfg).glob(f"*/{MANIFEST}")):
        version = json.loads(manifest.read_text()).get("version", "")
        result = BuildDatasetResult(path=manifest.parent, version=version, up_to_date=True)
        out += outputs_of(result, BuildDatasetSpec.model_validate({"config": folder / CONFIG}), folder)
    return out


def _runs_and_models(cfg: ProjectConfig, folder: Path) -> list[Output]:
    """The store's runs that have a package, then its registered model versions (a project with no store: none)."""
    from eoengine.tracking.browse import list_models
    from eoengine.tracking.runs import local_path, open_store
    from eoengine.tracking.store import tracking_uri

    uri = tracking_uri(cfg.output_path, cfg.training.tracking_uri)
    path = local_path(uri)
    if path is not None and not path.exists():
        return []
    client, out = open_store(uri), []
    experiments = [e.experiment_id for e in client.search_experiments()]
    for run in client.search_runs(experiments, max_results=10_000) if experiments else []:
        run_dir = cfg.output_path / "runs" / run.info.run_id
        scores_file = run_dir / "scores.json"
        if not (run_dir / "model").is_dir() or not scores_file.is_file():
            continue  # a run that never finished: it has no package to index
        scores = json.loads(scores_file.read_text())
        result = TrainResult(run_id=run.info.run_id, best_epoch=int(scores.get("best_epoch", 0)), tracking_uri=uri,
                             scores={k: v for k, v in scores.items() if k in ("val", "test") and v},
                             model_path=run_dir / "model")
        out += outputs_of(result, TrainSpec.model_validate({"config": folder / CONFIG}), folder)
    for model in list_models(uri):
        out += [registration(v.name, v.version, v.run_id or "", v.aliases, "model.import") for v in model.versions]
    return out


def _model_of(tags: dict[str, str]) -> str:
    """The model reference a map's tags name: its run (``runs:/ID``), else its package folder."""
    if tags.get("EOENGINE_MODEL_RUN"):
        return f"runs:/{tags['EOENGINE_MODEL_RUN']}"
    text = tags.get("EOENGINE_MODEL", "")
    return text[text.find("(") + 1:-1] if text.endswith(")") and "(" in text else text


def _maps(cfg: ProjectConfig, folder: Path) -> list[Output]:
    import rasterio

    skip = [datasets_dir(cfg), cfg.output_path / "runs", cfg.output_path / "catalog"]
    out = []
    for path in sorted(cfg.output_path.rglob("*.tif")):
        if any(s in path.parents for s in skip):
            continue
        try:
            with rasterio.open(path) as ds:
                tags, count = ds.tags(), ds.count
        except rasterio.errors.RasterioIOError:
            continue
        if "EOENGINE_MODEL" in tags and count == 1:
            out += outputs_of(PredictResult(maps=[path]), PredictSpec.model_validate({"model": _model_of(tags)}), folder)
    return out


def found_outputs(cfg: ProjectConfig, folder: Path) -> list[Output]:
    """What the CLI made in a project folder, as artefacts to index with ``*.import`` events.

    Args:
        cfg: The project's config (its paths resolving in ``folder``).
        folder: The project folder.

    Returns:
        Its dataset versions, runs, registered model versions and maps, in that order.

    Raises:
        EOError: A manifest, package or the MLflow store cannot be read.

    """
    found = _datasets(cfg, folder) + _runs_and_models(cfg, folder) + _maps(cfg, folder)
    return [dataclasses.replace(o, action=f"{o.kind}.import") for o in found]


def import_project(session: Session, settings: PlatformSettings, path: str, name: str, actor_id: int | None,
                   roots: tuple[Path, ...] | None) -> tuple[Project, int]:
    """Register a CLI project folder in place as a project, and index its artefacts, in the caller's transaction.

    Args:
        session: The session (its transaction is the import's: nothing stays when it rolls back).
        settings: The server's settings (its projects folder, data roots).
        path: The folder (absolute).
        name: The project's name (its slug must be free).
        actor_id: Who imports it (becomes its admin), or None (the server's command line: site admins manage it).
        roots: Folders it must be under (None: anywhere).

    Returns:
        (the project, how many artefacts were indexed).

    Raises:
        Invalid: The folder or its config fails its checks (see :func:`check_folder`).
        Conflict: The slug is taken, or the folder is imported already.
        EOError: An artefact of the folder cannot be read (the import is undone).

    """
    slug = slugify(name)
    link = settings.projects_dir / slug
    if session.scalar(select(Project).where(Project.slug == slug)) is not None or link.exists() or link.is_symlink():
        raise Conflict(f"a project {slug!r} exists already", "choose another name")
    folder, text = check_folder(path, roots, settings.data_roots)
    taken = next((p.name for p in settings.projects_dir.glob("*") if p.is_symlink() and p.resolve() == folder), None)
    if taken is not None:
        raise Conflict(f"{path} is imported already, as project {taken!r}", "open that project, or delete it first")
    cfg = validate_config(text, folder, settings.data_roots)
    settings.projects_dir.mkdir(parents=True, exist_ok=True)
    link.symlink_to(folder, target_is_directory=True)
    try:
        outputs = found_outputs(cfg, folder)
        project = Project(slug=slug, name=name, created_by=actor_id, config_hash=config_hash(text))
        session.add(project)
        session.flush()
        if actor_id is not None:
            session.add(Membership(project_id=project.id, user_id=actor_id, role="admin"))
        record(session, "project.import", "project", slug, actor_id=actor_id, project_id=project.id,
               data={"name": name, "folder": str(folder), "config_hash": project.config_hash})
        rows = store_artifacts(session, project.id, actor_id, None, outputs)
        session.flush()
    except BaseException:
        link.unlink(missing_ok=True)
        raise
    log.info("imported %s as project %s: %d artefact(s)", folder, slug, len(rows))
    return project, len(rows)


def remove_folder(folder: Path) -> None:
    """Remove a deleted project's folder: an imported one's link only (its files stay where they were).

    Args:
        folder: ``HOME/projects/<slug>``.

    """
    import shutil

    if folder.is_symlink():
        folder.unlink()
    else:
        shutil.rmtree(folder, ignore_errors=True)
