"""A pre-labelling job's result into the annotation set: model suggestions and cell priorities.

A ``prelabel`` job (:class:`eoengine.jobs.specs.PrelabelSpec`) writes a JSON file of its cells'
mean entropies and class polygons (:func:`eoengine.inference.prelabel.prelabel_windows`); after
the job has run, the job runner calls :func:`ingest_prelabel`, which, in one transaction:

- sets each cell's task ``priority`` to its mean entropy (a rank job: only tasks still open
  and primary, the ones the queue hands out);
- for a pre-label job (``polygons``), replaces the task's pending suggestions with the new
  polygons: each is checked as a drawn feature is (:func:`~eoengine.platform.annotation.checks.check_feature`,
  inside the cell and the item) and stored with ``source="model"``, ``suggestion=True`` and
  ``properties`` ``{"model": "NAME/VERSION", "score": mean max-probability}``. Polygons of the
  set's background class are left out (unlabelled pixels of a task are background already);
  accepted and drawn features are never touched.

Each task gets a ``task.prelabel`` event naming the job; a task that has one for this job is
skipped, so a retried job (or its ingest run twice) never stores its suggestions twice.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from eoengine.config.schema import class_key
from eoengine.errors import Conflict, EOError, Invalid
from eoengine.jobs.specs import PrelabelSpec
from eoengine.platform.annotation import store
from eoengine.platform.annotation.checks import check_feature
from eoengine.platform.db.engine import Database
from eoengine.platform.db.models import AnnotationSet, AnnotationTask, Event, Job, LabelFeature, utcnow
from eoengine.platform.events import record
from eoengine.raster.scene import Grid

log = logging.getLogger("eoengine.platform.annotation.suggestions")
EVENT = "task.prelabel"


def _done(session: Session, task_id: int, job_id: int) -> bool:
    """Whether this job's result was stored in the task already (its ``task.prelabel`` event exists)."""
    events = session.scalars(select(Event.data).where(Event.action == EVENT, Event.object_type == "annotation_task",
                                                      Event.object_id == str(task_id)))
    return any(data.get("job") == job_id for data in events)


def _replace_pending(session: Session, task: AnnotationTask) -> int:
    """Delete a task's pending suggestions (their rows stay, deleted, so a stale edit of one gets its 409)."""
    done = session.execute(update(LabelFeature).where(
        LabelFeature.task_id == task.id, LabelFeature.suggestion.is_(True), LabelFeature.deleted.is_(False))
        .values(deleted=True, version=LabelFeature.version + 1, updated_at=utcnow())
        .execution_options(synchronize_session=False))
    return int(done.rowcount)  # type: ignore[attr-defined]  # a CursorResult


def _suggest(session: Session, job: Job, aset: AnnotationSet, task: AnnotationTask, found: list[dict[str, Any]],
             item: str, model: str, grids: dict[str, Grid]) -> tuple[list[int], int]:
    """Store a cell's polygons as suggestions (after checking each); (their ids, how many were refused)."""
    background = class_key(aset.completeness.get("background"))
    target = store.target(aset, task, grids)
    made, refused = [], 0
    for feat in found:
        label = feat["properties"]["label"]
        if class_key(label) == background:
            continue
        try:
            checked = check_feature({"geometry": feat["geometry"], "properties": {"label": label, "item": item}}, target)
        except Invalid as exc:
            log.warning("task %s: a polygon of class %s is refused: %s", task.id, label, exc.problem)
            refused += 1
            continue
        row = LabelFeature(set_id=aset.id, task_id=task.id, geometry=checked.geometry, label=checked.label,
                           properties={"model": model, "score": feat["properties"]["score"]}, item=checked.item,
                           items=checked.items, native_crs=checked.native_crs, source="model", suggestion=True,
                           created_by=job.created_by, updated_by=job.created_by)
        session.add(row)
        session.flush()
        made.append(row.id)
    return made, refused


def _cell(session: Session, job: Job, spec: PrelabelSpec, cell: dict[str, Any], model: str,
          grids: dict[str, Grid]) -> None:
    """One cell of the result into its task (see the module's rules)."""
    task = session.get(AnnotationTask, int(cell["id"]), with_for_update=True)
    aset = None if task is None else session.get(AnnotationSet, task.set_id)
    if task is None or aset is None or aset.project_id != job.project_id:
        log.warning("job %s: task %s is not in the job's project; left out", job.id, cell["id"])
        return
    if _done(session, task.id, job.id):
        return
    data: dict[str, Any] = {"job": job.id, "model": model, "entropy": cell["entropy"]}
    if spec.polygons:
        if task.state not in store.WRITABLE:
            raise Conflict(f"task {task.id} is {task.state} now: its labels are frozen, so no suggestion was stored",
                           "pre-label a task that is open, in progress or rejected")
        data["replaced"] = _replace_pending(session, task)
        data["suggestions"], data["refused"] = _suggest(session, job, aset, task, cell["features"], spec.item, model,
                                                        grids)
        task.priority = cell["entropy"]
    elif task.state == "open" and task.copy_kind == "":
        task.priority = cell["entropy"]
    else:
        return
    record(session, EVENT, "annotation_task", task.id, actor_id=job.created_by, project_id=job.project_id, data=data)


def ingest_prelabel(db: Database, job: Job, spec: PrelabelSpec, folder: Path, grids: dict[str, Grid]) -> None:
    """Store a finished pre-labelling job's result file in its tasks (one transaction).

    Args:
        db: The platform database.
        job: The job (its project, creator and id).
        spec: Its spec (the result file, the item, whether it pre-labels or ranks).
        folder: The project folder (a relative ``output`` is in it).
        grids: The pixel grid of each imagery item of the project (where features may lie).

    Raises:
        EOError: The result file cannot be read.
        Conflict: A task to pre-label is frozen now (nothing is stored).

    """
    path = spec.output if spec.output.is_absolute() else folder / spec.output
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise EOError(f"cannot read the pre-labelling result {path.name}: {exc}", "run the job again") from None
    model = spec.model.removeprefix("models:/")
    with db.write() as session:
        for cell in result["cells"]:
            _cell(session, job, spec, cell, model, grids)
