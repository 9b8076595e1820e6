"""Copies of tasks that label a cell again, to measure annotators: gold copies and double-labelled copies.

A **gold** copy labels an accepted task (marked ``gold``: its labels are a known answer) again,
blind: it is assigned to an annotator, who sees it as any task of theirs. A **double** copy labels
a primary task's cell a second time, independently: it waits unassigned in the queue, which never
hands it to someone who labelled that cell. Copies go through submit and review as any task, but
only primary tasks' labels are exported, snapshotted and built. Each marking is one event on the
reference task (``task.gold``, ``task.double``), so the copies' own history reads like any task's.
"""

from __future__ import annotations

import math
import random

from sqlalchemy import select
from sqlalchemy.orm import Session

from eoengine.errors import Conflict, Invalid
from eoengine.platform.annotation.store import _annotator, _event, _locked, _moved, usernames
from eoengine.platform.db.models import AnnotationSet, AnnotationTask, Membership, User
from eoengine.platform.deps import ProjectAccess


def _copy(task: AnnotationTask, kind: str, assignee: int | None) -> AnnotationTask:
    return AnnotationTask(set_id=task.set_id, row=task.row, col=task.col, geometry=task.geometry,
                          complete_area=task.complete_area, state="open", copy_kind=kind, reference_task_id=task.id,
                          assignee_id=assignee)


def _annotators(session: Session, access: ProjectAccess) -> list[User]:
    """The project's members whose role is annotator, by name."""
    return list(session.scalars(select(User).join(Membership, Membership.user_id == User.id).where(
        Membership.project_id == access.project.id, Membership.role == "annotator").order_by(User.username)))


def mark_gold(session: Session, access: ProjectAccess, task: AnnotationTask,
              names: list[str] | None) -> list[AnnotationTask]:
    """Mark an accepted primary task gold and give a copy of it to each annotator named (who has none yet).

    Args:
        session: The request's session.
        access: The reviewer.
        task: The task.
        names: User names of members who may annotate; None: every member whose role is annotator except the
            task's own annotator.

    Returns:
        The copies made (flushed), in the order of the names.

    Raises:
        Conflict: The task is a copy, or not accepted.
        Invalid: A name is no member who may annotate, or is the task's own annotator.

    """
    if task.copy_kind:
        raise Conflict(f"task {task.id} is a {task.copy_kind} copy of task {task.reference_task_id}",
                       f"mark the primary task {task.reference_task_id} gold")
    if _locked(session, task).state != "accepted":
        raise Conflict(f"task {task.id} is {task.state}: only an accepted task's labels are a known answer",
                       "review and accept it first, then mark it gold")
    if names is None:
        users = [u for u in _annotators(session, access) if u.id != task.assignee_id]
    else:
        users = [_annotator(session, access, n) for n in dict.fromkeys(names)]
        own = [u.username for u in users if u.id == task.assignee_id]
        if own:
            raise Invalid(f"{own[0]!r} annotated task {task.id}: comparing them with their own labels measures nothing",
                          "name other annotators (or none: every annotator but its own)")
    holding = set(session.scalars(select(AnnotationTask.assignee_id).where(AnnotationTask.reference_task_id == task.id)))
    made = [_copy(task, "gold", u.id) for u in users if u.id not in holding]
    task.gold = True
    _moved(task)
    session.add_all(made)
    session.flush()
    names_of = usernames(session, [c.assignee_id for c in made])
    for c in made:
        _event(session, access, "task.assign", "annotation_task", c.id,
               {"user": names_of[c.assignee_id or 0], "version": c.version})
    _event(session, access, "task.gold", "annotation_task", task.id,
           {"version": task.version, "copies": [c.id for c in made], "annotators": [names_of[c.assignee_id or 0]
                                                                                    for c in made]})
    return made


def _chosen(session: Session, aset: AnnotationSet, share: float | None, seed: int, ids: list[int] | None) -> list[AnnotationTask]:
    """The primary tasks asked for: those listed, or ``ceil(share × n)`` of the n drawn by ``seed`` (by id order)."""
    primary = {t.id: t for t in session.scalars(select(AnnotationTask).where(
        AnnotationTask.set_id == aset.id, AnnotationTask.copy_kind == "").order_by(AnnotationTask.id))}
    if ids is not None:
        unknown = [i for i in dict.fromkeys(ids) if i not in primary]
        if unknown:
            raise Invalid(f"task(s) {', '.join(map(str, unknown[:20]))} are no primary tasks of set {aset.id}",
                          "list ids of the set's tasks (GET .../sets/SET/tasks), not of copies")
        return [primary[i] for i in dict.fromkeys(ids)]
    assert share is not None
    k = min(len(primary), math.ceil(share * len(primary) - 1e-9))
    return [primary[i] for i in sorted(random.Random(seed).sample(sorted(primary), k))]


def double(session: Session, access: ProjectAccess, aset: AnnotationSet, share: float | None, seed: int,
           ids: list[int] | None) -> list[AnnotationTask]:
    """Make a double copy (unassigned, open) of each chosen primary task that has none yet.

    Args:
        session: The request's session.
        access: The reviewer.
        aset: The set.
        share: A share in (0, 1] of the set's primary tasks, drawn at random by ``seed`` (or None).
        seed: The draw's seed: the same share and seed choose the same tasks.
        ids: The primary tasks to copy (or None).

    Returns:
        The copies made (flushed), in task id order.

    Raises:
        Invalid: Both or neither of share and ids, a share out of (0, 1], or ids of no primary task of the set.

    """
    if (share is None) == (ids is None):
        raise Invalid("send exactly one of share and tasks", 'e.g. {"share": 0.1, "seed": 0} or {"tasks": [12, 15]}')
    if share is not None and not 0 < share <= 1:
        raise Invalid(f"share {share} is not in (0, 1]", "send the share of the set's tasks to label twice, e.g. 0.1")
    chosen = _chosen(session, aset, share, seed, ids)
    doubled = set(session.scalars(select(AnnotationTask.reference_task_id).where(
        AnnotationTask.set_id == aset.id, AnnotationTask.copy_kind == "double")))
    made = [_copy(t, "double", None) for t in chosen if t.id not in doubled]
    session.add_all(made)
    session.flush()
    for copy in made:
        _event(session, access, "task.double", "annotation_task", copy.reference_task_id or 0, {"copy": copy.id})
    return made
