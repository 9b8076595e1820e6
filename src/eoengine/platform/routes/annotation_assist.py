"""Model-assisted labelling: pre-label a task's cell with a registered model, rank cells by its uncertainty, accept.

Under ``/projects/{slug}/annotation``:

- ``POST /tasks/{id}/prelabel`` (the task's assignee while it is writable, or a reviewer)
  queues a ``prelabel`` job that predicts the cell's window of one of the set's items with a
  model of the project's registry and, when it has run, stores its class polygons in the task
  as pending suggestions (:mod:`eoengine.platform.annotation.suggestions`);
- ``POST /sets/{id}/rank`` (reviewer) queues one that sets every open primary task's
  ``priority`` to the model's mean entropy there, so ``next`` serves the most uncertain first;
- ``POST /features/{fid}/accept`` turns a suggestion into a feature like a drawn one.

The model is named ``NAME@ALIAS``, ``NAME/VERSION`` or ``models:/…``; an alias is resolved to
its version when the job is queued, so the job (and a retry of it) uses one version. Before
anything is queued the model's bands are looked up in the item, and its classes in the set.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from rasterio.windows import from_bounds
from sqlalchemy import select
from sqlalchemy.orm import Session

from eoengine.config.schema import class_key
from eoengine.errors import Conflict, Invalid, NotFound
from eoengine.jobs.specs import PrelabelCell, PrelabelSpec
from eoengine.platform.annotation import store
from eoengine.platform.annotation.grid import cell, grid_of, item_grid, reproject
from eoengine.platform.annotation.schemas import Stale
from eoengine.platform.browse import project_config
from eoengine.platform.db.models import AnnotationSet, AnnotationTask, Job
from eoengine.platform.deps import ROW_ID_MAX, Annotator, DbSession, ProjectAccess, Reviewer, RowId
from eoengine.platform.events import record
from eoengine.platform.imagery import item_bands
from eoengine.platform.routes.annotation import STALE, _items, _stale
from eoengine.platform.routes.jobs import job_out
from eoengine.platform.routes.runs import MODEL_FIX, project_store
from eoengine.platform.schemas import JobOut

router = APIRouter(prefix="/projects/{slug}/annotation", tags=["annotation"])
_MODEL = re.compile(r"^(?:models:/)?(?P<name>[\w\-.]+)(?P<ref>@[\w\-]+|/\d+)$")
MODEL_FORMS = "name the model NAME@ALIAS, NAME/VERSION or models:/NAME@ALIAS (GET /api/v1/projects/SLUG/models)"


class PrelabelIn(BaseModel):
    """A registered model (``NAME@ALIAS``, ``NAME/VERSION`` or ``models:/…``) and the set's item to predict."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(min_length=1, max_length=300, description="e.g. landcover@champion or landcover/3")
    item: str | None = Field(None, max_length=300, description="one of the set's items; default its first")


class AcceptIn(BaseModel):
    """The version of the suggestion as the client last saw it."""

    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1, le=ROW_ID_MAX)


def _model_version(request: Request, access: ProjectAccess, session: Session, given: str) -> tuple[str, str]:
    """``models:/NAME/VERSION`` of the model named, and the project's tracking URI."""
    from eoengine.deploy.registry import registry_version

    m = _MODEL.match(given)
    if m is None:
        raise Invalid(f"model {given!r} is not a registered model's name with an alias or version", MODEL_FORMS)
    uri, _, exists = project_store(request, access, session)
    ref = f"models:/{m['name']}{m['ref']}"
    if not exists:
        raise NotFound(f"no registered model {given!r} in project {access.project.slug!r}", MODEL_FIX)
    try:
        found = registry_version(ref, uri)
    except NotFound:
        raise NotFound(f"no registered model {given!r} in project {access.project.slug!r}", MODEL_FIX) from None
    return f"models:/{found.name}/{found.version}", uri


def _scene(request: Request, access: ProjectAccess, session: Session, aset: AnnotationSet, item: str | None,
           model: str, uri: str) -> tuple[dict[str, Any], list[str]]:
    """The item (STAC dict) and its files for each of the model's bands (``name=path:N``), the model checked against both."""
    from eoengine.deploy.registry import resolve_model_ref
    from eoengine.models.meta import PackageMeta

    chosen = item or aset.items[0]
    if chosen not in aset.items:
        raise Invalid(f"item {chosen!r} is not one of set {aset.id}'s", f"use one of {', '.join(aset.items)}")
    meta = PackageMeta.read(resolve_model_ref(model, uri))
    if meta.task != "segmentation" or meta.timesteps != 1:
        raise Invalid(f"{model} is a {meta.task} model of {meta.timesteps} date(s)",
                      "pre-label with a segmentation model of one date")
    unknown = [c.value for c in meta.classes if class_key(c.value) not in {class_key(s["value"]) for s in aset.classes}]
    if unknown:
        raise Invalid(f"{model} predicts class value(s) {unknown} that set {aset.id} does not have",
                      "pre-label with a model trained on the set's classes")
    found = _items(request, access, session).get(chosen)
    if found is None:
        raise Conflict(f"item {chosen!r} is no longer in the project's imagery", "restore the scene, or make a new set")
    bands = item_bands(found)
    refs = {s.name: bands.get(s.name) or bands.get(s.common_name or s.name) for s in meta.band_specs}
    missing = [name for name, ref in refs.items() if ref is None]
    if missing:
        raise Invalid(f"item {chosen!r} has no band {', '.join(missing)} that {model} needs",
                      f"pre-label an item with the bands {', '.join(refs)} (by name or common name)")
    return found, [f"{name}={ref.href}:{ref.index}" for name, ref in refs.items() if ref is not None]


def _window(aset: AnnotationSet, task: AnnotationTask, item: dict[str, Any]) -> PrelabelCell | None:
    """The task's cell as a pixel window of the item's grid (None when the item does not cover it)."""
    set_grid, grid = grid_of(aset.grid), item_grid(item)
    native = reproject(cell(set_grid, aset.block_size, task.row, task.col).native, set_grid.crs_wkt, grid.crs_wkt)
    win = from_bounds(*native.bounds, transform=grid.affine).round_offsets().round_lengths()
    r0, c0 = max(int(win.row_off), 0), max(int(win.col_off), 0)
    r1, c1 = min(int(win.row_off + win.height), grid.height), min(int(win.col_off + win.width), grid.width)
    if r1 <= r0 or c1 <= c0:
        return None
    return PrelabelCell(id=task.id, row_off=r0, col_off=c0, height=r1 - r0, width=c1 - c0)


def _queue(session: Session, request: Request, access: ProjectAccess, fields: dict[str, Any]) -> JobOut:
    """A ``prelabel`` job queued (its result file named by its id), with its ``job.submit`` event."""
    cfg = project_config(request, access.project)
    job = Job(project_id=access.project.id, kind="prelabel", spec={}, created_by=access.user_id)
    session.add(job)
    session.flush()
    spec = PrelabelSpec(output=cfg.output_path / "prelabel" / f"job-{job.id}.json", **fields)
    job.spec = spec.model_dump(mode="json")
    record(session, "job.submit", "job", job.id, actor_id=access.user_id, project_id=access.project.id,
           data={"kind": spec.kind, "spec": job.spec})
    return job_out(job, access.project.slug, access.caller.user.username)


def _check_prelabel(access: ProjectAccess, task: AnnotationTask, aset: AnnotationSet) -> None:
    if aset.kind != "classes":
        raise Invalid(f"set {aset.id} is a {aset.kind} set", "pre-label tasks of a class set")
    if access.allows("review") and task.state in store.WRITABLE:
        return
    store.may_write(access, task)
    if task.state not in store.WRITABLE:
        raise Conflict(f"task {task.id} is {task.state}: its labels are frozen", "a reviewer rejects it to reopen it")


@router.post("/tasks/{task_id}/prelabel", response_model=JobOut, status_code=201)
def prelabel_task(task_id: RowId, body: PrelabelIn, access: Annotator, request: Request, session: DbSession) -> JobOut:
    """Queue a job that predicts the task's cell with a registered model and stores its polygons as suggestions."""
    task, aset = store.get_task(session, access.project.id, task_id)
    _check_prelabel(access, task, aset)
    model, uri = _model_version(request, access, session, body.model)
    item, scene = _scene(request, access, session, aset, body.item, model, uri)
    window = _window(aset, task, item)
    if window is None:
        raise Invalid(f"item {item['id']!r} does not cover task {task.id}'s cell", "pre-label with an item over the cell")
    return _queue(session, request, access, {"model": model, "scene": scene, "cells": [window], "item": item["id"]})


@router.post("/sets/{set_id}/rank", response_model=JobOut, status_code=201)
def rank_tasks(set_id: RowId, body: PrelabelIn, access: Reviewer, request: Request, session: DbSession) -> JobOut:
    """Queue a job that sets each open primary task's priority to the model's mean entropy there (``next``: highest first)."""
    aset = store.get_set(session, access.project.id, set_id)
    model, uri = _model_version(request, access, session, body.model)
    item, scene = _scene(request, access, session, aset, body.item, model, uri)
    tasks = session.scalars(select(AnnotationTask).where(AnnotationTask.set_id == aset.id,
                                                         AnnotationTask.state == "open", AnnotationTask.copy_kind == "")
                            .order_by(AnnotationTask.id)).all()
    cells = [w for w in (_window(aset, t, item) for t in tasks) if w is not None]
    if not cells:
        raise Conflict(f"set {aset.id} has no open task over item {item['id']!r} to rank", "rank a set with open tasks")
    return _queue(session, request, access, {"model": model, "scene": scene, "cells": cells, "item": item["id"],
                                             "polygons": False})


@router.post("/features/{fid}/accept", response_model=dict[str, Any], responses=STALE)
def accept_feature(fid: RowId, body: AcceptIn, access: Annotator, session: DbSession) -> dict[str, Any] | JSONResponse:
    """Accept a model's suggestion at the version the client last saw (then it is a feature like a drawn one)."""
    feature, task, aset = store.get_feature(session, access.project.id, fid)
    try:
        store.accept_feature(session, access, feature, task, aset, body.version)
    except Stale as exc:
        return _stale(exc)
    return store.one_feature_json(session, feature, aset)
