"""The writes of annotation: sets with their tasks, versioned label features, assignment, review, comments.

Every change writes its event in the same transaction (:func:`eoengine.platform.events.record`).
A feature's update or delete is one conditional ``UPDATE … WHERE version = N``: of two
clients that saw version N only the first wins; the second gets :class:`Stale` (a 409 with the
current feature) and nothing of it is stored. Taking a task from the queue is conditional the
same way (``WHERE assignee_id IS NULL``), so two annotators never get one task.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shapely.geometry.base import BaseGeometry
from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from eoengine.config.schema import class_key
from eoengine.errors import Conflict, Denied, Invalid, NotFound
from eoengine.platform.annotation.checks import Checked, Target
from eoengine.platform.annotation.grid import block_counts, cell, cells, geojson, grid_json, grid_of, item_grid
from eoengine.platform.annotation.schemas import Stale
from eoengine.platform.db.models import (
    AnnotationSet,
    AnnotationTask,
    LabelFeature,
    Membership,
    ReviewComment,
    User,
    utcnow,
)
from eoengine.platform.deps import ProjectAccess
from eoengine.platform.events import record
from eoengine.platform.roles import allows

WRITABLE = ("open", "in_progress", "rejected")
"""States in which the assignee draws; a reviewer may also fix a ``submitted`` task."""
NEXT_FIX = "take a task with POST /api/v1/projects/SLUG/annotation/sets/SET/next, or ask a reviewer to assign it"


@dataclass(frozen=True)
class SetSpec:
    """A set to make, its defaults filled in: items (STAC Item dicts) ordered by date, the area in EPSG:4326."""

    name: str
    kind: str
    classes: list[dict[str, Any]]
    items: list[dict[str, Any]]
    aoi: BaseGeometry
    block_size: int
    background: Any


def usernames(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    """User id → user name, for the ids given (None left out)."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(select(User.id, User.username).where(User.id.in_(wanted)))
    return {user_id: name for user_id, name in rows}


def get_set(session: Session, project_id: int, set_id: int) -> AnnotationSet:
    """The set ``set_id`` of a project.

    Raises:
        NotFound: No such set in the project.

    """
    found = session.get(AnnotationSet, set_id)
    if found is None or found.project_id != project_id:
        raise NotFound(f"no annotation set {set_id} in this project", "list them: GET .../annotation/sets")
    return found


def get_task(session: Session, project_id: int, task_id: int) -> tuple[AnnotationTask, AnnotationSet]:
    """The task ``task_id`` of a project, and its set.

    Raises:
        NotFound: No such task in the project.

    """
    task = session.get(AnnotationTask, task_id)
    aset = None if task is None else session.get(AnnotationSet, task.set_id)
    if task is None or aset is None or aset.project_id != project_id:
        raise NotFound(f"no annotation task {task_id} in this project", "list a set's tasks: GET .../sets/SET/tasks")
    return task, aset


def get_feature(session: Session, project_id: int, fid: int) -> tuple[LabelFeature, AnnotationTask, AnnotationSet]:
    """The label feature ``fid`` of a project (deleted ones too), its task and set.

    Raises:
        NotFound: No such feature in the project.

    """
    feature = session.get(LabelFeature, fid)
    if feature is None:
        raise NotFound(f"no label feature {fid} in this project", "list a task's features: GET .../tasks/TASK/features")
    task, aset = get_task(session, project_id, feature.task_id)
    return feature, task, aset


def target(aset: AnnotationSet, task: AnnotationTask, grids: Mapping[str, Any]) -> Target:
    """What a feature of ``task`` is checked against: the set's kind, classes and items, the task's cell."""
    grid = grid_of(aset.grid)
    return Target(aset.kind, aset.classes, aset.items, grids, grid, cell(grid, aset.block_size, task.row, task.col).native,
                  f"task {task.id}'s cell (row {task.row}, col {task.col})")


def stored_class(aset: AnnotationSet, label: str) -> Any:
    """A stored label (text) as the set's class value it names (a number stays a number), else the text itself.

    Args:
        aset: The feature's set.
        label: The feature's ``label`` column.

    Returns:
        The class value, or ``label`` (``change``/``no-change`` of a change set).

    """
    return next((c["value"] for c in aset.classes if class_key(c["value"]) == label), label)


def feature_json(feature: LabelFeature, aset: AnnotationSet, names: Mapping[int, str]) -> dict[str, Any]:
    """A label feature as GeoJSON: its id, geometry and properties (change classes for a change set).

    Args:
        feature: The feature.
        aset: Its set.
        names: User id → name (of its creator and last editor).

    Returns:
        The GeoJSON Feature (with ``deleted: true`` when it was deleted).

    """
    props: dict[str, Any] = {
        "label": stored_class(aset, feature.label), "version": feature.version, "task": feature.task_id,
        "item": feature.item, "items": feature.items, "native_crs": feature.native_crs, "source": feature.source,
        "created_by": names.get(feature.created_by or 0), "updated_by": names.get(feature.updated_by or 0),
        "updated_at": feature.updated_at.isoformat()}
    if aset.kind == "change":
        props |= {k: feature.properties.get(k) for k in ("from", "to")}
    if feature.source == "model":
        props |= {k: feature.properties[k] for k in ("model", "score") if k in feature.properties}
    if feature.suggestion:
        props["suggestion"] = True
    if feature.deleted:
        props["deleted"] = True
    return {"type": "Feature", "id": feature.id, "geometry": feature.geometry, "properties": props}


def one_feature_json(session: Session, feature: LabelFeature, aset: AnnotationSet) -> dict[str, Any]:
    """:func:`feature_json` of one feature, its users' names looked up."""
    return feature_json(feature, aset, usernames(session, (feature.created_by, feature.updated_by)))


def may_write(access: ProjectAccess, task: AnnotationTask) -> None:
    """Check that the caller may draw in ``task``.

    Its assignee may while it is open, in progress or rejected; a reviewer also while it is
    submitted (fix and accept).

    Raises:
        Conflict: The task is accepted (or submitted, for an annotator).
        Denied: The task is not assigned to the caller.

    """
    reviewer = access.allows("review")
    if task.state == "submitted" and reviewer:
        return
    if task.state not in WRITABLE:
        raise Conflict(f"task {task.id} is {task.state}: its labels are frozen",
                       "a reviewer rejects a submitted task to reopen it" if task.state == "submitted" else
                       "draw in another task")
    if task.assignee_id != access.user_id:
        raise Denied(f"task {task.id} is not assigned to you", NEXT_FIX)


def _locked(session: Session, task: AnnotationTask) -> AnnotationTask:
    """The task read again, its row locked until the transaction ends (PostgreSQL; SQLite's writes are serial).

    A write checks the task's state as it is now, not as an earlier transaction of the request read it.
    """
    session.refresh(task, with_for_update=True)
    return task


def _event(session: Session, access: ProjectAccess, action: str, kind: str, ident: int, data: dict[str, Any]) -> None:
    record(session, action, kind, ident, actor_id=access.user_id, project_id=access.project.id, data=data)


def _moved(task: AnnotationTask, state: str | None = None) -> None:
    """A change of the task (its state, if given): its version grows."""
    if state is not None:
        task.state = state
    task.version += 1
    task.updated_at = utcnow()


def _started(session: Session, task: AnnotationTask) -> None:
    """The first write in an open or rejected task moves it to in_progress.

    A task no one holds stays open (a reviewer's import into it), so the queue still hands it out.
    """
    if task.state in ("open", "rejected") and task.assignee_id is not None:
        _moved(task, "in_progress")


def create_feature(session: Session, access: ProjectAccess, task: AnnotationTask, checked: Checked,
                   source: str = "drawn",
                   allow: Callable[[ProjectAccess, AnnotationTask], None] = may_write) -> LabelFeature:
    """Store a checked feature in a task (version 1), with its ``feature.create`` event.

    ``allow`` checks the caller against the task as it is now (locked): :func:`may_write`, or
    the import's rule (a reviewer imports into any task not accepted).

    Raises:
        Conflict: The task is frozen.
        Denied: The caller may not draw in it.

    """
    allow(access, _locked(session, task))
    feature = LabelFeature(set_id=task.set_id, task_id=task.id, geometry=checked.geometry, label=checked.label,
                           properties=checked.properties, item=checked.item, items=checked.items,
                           native_crs=checked.native_crs, source=source, created_by=access.user_id,
                           updated_by=access.user_id)
    session.add(feature)
    session.flush()
    _started(session, task)
    _event(session, access, "feature.create", "label_feature", feature.id,
           {"task": task.id, "version": 1, "label": checked.label})
    return feature


def _stale(session: Session, feature: LabelFeature, aset: AnnotationSet, version: int, verb: str) -> Stale:
    session.refresh(feature)
    state = "deleted" if feature.deleted else f"at version {feature.version}"
    return Stale(f"feature {feature.id} is {state}, not version {version}: someone else changed it",
                 f"merge your change into the current feature (in this answer) and {verb} it with its version",
                 one_feature_json(session, feature, aset))


def _conditional(session: Session, feature: LabelFeature, aset: AnnotationSet, version: int, verb: str,
                 values: dict[str, Any]) -> None:
    done = session.execute(update(LabelFeature).where(
        LabelFeature.id == feature.id, LabelFeature.version == version, LabelFeature.deleted.is_(False))
        .values(version=version + 1, updated_at=utcnow(), **values).execution_options(synchronize_session=False))
    if done.rowcount != 1:  # type: ignore[attr-defined]  # a CursorResult
        raise _stale(session, feature, aset, version, verb)
    session.refresh(feature)


def update_feature(session: Session, access: ProjectAccess, feature: LabelFeature, task: AnnotationTask,
                   aset: AnnotationSet, checked: Checked, version: int) -> LabelFeature:
    """Replace a feature's geometry and properties if it is still at ``version`` (then it is at version + 1).

    Raises:
        Stale: It is at another version, or deleted (the error carries the current feature).
        Conflict: The task is frozen.
        Denied: The caller may not draw in its task.

    """
    may_write(access, _locked(session, task))
    _conditional(session, feature, aset, version, "PUT", {
        "geometry": checked.geometry, "label": checked.label, "properties": checked.properties, "item": checked.item,
        "items": checked.items, "native_crs": checked.native_crs, "updated_by": access.user_id, "suggestion": False})
    _started(session, task)
    _event(session, access, "feature.update", "label_feature", feature.id,
           {"task": task.id, "version": feature.version, "label": checked.label})
    return feature


def accept_feature(session: Session, access: ProjectAccess, feature: LabelFeature, task: AnnotationTask,
                   aset: AnnotationSet, version: int) -> LabelFeature:
    """Make a model's suggestion a feature like a drawn one, if it is still at ``version`` (then at version + 1).

    Raises:
        Stale: It is at another version, or deleted (the error carries the current feature).
        Conflict: It is no pending suggestion, or the task is frozen.
        Denied: The caller may not draw in its task.

    """
    may_write(access, _locked(session, task))
    if not feature.suggestion and not feature.deleted and feature.version == version:
        raise Conflict(f"feature {feature.id} is no pending model suggestion", "it is a feature like a drawn one already")
    _conditional(session, feature, aset, version, "accept", {"suggestion": False, "updated_by": access.user_id})
    _started(session, task)
    _event(session, access, "feature.accept", "label_feature", feature.id,
           {"task": task.id, "version": feature.version, "label": feature.label})
    return feature


def pending_suggestions(session: Session, task_id: int) -> int:
    """How many model suggestions of a task are still pending (neither accepted nor deleted)."""
    return int(session.scalar(select(func.count()).select_from(LabelFeature).where(
        LabelFeature.task_id == task_id, LabelFeature.suggestion.is_(True), LabelFeature.deleted.is_(False))) or 0)


def delete_feature(session: Session, access: ProjectAccess, feature: LabelFeature, task: AnnotationTask,
                   aset: AnnotationSet, version: int) -> LabelFeature:
    """Delete a feature if it is still at ``version`` (its row stays, deleted, at version + 1).

    Raises:
        Stale: It is at another version, or deleted already.
        Conflict: The task is frozen.
        Denied: The caller may not draw in its task.

    """
    may_write(access, _locked(session, task))
    _conditional(session, feature, aset, version, "DELETE", {"deleted": True, "updated_by": access.user_id})
    _started(session, task)
    _event(session, access, "feature.delete", "label_feature", feature.id,
           {"task": task.id, "version": feature.version, "label": feature.label})
    return feature


def _annotator(session: Session, access: ProjectAccess, username: str) -> User:
    row = session.execute(select(User, Membership.role).outerjoin(Membership, (Membership.user_id == User.id) & (
        Membership.project_id == access.project.id)).where(User.username == username)).first()
    if row is None or not allows(row[1], "annotate", row[0].is_admin):
        raise Invalid(f"{username!r} is no member of {access.project.slug!r} who may annotate",
                      "assign a member with the annotator role or higher (GET .../members)")
    return row[0]


def assign(session: Session, access: ProjectAccess, task: AnnotationTask, username: str | None) -> None:
    """Give a task to a member who may annotate (or to no one), with a ``task.assign`` event.

    Raises:
        Invalid: The user is no member who may annotate.
        Conflict: The task is accepted.

    """
    if _locked(session, task).state == "accepted":
        raise Conflict(f"task {task.id} is accepted", "accepted tasks keep their annotator")
    user = _annotator(session, access, username) if username else None
    task.assignee_id = user.id if user else None
    _moved(task)
    _event(session, access, "task.assign", "annotation_task", task.id, {"user": username, "version": task.version})


CELL = func.coalesce(AnnotationTask.reference_task_id, AnnotationTask.id)
"""A task's cell as one id: a copy's reference (the cell's primary task), a primary task's own id."""


def _labelled(aset: AnnotationSet, user_id: int) -> Select[Any]:
    """The cells (:data:`CELL`) of the set a user labelled: a task of it was theirs, or they drew in one."""
    drew = select(LabelFeature.task_id).where(LabelFeature.set_id == aset.id, LabelFeature.created_by == user_id)
    return select(CELL).where(AnnotationTask.set_id == aset.id,
                              (AnnotationTask.assignee_id == user_id) | AnnotationTask.id.in_(drew))


def _queue(aset: AnnotationSet, user_id: int | None = None) -> Select[AnnotationTask]:
    """The set's tasks in queue order; with ``user_id``, none of a cell that user labelled (its primary or a copy)."""
    query = select(AnnotationTask).where(AnnotationTask.set_id == aset.id)
    if user_id is not None:
        query = query.where(CELL.not_in(_labelled(aset, user_id)))
    return query.order_by(AnnotationTask.priority.desc().nulls_last(), AnnotationTask.row, AnnotationTask.col,
                          AnnotationTask.id)


def visible(access: ProjectAccess, tasks: Iterable[AnnotationTask]) -> list[AnnotationTask]:
    """The tasks of a set as the caller may see them (give all of the set's tasks).

    A reviewer sees every task. Anyone else sees the primary tasks, except that where they hold a
    copy of a cell (gold or double) they see their copy in its place; others' copies stay hidden.

    Args:
        access: The caller.
        tasks: The set's tasks.

    Returns:
        The visible ones, in the order given.

    """
    tasks = list(tasks)
    if access.allows("review"):
        return tasks
    held = {t.reference_task_id for t in tasks if t.copy_kind and t.assignee_id == access.user_id}
    return [t for t in tasks if (t.assignee_id == access.user_id if t.copy_kind else t.id not in held)]


def check_visible(session: Session, access: ProjectAccess, task: AnnotationTask) -> None:
    """Check that the caller may see a task (:func:`visible`): a hidden one is as unknown as a missing one.

    Raises:
        NotFound: The task is someone else's copy, or the primary task of a cell the caller holds a copy of.

    """
    if access.allows("review"):
        return
    hidden = (task.assignee_id != access.user_id) if task.copy_kind else session.scalar(select(AnnotationTask.id).where(
        AnnotationTask.reference_task_id == task.id, AnnotationTask.assignee_id == access.user_id).limit(1)) is not None
    if hidden:
        raise NotFound(f"no annotation task {task.id} in this project", "list a set's tasks: GET .../sets/SET/tasks")


def next_task(session: Session, access: ProjectAccess, aset: AnnotationSet) -> AnnotationTask:
    """The caller's next task: one of theirs still to do (rejected first), else an open one taken from the queue.

    The queue never hands someone a task of a cell they labelled (its primary task or a copy of it).

    Raises:
        NotFound: Nothing is left for them.

    """
    mine = session.scalars(_queue(aset).where(AnnotationTask.assignee_id == access.user_id,
                                              AnnotationTask.state.in_(WRITABLE))).all()
    if mine:
        return min(mine, key=lambda t: t.state != "rejected")  # stable: queue order within each group
    while True:
        free = session.scalars(_queue(aset, access.user_id).where(AnnotationTask.assignee_id.is_(None),
                                                  AnnotationTask.state == "open").limit(1)).first()
        if free is None:
            raise NotFound(f"no task left to annotate in set {aset.id!r}", "ask a reviewer for more, or take a break")
        taken = session.execute(update(AnnotationTask).where(AnnotationTask.id == free.id,
                                                             AnnotationTask.assignee_id.is_(None))
                                .values(assignee_id=access.user_id, version=AnnotationTask.version + 1,
                                        updated_at=utcnow()).execution_options(synchronize_session=False))
        if taken.rowcount == 1:  # type: ignore[attr-defined]  # a CursorResult
            session.refresh(free)
            _event(session, access, "task.assign", "annotation_task", free.id,
                   {"user": access.caller.user.username, "version": free.version, "queue": True})
            return free


def submit(session: Session, access: ProjectAccess, task: AnnotationTask) -> None:
    """The assignee hands a task in for review.

    Raises:
        Denied: The caller is not its assignee.
        Conflict: It is submitted or accepted already, or model suggestions in it are pending.

    """
    if _locked(session, task).assignee_id != access.user_id:
        raise Denied(f"task {task.id} is not assigned to you", "only its annotator submits a task")
    if task.state not in WRITABLE:
        raise Conflict(f"task {task.id} is {task.state} already", "wait for its review")
    pending = pending_suggestions(session, task.id)
    if pending:
        raise Conflict(f"{pending} model suggestions are pending in task {task.id}",
                       "accept or delete them (POST .../features/FID/accept, DELETE .../features/FID)")
    _moved(task, "submitted")
    _event(session, access, "task.submit", "annotation_task", task.id, {"version": task.version})


def add_comment(session: Session, access: ProjectAccess, task: AnnotationTask, text: str, lon: float | None,
                lat: float | None, event: bool = True) -> ReviewComment:
    """A comment on a task (pinned when lon and lat are given), with a ``task.comment`` event.

    Raises:
        Invalid: Only one of lon and lat is given.

    """
    if (lon is None) != (lat is None):
        raise Invalid("a pinned comment needs both lon and lat", "send both, or neither for a comment on the whole task")
    comment = ReviewComment(task_id=task.id, author_id=access.user_id, text=text, lon=lon, lat=lat)
    session.add(comment)
    session.flush()
    if event:
        _event(session, access, "task.comment", "annotation_task", task.id,
               {"comment": comment.id, "text": text, "lon": lon, "lat": lat})
    return comment


def get_comment(session: Session, project_id: int, comment_id: int) -> tuple[ReviewComment, AnnotationTask]:
    """The comment ``comment_id`` of a project's task, and its task.

    Raises:
        NotFound: No such comment in the project.

    """
    comment = session.get(ReviewComment, comment_id)
    if comment is None:
        raise NotFound(f"no comment {comment_id} in this project", "see a task's comments: GET .../tasks/TASK")
    task, _ = get_task(session, project_id, comment.task_id)
    return comment, task


def resolve_comment(session: Session, access: ProjectAccess, comment: ReviewComment, task: AnnotationTask,
                    resolved: bool) -> ReviewComment:
    """Mark a comment resolved (or open again), with a ``task.comment.resolve`` event.

    Raises:
        Denied: The caller is neither the task's annotator (its assignee) nor a reviewer.

    """
    if task.assignee_id != access.user_id and not access.allows("review"):
        raise Denied(f"task {task.id} is not yours to resolve its comments",
                     "its annotator or a reviewer resolves them")
    comment.resolved = resolved
    _event(session, access, "task.comment.resolve", "annotation_task", task.id,
           {"comment": comment.id, "resolved": resolved})
    return comment


def review(session: Session, access: ProjectAccess, task: AnnotationTask, decision: str, comment: str | None,
           pins: list[tuple[float, float, str]]) -> None:
    """Accept or reject a submitted task; a rejection's comment and pins are stored as its comments.

    Its annotator (the assignee who submitted it) may not review it, unless they are a site admin.

    Raises:
        Conflict: The task is not submitted.
        Denied: The caller annotated it.
        Invalid: A rejection without a comment or pin.

    """
    if _locked(session, task).state != "submitted":
        raise Conflict(f"task {task.id} is {task.state}, not submitted", "review tasks their annotator submitted")
    if task.assignee_id == access.user_id and not access.caller.user.is_admin:
        raise Denied(f"task {task.id} was annotated by you: a reviewer does not review their own labels",
                     "ask another reviewer")
    if decision == "reject" and not comment and not pins:
        raise Invalid("a rejection needs a reason", "send a comment or pins on the map saying what to fix")
    made = [add_comment(session, access, task, comment, None, None, event=False)] if comment else []
    made += [add_comment(session, access, task, text, lon, lat, event=False) for lon, lat, text in pins]
    task.reviewer_id = access.user_id
    _moved(task, "accepted" if decision == "accept" else "rejected")
    _event(session, access, f"task.{decision}", "annotation_task", task.id,
           {"version": task.version, "comment": comment, "pins": len(pins), "comments": [c.id for c in made]})


def counts(session: Session, set_id: int) -> dict[str, int]:
    """Primary tasks of a set by state (copies are not counted: they label the same cells again)."""
    rows = session.execute(select(AnnotationTask.state, func.count()).where(
        AnnotationTask.set_id == set_id, AnnotationTask.copy_kind == "").group_by(AnnotationTask.state))
    return {state: n for state, n in rows}


MAX_TASKS = 10_000
"""Most tasks a set may have (cells of its area)."""


def create_set(session: Session, access: ProjectAccess, spec: SetSpec) -> AnnotationSet:
    """Store a set and its tasks (one per cell of the first item's block grid overlapping the area).

    Args:
        session: The request's session.
        access: The project and caller.
        spec: The set, its defaults filled in and its items ordered by date.

    Returns:
        The set (flushed), with its ``annotation.set.create`` event.

    Raises:
        Conflict: The project has a set of that name.
        Invalid: The area overlaps no cell, or makes more than :data:`MAX_TASKS` tasks.

    """
    if session.scalar(select(AnnotationSet.id).where(AnnotationSet.project_id == access.project.id,
                                                     AnnotationSet.name == spec.name)) is not None:
        raise Conflict(f"the project has an annotation set named {spec.name!r}", "choose another name")
    grid = item_grid(spec.items[0])
    rows, cols = block_counts(grid, spec.block_size)
    found = cells(grid, spec.block_size, spec.aoi) if rows * cols <= 10 * MAX_TASKS else []
    if len(found) > MAX_TASKS or rows * cols > 10 * MAX_TASKS:
        made = f"{len(found)} tasks" if found else f"{rows * cols} cells of the scene"
        raise Invalid(f"blocks of {spec.block_size} px make {made}, more than {MAX_TASKS}",
                      "use a larger block_size or a smaller aoi")
    if not found:
        raise Invalid(f"the aoi overlaps no cell of item {spec.items[0]['id']!r}",
                      "draw the aoi over the item's footprint (lon/lat, EPSG:4326)")
    aset = AnnotationSet(project_id=access.project.id, name=spec.name, kind=spec.kind, classes=spec.classes,
                         items=[i["id"] for i in spec.items], aoi=geojson(spec.aoi), grid=grid_json(grid),
                         block_size=spec.block_size, completeness={"background": spec.background},
                         created_by=access.user_id)
    session.add(aset)
    session.flush()
    session.add_all([AnnotationTask(set_id=aset.id, row=c.row, col=c.col, geometry=geojson(c.lonlat),
                                    complete_area=geojson(part)) for c, part in found])
    _event(session, access, "annotation.set.create", "annotation_set", aset.id,
           {"name": spec.name, "kind": spec.kind, "items": aset.items, "block_size": spec.block_size,
            "tasks": len(found)})
    return aset
