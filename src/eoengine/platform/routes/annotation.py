"""Annotation: sets of block-grid tasks over a project's imagery, versioned label features, assignment and review.

Under ``/projects/{slug}/annotation``: reviewers make sets (``POST /sets``: the tasks are the
cells of the first item's block grid over the area), assign tasks and review them; annotators
take tasks from the queue (``POST /sets/{id}/next``), draw features in them (each write checked
by :mod:`eoengine.platform.annotation.checks` and versioned: a stale ``PUT`` or ``DELETE`` gets a
409 whose body holds the ``current`` feature) and submit them; viewers read. Every change writes
an event; ``GET /tasks/{id}/history`` lists a task's.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from shapely.geometry import box
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from eoengine.errors import Conflict, EOError, Invalid
from eoengine.platform.annotation import store
from eoengine.platform.annotation.checks import check_feature, check_geometry, class_value
from eoengine.platform.annotation.grid import item_grid, to_lonlat
from eoengine.platform.annotation.schemas import (
    AssignIn,
    CommentIn,
    CommentOut,
    DeletedOut,
    FeatureIn,
    HistoryOut,
    ItemRef,
    ResolveIn,
    ReviewIn,
    SetIn,
    SetOut,
    Stale,
    TaskOut,
)
from eoengine.platform.browse import project_config
from eoengine.platform.db.models import AnnotationSet, AnnotationTask, Event, LabelFeature, ReviewComment, User
from eoengine.platform.deps import ROW_ID_MAX, Annotator, DbSession, ProjectAccess, Reader, Reviewer, RowId
from eoengine.platform.routes.imagery import catalog_of
from eoengine.platform.schemas import EventOut
from eoengine.raster.scene import Grid

router = APIRouter(prefix="/projects/{slug}/annotation", tags=["annotation"])
STALE: dict[int | str, dict[str, Any]] = {409: {"description": "A stale version: the body's ``current`` is the stored feature"}}
Feature = dict[str, Any]


def _items(request: Request, access: ProjectAccess, session: Session) -> dict[str, dict[str, Any]]:
    """The project catalog's items by id."""
    return {r.item["id"]: r.item for r in catalog_of(request, access.project, session).records}


def _dates(request: Request, access: ProjectAccess, session: Session) -> dict[str, str | None]:
    """Item id → its datetime, for display (empty when the catalog cannot be read now)."""
    try:
        return {k: v["properties"].get("datetime") for k, v in _items(request, access, session).items()}
    except EOError:
        return {}


def _refs(ids: list[str], dates: dict[str, str | None]) -> list[ItemRef]:
    return [ItemRef(id=i, datetime=dates.get(i)) for i in ids]


def _grids(request: Request, access: ProjectAccess, session: Session, aset: AnnotationSet) -> dict[str, Grid]:
    """The pixel grid of each of the set's items (where its features may lie)."""
    items = _items(request, access, session)
    gone = [i for i in aset.items if i not in items]
    if gone:
        raise Conflict(f"item(s) {', '.join(gone)} of set {aset.id} are no longer in the project's imagery",
                       "restore the scenes in the config (or the uploads), or make a new set")
    return {i: item_grid(items[i]) for i in aset.items}


def _set_out(session: Session, aset: AnnotationSet, dates: dict[str, str | None]) -> SetOut:
    return SetOut(id=aset.id, name=aset.name, kind=aset.kind, classes=aset.classes, items=_refs(aset.items, dates),
                  block_size=aset.block_size, grid=aset.grid, completeness=aset.completeness, aoi=aset.aoi,
                  counts=store.counts(session, aset.id), created_at=aset.created_at)


def _task_out(session: Session, task: AnnotationTask, aset: AnnotationSet, dates: dict[str, str | None],
              access: ProjectAccess | None = None) -> TaskOut:
    """A task as the API shows it; what makes it a copy (or gold) only to a reviewer's ``access``."""
    comments = session.scalars(select(ReviewComment).where(ReviewComment.task_id == task.id)
                               .order_by(ReviewComment.id)).all()
    names = store.usernames(session, [task.assignee_id, task.reviewer_id, *(c.author_id for c in comments)])
    return TaskOut(id=task.id, set_id=task.set_id, row=task.row, col=task.col, state=task.state,
                   assignee=names.get(task.assignee_id or 0), reviewer=names.get(task.reviewer_id or 0),
                   version=task.version, priority=task.priority, geometry=task.geometry,
                   complete_area=task.complete_area, items=_refs(aset.items, dates),
                   comments=[CommentOut(id=c.id, author=names.get(c.author_id or 0), text=c.text, lon=c.lon, lat=c.lat,
                                        resolved=c.resolved, created_at=c.created_at) for c in comments],
                   **(_copy_fields(task) if access is not None and access.allows("review") else {}))


def _copy_fields(task: AnnotationTask) -> dict[str, Any]:
    return {"copy_kind": task.copy_kind, "reference_task_id": task.reference_task_id, "gold": task.gold}


def _spec(request: Request, access: ProjectAccess, session: Session, body: SetIn) -> store.SetSpec:
    """The set ``body`` asks for, its defaults taken from the project config and its items from the catalog."""
    cfg = project_config(request, access.project)
    catalog = _items(request, access, session)
    unknown = [i for i in body.items if i not in catalog]
    if unknown:
        raise Invalid(f"no item {', '.join(map(repr, unknown))} in the project's imagery",
                      f"use item ids of GET /api/v1/projects/{access.project.slug}/imagery: {', '.join(sorted(catalog))}")
    if len(set(body.items)) != len(body.items):
        raise Invalid("an item is listed twice", "list each item (date) once")
    if body.kind == "change" and len(body.items) < 2:
        raise Invalid("a change set needs two items or more (its dates)", "list the items of both dates")
    items = sorted((catalog[i] for i in body.items), key=lambda it: str(it["properties"].get("datetime") or ""))
    classes = [c.model_dump() for c in body.classes] if body.classes else [c.model_dump() for c in cfg.classes]
    if not classes:
        raise Invalid("the set has no classes and the project config lists none", "send classes: [{value, name, color}]")
    if len({str(c["value"]) for c in classes}) != len(classes):
        raise Invalid("two classes have the same value", "give each class its own value")
    if body.aoi is not None:
        aoi = check_geometry(body.aoi)
        if aoi.geom_type not in ("Polygon", "MultiPolygon"):
            raise Invalid(f"the aoi is a {aoi.geom_type}", "send a Polygon or MultiPolygon in EPSG:4326")
    else:
        grid = item_grid(items[0])
        aoi = to_lonlat(box(*grid.bounds), grid.crs_wkt)
    split, patch = cfg.dataset.split, cfg.dataset.patch_size
    block = body.block_size or split.block_size or 4 * patch
    background = body.background if body.background is not None else (
        cfg.labels.background if cfg.labels is not None and cfg.labels.background is not None else classes[0]["value"])
    return store.SetSpec(body.name, body.kind, classes, items, aoi, block,
                         class_value(classes, background, "background"))


@router.post("/sets", response_model=SetOut, status_code=201)
def create_set(body: SetIn, access: Reviewer, request: Request, session: DbSession) -> SetOut:
    """Make an annotation set: its tasks are the block-grid cells of its first item (by date) over the area."""
    spec = _spec(request, access, session, body)
    aset = store.create_set(session, access, spec)
    return _set_out(session, aset, {i["id"]: i["properties"].get("datetime") for i in spec.items})


@router.get("/sets", response_model=list[SetOut])
def list_sets(access: Reader, request: Request, session: DbSession) -> list[SetOut]:
    """The project's annotation sets, newest first, with their task counts."""
    dates = _dates(request, access, session)
    sets = session.scalars(select(AnnotationSet).where(AnnotationSet.project_id == access.project.id)
                           .order_by(AnnotationSet.id.desc())).all()
    return [_set_out(session, s, dates) for s in sets]


@router.get("/sets/{set_id}", response_model=SetOut)
def get_set(set_id: RowId, access: Reader, request: Request, session: DbSession) -> SetOut:
    """One annotation set."""
    aset = store.get_set(session, access.project.id, set_id)
    return _set_out(session, aset, _dates(request, access, session))


@router.get("/sets/{set_id}/tasks", response_model=dict[str, Any])
def list_tasks(set_id: RowId, access: Reader, session: DbSession) -> dict[str, Any]:
    """The set's tasks as a GeoJSON FeatureCollection of their cells, with state, people and feature counts."""
    aset = store.get_set(session, access.project.id, set_id)
    tasks = store.visible(access, session.scalars(select(AnnotationTask).where(AnnotationTask.set_id == aset.id)
                                                  .order_by(AnnotationTask.row, AnnotationTask.col, AnnotationTask.id)))
    drawn = {task_id: n for task_id, n in session.execute(select(LabelFeature.task_id, func.count()).where(
        LabelFeature.set_id == aset.id, LabelFeature.deleted.is_(False)).group_by(LabelFeature.task_id))}
    names = store.usernames(session, [i for t in tasks for i in (t.assignee_id, t.reviewer_id)])
    reviewer = access.allows("review")
    features = []
    for t in tasks:
        props: dict[str, Any] = {"id": t.id, "row": t.row, "col": t.col, "state": t.state,
                                 "assignee": names.get(t.assignee_id or 0), "reviewer": names.get(t.reviewer_id or 0),
                                 "features": drawn.get(t.id, 0), "version": t.version, "priority": t.priority}
        if reviewer:
            props |= _copy_fields(t)
        features.append({"type": "Feature", "id": t.id, "geometry": t.geometry, "properties": props})
    return {"type": "FeatureCollection", "features": features}


@router.post("/sets/{set_id}/next", response_model=TaskOut)
def next_task(set_id: RowId, access: Annotator, request: Request, session: DbSession) -> TaskOut:
    """The caller's next task: one assigned to them still to do (rejected first), else one taken from the queue."""
    aset = store.get_set(session, access.project.id, set_id)
    task = store.next_task(session, access, aset)
    return _task_out(session, task, aset, _dates(request, access, session), access)


@router.post("/tasks/{task_id}/assign", response_model=TaskOut)
def assign_task(task_id: RowId, body: AssignIn, access: Reviewer, request: Request, session: DbSession) -> TaskOut:
    """Assign a task to a member who may annotate (``user: null`` unassigns it)."""
    task, aset = store.get_task(session, access.project.id, task_id)
    store.assign(session, access, task, body.user)
    return _task_out(session, task, aset, _dates(request, access, session), access)


@router.get("/tasks/{task_id}", response_model=TaskOut)
def get_task(task_id: RowId, access: Reader, request: Request, session: DbSession) -> TaskOut:
    """A task: its cell, completeness area, state, people, items and comments."""
    task, aset = store.get_task(session, access.project.id, task_id)
    store.check_visible(session, access, task)
    return _task_out(session, task, aset, _dates(request, access, session), access)


@router.get("/tasks/{task_id}/history", response_model=HistoryOut)
def task_history(task_id: RowId, access: Reader, session: DbSession) -> HistoryOut:
    """A task's events and its features' events, oldest first."""
    task, _ = store.get_task(session, access.project.id, task_id)
    store.check_visible(session, access, task)
    fids = [str(i) for i in session.scalars(select(LabelFeature.id).where(LabelFeature.task_id == task.id))]
    rows = session.execute(select(Event, User.username).outerjoin(User, User.id == Event.actor_id).where(
        Event.project_id == access.project.id,
        or_((Event.object_type == "annotation_task") & (Event.object_id == str(task.id)),
            (Event.object_type == "label_feature") & Event.object_id.in_(fids))).order_by(Event.id))
    events = [EventOut(id=e.id, at=e.at, actor=actor, project=access.project.slug, action=e.action,
                       object_type=e.object_type, object_id=e.object_id, data=e.data, payload_hash=e.payload_hash)
              for e, actor in rows]
    return HistoryOut(task_id=task.id, events=events)


@router.get("/tasks/{task_id}/features", response_model=dict[str, Any])
def list_features(task_id: RowId, access: Reader, session: DbSession) -> dict[str, Any]:
    """A task's label features (not the deleted ones) as a GeoJSON FeatureCollection."""
    task, aset = store.get_task(session, access.project.id, task_id)
    store.check_visible(session, access, task)
    found = session.scalars(select(LabelFeature).where(LabelFeature.task_id == task.id,
                                                       LabelFeature.deleted.is_(False)).order_by(LabelFeature.id)).all()
    names = store.usernames(session, [i for f in found for i in (f.created_by, f.updated_by)])
    return {"type": "FeatureCollection", "features": [store.feature_json(f, aset, names) for f in found]}


@router.post("/tasks/{task_id}/features", response_model=dict[str, Any], status_code=201)
def add_feature(task_id: RowId, body: FeatureIn, access: Annotator, request: Request, session: DbSession) -> Feature:
    """Draw a feature in a task (version 1): checked geometry in EPSG:4326, a class of the set, one of its items."""
    task, aset = store.get_task(session, access.project.id, task_id)
    store.may_write(access, task)
    checked = check_feature(body.model_dump(), store.target(aset, task, _grids(request, access, session, aset)))
    return store.one_feature_json(session, store.create_feature(session, access, task, checked), aset)


def _version(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= ROW_ID_MAX:
        raise Invalid(f"properties.version {value!r} is not a version number",
                      "send the feature's version as you last saw it (an integer from 1)")
    return value


def _stale(exc: Stale) -> JSONResponse:
    return JSONResponse({"error": exc.problem, "fix": exc.fix, "current": exc.current}, status_code=409)


@router.put("/features/{fid}", response_model=dict[str, Any], responses=STALE)
def update_feature(fid: RowId, body: FeatureIn, access: Annotator, request: Request,
                   session: DbSession) -> Feature | JSONResponse:
    """Replace a feature, from the version the client last saw (``properties.version``); stale: 409 with ``current``."""
    feature, task, aset = store.get_feature(session, access.project.id, fid)
    store.may_write(access, task)
    version = _version(body.properties.get("version"))
    checked = check_feature(body.model_dump(), store.target(aset, task, _grids(request, access, session, aset)))
    try:
        store.update_feature(session, access, feature, task, aset, checked, version)
    except Stale as exc:
        return _stale(exc)
    return store.one_feature_json(session, feature, aset)


@router.delete("/features/{fid}", response_model=DeletedOut, responses=STALE)
def delete_feature(fid: RowId, access: Annotator, session: DbSession,
                   version: Annotated[int, Query(ge=1, le=ROW_ID_MAX, description="The version last seen")],
                   ) -> DeletedOut | JSONResponse:
    """Delete a feature at the version the client last saw; stale: 409 with ``current``."""
    feature, task, aset = store.get_feature(session, access.project.id, fid)
    try:
        store.delete_feature(session, access, feature, task, aset, version)
    except Stale as exc:
        return _stale(exc)
    return DeletedOut(id=feature.id, version=feature.version)


@router.post("/tasks/{task_id}/submit", response_model=TaskOut)
def submit_task(task_id: RowId, access: Annotator, request: Request, session: DbSession) -> TaskOut:
    """Hand a task in for review (its assignee)."""
    task, aset = store.get_task(session, access.project.id, task_id)
    store.submit(session, access, task)
    return _task_out(session, task, aset, _dates(request, access, session), access)


@router.post("/tasks/{task_id}/review", response_model=TaskOut)
def review_task(task_id: RowId, body: ReviewIn, access: Reviewer, request: Request, session: DbSession) -> TaskOut:
    """Accept a submitted task, or reject it with a comment or pins on the map (sent back to its annotator)."""
    task, aset = store.get_task(session, access.project.id, task_id)
    store.review(session, access, task, body.decision, body.comment, [(p.lon, p.lat, p.text) for p in body.pins])
    return _task_out(session, task, aset, _dates(request, access, session), access)


@router.post("/tasks/{task_id}/comments", response_model=CommentOut, status_code=201)
def comment_task(task_id: RowId, body: CommentIn, access: Annotator, session: DbSession) -> CommentOut:
    """Comment on a task (pinned at lon, lat when both are given)."""
    task, _ = store.get_task(session, access.project.id, task_id)
    made = store.add_comment(session, access, task, body.text, body.lon, body.lat)
    return _comment_out(made, access.caller.user.username)


def _comment_out(comment: ReviewComment, author: str | None) -> CommentOut:
    return CommentOut(id=comment.id, author=author, text=comment.text, lon=comment.lon, lat=comment.lat,
                      resolved=comment.resolved, created_at=comment.created_at)


@router.post("/comments/{comment_id}/resolve", response_model=CommentOut)
def resolve_comment(comment_id: RowId, body: ResolveIn, access: Annotator, session: DbSession) -> CommentOut:
    """Mark a task's comment resolved, or open again (the task's annotator or a reviewer)."""
    comment, task = store.get_comment(session, access.project.id, comment_id)
    store.resolve_comment(session, access, comment, task, body.resolved)
    return _comment_out(comment, store.usernames(session, [comment.author_id]).get(comment.author_id or 0))

