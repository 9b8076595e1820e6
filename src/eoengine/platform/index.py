"""The artefact index: what a finished job made, as ``artifacts`` rows and events, from its typed result.

The files stay the source of truth; the index names them (paths relative to the project
folder), with their version hashes and run ids, and links each to the job that made it. Each
event's data lists the artefact's ``inputs`` as ``type:id`` (scene, labels, dataset, run,
model), from which the lineage scenes and labels → dataset → run → model → map is drawn.

:func:`outputs_of` reads what it needs (manifests, package metadata, map footprints) before
the job's outcome is written; :func:`store_outputs` writes the rows in that transaction. An
artefact already indexed (the same dataset version, run or scene) is not added twice; a map
or model file written again at the same path updates its row. A registry version (registered
through the API, or found by an import) is :func:`registration`'s ``model:NAME/VERSION``, one
row per version whose ``meta.aliases`` :func:`alias_moved` keeps up to date.

Model packages and rasters are read with imports inside the functions: the server imports this
module (for :data:`RUN_ID`) and must not load torch or rasterio for it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from eoengine.datasets.schema import DatasetManifest
from eoengine.errors import EOError
from eoengine.jobs.results import (
    AnyResult,
    BuildDatasetResult,
    ExportResult,
    FetchResult,
    PredictAreaResult,
    PredictResult,
    QuantizeResult,
    TrainResult,
)
from eoengine.jobs.specs import AnySpec

if TYPE_CHECKING:
    from eoengine.models.meta import PackageMeta
from eoengine.platform.db.models import Artifact, Job
from eoengine.platform.events import record

RUN_ID = re.compile(r"^(runs:/)?[0-9a-f]{32}(/.*)?$")
"""A model reference naming an MLflow run (``runs:/<id>`` or the bare id)."""
BY_CONTENT = frozenset({"dataset", "run", "scene"})
"""Kinds whose rows are never rewritten: the same name and version is the same artefact."""


@dataclass(frozen=True)
class Output:
    """An artefact a job made, ready to index: its row's fields and its event."""

    kind: str
    name: str
    action: str
    object_id: str
    version: str = ""
    path: str = ""
    ref: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)


def relative(path: Path | str, folder: Path) -> str:
    """A path as the index keeps it: relative to the project folder when inside it, else absolute.

    Args:
        path: The path (relative ones are relative to the project folder).
        folder: The project folder.

    Returns:
        The path as text.

    """
    full = (folder / path).resolve()
    root = folder.resolve()
    return full.relative_to(root).as_posix() if full == root or root in full.parents else str(full)


def outputs_of(result: AnyResult, spec: AnySpec, folder: Path) -> list[Output]:
    """The artefacts a job's result names (evaluate and sweep results index none).

    Args:
        result: The job's typed result.
        spec: The spec it ran.
        folder: The project folder.

    Returns:
        The outputs to index.

    """
    match result:
        case BuildDatasetResult():
            return [_dataset(result, folder)]
        case TrainResult():
            return [_run(result, folder)]
        case PredictResult():
            return _maps(result.maps, result.probabilities, spec, folder)
        case PredictAreaResult():
            return _maps([result.map], None, spec, folder, result.scene_ids)
        case FetchResult():
            return _scenes(result, getattr(spec, "items", None), folder)
        case ExportResult():
            return [_variant(result.copied_to or result.path, "onnx", getattr(spec, "model", ""), folder,
                             {"model": result.model, "check": result.check.model_dump() if result.check else None})]
        case QuantizeResult():
            budget = {} if result.budget is None else {"verdict": result.budget["verdict"],
                                                       "excluded_nodes": result.budget["excluded_nodes"]}
            return [_variant(file, name, str(result.package), folder,
                             {"metric": result.metric, **result.report.get(name, {}), **budget})
                    for file, name in zip(result.files, ("int8-static", "int8-dynamic"), strict=False)]
    return []


KEPT_PROPERTIES = ("datetime", "start_datetime", "end_datetime", "eo:cloud_cover", "platform", "constellation",
                   "instruments", "gsd", "view:sun_elevation", "view:sun_azimuth", "view:off_nadir")
"""STAC properties of a fetched item that its scene keeps (the catalog shows them; its stack has none)."""


def item_properties(items: Path | None, folder: Path) -> dict[str, dict[str, Any]]:
    """The kept STAC properties of each item of an ItemCollection file, by item id.

    Args:
        items: The ItemCollection JSON a fetch read (relative to the project folder), or None.
        folder: The project folder.

    Returns:
        Item id → its :data:`KEPT_PROPERTIES`; empty when the file cannot be read.

    """
    try:
        features = json.loads((folder / items).read_text()).get("features", []) if items is not None else []
    except (OSError, ValueError, AttributeError):
        return {}
    out = {}
    for f in features if isinstance(features, list) else []:
        if isinstance(f, dict) and isinstance(f.get("properties"), dict):
            out[str(f.get("id"))] = {k: f["properties"][k] for k in KEPT_PROPERTIES if k in f["properties"]}
    return out


def _footprint(path: Path) -> dict[str, Any] | None:
    """A raster's footprint in EPSG:4326 (None without a CRS: the artefact stays off the overview's map)."""
    from eoengine.raster.footprint import footprint_wgs84

    try:
        return footprint_wgs84(path)
    except EOError:
        return None


def _scenes(result: FetchResult, items: Path | None, folder: Path) -> list[Output]:
    properties = item_properties(items, folder)
    return [Output("scene", i.item_id, "scene.fetch", i.item_id, version=i.sha256[:16], path=relative(i.path, folder),
                   meta={"sha256": i.sha256, "cached": i.cached, "properties": properties.get(i.item_id, {}),
                         "footprint": _footprint(folder / i.path)})
            for i in result.items if i.path is not None]


def _dataset(result: BuildDatasetResult, folder: Path) -> Output:
    manifest = DatasetManifest.read(result.path)
    scene_files = {src.path for scene in manifest.scenes for src in scene.sources}
    labels = [relative(f.path, folder) for f in manifest.inputs if f.path not in scene_files]
    label_type = (manifest.config.get("labels") or {}).get("type")
    meta = {"chips": manifest.splits, "n_chips": manifest.n_chips, "scenes": [s.id for s in manifest.scenes],
            "labels": {"type": label_type, "files": labels}, "classes": [c.name for c in manifest.classes]}
    inputs = [f"scene:{s.id}" for s in manifest.scenes] + [f"labels:{f}" for f in labels]
    key = f"{manifest.name}@{manifest.version}"
    return Output("dataset", manifest.name, "dataset.version", key, version=manifest.version,
                  path=relative(result.path, folder), meta=meta, inputs=inputs)


def _package(path: Path) -> PackageMeta:
    from eoengine.models.meta import PackageMeta

    return PackageMeta.read(path)


def _run(result: TrainResult, folder: Path) -> Output:
    pkg = _package(result.model_path)
    dataset = f"{pkg.dataset.name}@{pkg.dataset.version}" if pkg.dataset.version else ""
    meta = {"dataset": dataset, "scores": result.scores, "best_epoch": result.best_epoch, "model": pkg.model,
            "package": relative(result.model_path, folder)}
    return Output("run", result.run_id, "run.create", result.run_id, path=relative(result.model_path, folder),
                  ref=result.run_id, meta=meta, inputs=[f"dataset:{dataset}"] if dataset else [])


def _origin(ref: str, folder: Path, uri: str | None = None) -> tuple[str, list[str]]:
    """The run a model reference comes from (when it can be told) and the lineage input it makes.

    A registry reference (``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``) is resolved now, in
    the store at ``uri``, to the version it names: ``model:NAME/VERSION`` (an alias moves later).
    """
    match = RUN_ID.match(ref)
    if match:
        run_id = ref.removeprefix("runs:/").split("/")[0]
        return run_id, [f"run:{run_id}"]
    if ref.startswith("models:/"):
        from eoengine.deploy.registry import registry_version

        try:
            mv = registry_version(ref, uri)
        except EOError:  # not in the store (any more): the reference as it was written
            return "", [f"model:{ref}"]
        return mv.run_id or "", [f"model:{mv.name}/{mv.version}"]
    try:
        run_id = _package(folder / ref).run_id or ""
    except EOError:
        run_id = ""
    return run_id, [f"run:{run_id}"] if run_id else [f"model:{relative(ref, folder)}"]


def _maps(maps: list[Path], probabilities_file: Path | None, spec: AnySpec, folder: Path,
          scene_ids: list[str] | None = None) -> list[Output]:
    """A prediction job's maps, with the lineage of its spec's model."""
    return map_outputs(maps, getattr(spec, "model", ""), folder, getattr(spec, "tracking_uri", None), scene_ids,
                       probabilities_file)


def map_outputs(maps: list[Path], model: str, folder: Path, uri: str | None = None, scene_ids: list[str] | None = None,
                probabilities_file: Path | None = None, action: str = "map.create",
                meta: dict[str, Any] | None = None) -> list[Output]:
    """Map outputs, each with the model's lineage input (and, for an area's map, the scenes it was predicted from).

    Args:
        maps: The map files (relative to the project folder, or absolute).
        model: The model reference they were predicted with.
        folder: The project folder.
        uri: The MLflow tracking URI a registry reference resolves in.
        scene_ids: The input scenes, if known.
        probabilities_file: The probabilities raster beside them, if any.
        action: The event's action.
        meta: More to keep in each row's ``meta``.

    Returns:
        One output per map.

    """
    run_id, inputs = _origin(model, folder, uri)
    inputs += [f"scene:{s}" for s in scene_ids or []]
    probabilities = relative(probabilities_file, folder) if probabilities_file else None
    outputs = []
    for path in maps:
        rel = relative(path, folder)
        kept: dict[str, Any] = {"model": model, "run_id": run_id, "footprint": _footprint(folder / path),
                                "probabilities": probabilities, **(meta or {})}
        if scene_ids is not None:
            kept["scenes"] = scene_ids
        outputs.append(Output("map", Path(rel).name, action, rel, path=rel, ref=model, meta=kept, inputs=inputs))
    return outputs


def _variant(file: Path, variant: str, model: str, folder: Path, meta: dict[str, Any]) -> Output:
    run_id, inputs = _origin(model, folder)
    rel = relative(file, folder)
    return Output("model", Path(model).name if not run_id else run_id, "model.variant", rel, version=variant, path=rel,
                  ref=model, meta={"run_id": run_id, **meta}, inputs=inputs)


def registration(name: str, version: str, run_id: str, aliases: list[str], action: str = "model.register") -> Output:
    """The artefact and event of a registry version made from a run (``model:NAME/VERSION`` in the lineage).

    Args:
        name: The registered model.
        version: The version.
        run_id: The run whose package it is ("" when the registry does not say).
        aliases: The aliases pointing at it.
        action: The event: ``model.register`` (registered here) or ``model.import`` (found in an imported store).

    Returns:
        The output to index (its input ``run:RUN_ID``, when known).

    """
    return Output("model", name, action, f"{name}/{version}", version=version, ref=f"models:/{name}/{version}",
                  meta={"run_id": run_id, "aliases": aliases}, inputs=[f"run:{run_id}"] if run_id else [])


def _existing(session: Session, project_id: int, out: Output) -> Artifact | None:
    query = select(Artifact).where(Artifact.project_id == project_id, Artifact.kind == out.kind)
    if out.ref.startswith("models:/") and out.kind == "model":  # a registry version: one row per NAME/VERSION
        query = query.where(Artifact.ref == out.ref)
    elif out.kind in BY_CONTENT:
        query = query.where(Artifact.name == out.name, Artifact.version == out.version, Artifact.ref == out.ref)
    else:
        query = query.where(Artifact.path == out.path, Artifact.version == out.version)
    return session.scalars(query.limit(1)).first()


def alias_moved(session: Session, project_id: int, name: str, alias: str, moves: tuple[str | None, str | None],
                actor_id: int | None) -> None:
    """Record an alias move (or removal) of a registered model: the ``model.alias`` event and the rows' aliases.

    Args:
        session: The session making the change.
        project_id: The project.
        name: The registered model.
        alias: The alias.
        moves: (the version it pointed at before, the version it points at now); None for not set.
        actor_id: Who moved it.

    """
    before, after = moves
    for version in {v for v in moves if v is not None}:
        row = _existing(session, project_id, Output("model", name, "", "", version=version,
                                                     ref=f"models:/{name}/{version}"))
        if row is None:
            row = Artifact(project_id=project_id, kind="model", name=name, version=version, path="",
                           ref=f"models:/{name}/{version}", meta={}, created_by=actor_id)
            session.add(row)
        aliases = [a for a in (row.meta or {}).get("aliases", []) if a != alias] + ([alias] if version == after else [])
        row.meta = {**(row.meta or {}), "aliases": sorted(aliases)}
    session.flush()
    record(session, "model.alias", "model", f"{name}/{after or before}", actor_id=actor_id, project_id=project_id,
           data={"name": name, "alias": alias, "from": before, "to": after})


def store_outputs(session: Session, job: Job, outputs: list[Output]) -> list[Artifact]:
    """Index a job's outputs in the caller's transaction, with one event for each new or rewritten artefact.

    Args:
        session: The session recording the job's outcome.
        job: The job that made them.
        outputs: From :func:`outputs_of`.

    Returns:
        The rows added or updated (an artefact indexed already by content is left as it was).

    """
    return store_artifacts(session, job.project_id, job.created_by, job.id, outputs)


def store_artifacts(session: Session, project_id: int, actor_id: int | None, job_id: int | None,
                    outputs: list[Output]) -> list[Artifact]:
    """Index artefacts of a project (a job's outputs, or those an import found) with one event each.

    Args:
        session: The session (the rows are written in its transaction).
        project_id: The project.
        actor_id: Who made them (the job's submitter, or who imported them).
        job_id: The job that made them, or None.
        outputs: The artefacts.

    Returns:
        The rows added or updated (an artefact indexed already by content is left as it was).

    """
    rows = []
    for out in outputs:
        row = _existing(session, project_id, out)
        if row is not None and out.kind in BY_CONTENT:
            continue
        if row is None:
            row = Artifact(project_id=project_id, kind=out.kind, name=out.name, version=out.version,
                           path=out.path, created_by=actor_id)
            session.add(row)
        row.ref, row.meta, row.job_id = out.ref, out.meta, job_id
        session.flush()
        data = {"artifact": row.id, "name": out.name, "version": out.version, "path": out.path, "ref": out.ref,
                "job": job_id, "inputs": out.inputs}
        record(session, out.action, out.kind, out.object_id, actor_id=actor_id, project_id=project_id, data=data)
        rows.append(row)
    return rows
