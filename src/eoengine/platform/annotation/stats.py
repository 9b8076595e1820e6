"""A set's quality statistics from the database: each annotator's tasks, reviews, time and agreement.

What is read: the set's tasks, their live features (no deleted ones, no pending model
suggestions), and the events of its tasks and features. Who did a task is read from the events:
a review decision counts for the annotator whose ``task.submit`` came last before it; a task's
time counts for each person who submitted it or holds it. The measures are
:mod:`eoengine.platform.annotation.quality`'s.

A copy is compared with its reference once both were handed in (neither is open or in
progress): a gold copy with its gold task, a double copy with the cell's primary task (the
agreement counts for both annotators; the confusion only for the copy's, whose reference is the
primary). Change sets have no single class per pixel: their copies are not compared.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rasterio.windows import Window
from shapely.geometry import shape
from sqlalchemy import select
from sqlalchemy.orm import Session

from eoengine.config.schema import class_key
from eoengine.platform.annotation import quality
from eoengine.platform.annotation.grid import cell, from_lonlat, grid_of
from eoengine.platform.annotation.schemas import (
    AgreementOut,
    AnnotatorDetailOut,
    AnnotatorStatsOut,
    ComparisonOut,
    SetStatsOut,
    TaskCountsOut,
)
from eoengine.platform.annotation.store import WRITABLE, counts, usernames
from eoengine.platform.db.models import AnnotationSet, AnnotationTask, Event, LabelFeature

TIMED = ("task.assign", "task.submit", "feature.create", "feature.update", "feature.delete", "feature.accept")
"""The events whose gaps make a task's time (those of its annotator only)."""
UNFINISHED = ("open", "in_progress")


@dataclass(frozen=True)
class Compared:
    """One task compared with its reference, for one person (the task's annotator)."""

    user: int
    task: AnnotationTask
    reference: AnnotationTask
    kind: str
    result: quality.Comparison
    counts_confusion: bool


@dataclass
class Person:
    """What the events say one person did in the set."""

    submitted: set[int] = field(default_factory=set)
    accepted: int = 0
    rejected: int = 0
    seconds: dict[int, float] = field(default_factory=dict)


def _task_of(event: Event, feature_tasks: dict[int, int]) -> int | None:
    if event.object_type == "annotation_task":
        return int(event.object_id)
    return feature_tasks.get(int(event.object_id))


def people(session: Session, aset: AnnotationSet, tasks: list[AnnotationTask]) -> dict[int, Person]:
    """User id → their submissions, review decisions and time per task, from the set's events."""
    ids = {t.id for t in tasks}
    feature_tasks = {fid: task for fid, task in session.execute(
        select(LabelFeature.id, LabelFeature.task_id).where(LabelFeature.set_id == aset.id))}
    events = session.scalars(select(Event).where(
        Event.project_id == aset.project_id, Event.object_type.in_(("annotation_task", "label_feature")),
        Event.action.in_((*TIMED, "task.accept", "task.reject"))).order_by(Event.at, Event.id))
    out: dict[int, Person] = defaultdict(Person)
    last_submit: dict[int, int] = {}
    times: dict[tuple[int, int], list[Any]] = defaultdict(list)
    for e in events:
        task = _task_of(e, feature_tasks)
        if task not in ids or task is None:
            continue
        if e.action == "task.submit" and e.actor_id is not None:
            last_submit[task] = e.actor_id
            out[e.actor_id].submitted.add(task)
        if e.action in ("task.accept", "task.reject") and task in last_submit:
            who = out[last_submit[task]]
            who.accepted, who.rejected = (who.accepted + 1, who.rejected) if e.action == "task.accept" else (
                who.accepted, who.rejected + 1)
        if e.action in TIMED and e.actor_id is not None:
            times[(task, e.actor_id)].append(e.at)
    holders = {(t.id, t.assignee_id) for t in tasks if t.assignee_id is not None}
    for (task, user), at in times.items():
        if (task, user) in holders or (user in out and task in out[user].submitted):  # not a reviewer's
            out[user].seconds[task] = quality.time_spent(at)
    for task, user in holders:
        out[user].seconds.setdefault(task, 0.0)
    return dict(out)


def _shapes(features: Iterable[LabelFeature], crs: str) -> list[quality.Shape]:
    return [(from_lonlat(shape(f.geometry), crs), f.label) for f in features]


def comparisons(session: Session, aset: AnnotationSet, tasks: list[AnnotationTask], all_touched: bool) -> list[Compared]:
    """Every copy of the set compared with its reference (both handed in), once per person it counts for."""
    if aset.kind != "classes":
        return []
    by_id = {t.id: t for t in tasks}
    pairs = [(t, by_id[t.reference_task_id]) for t in tasks if t.copy_kind and t.reference_task_id in by_id]
    pairs = [(c, r) for c, r in pairs if c.state not in UNFINISHED and r.state not in UNFINISHED]
    wanted = {t.id for pair in pairs for t in pair}
    features: dict[int, list[LabelFeature]] = defaultdict(list)
    for f in session.scalars(select(LabelFeature).where(
            LabelFeature.task_id.in_(wanted), LabelFeature.deleted.is_(False), LabelFeature.suggestion.is_(False))
            .order_by(LabelFeature.id)) if wanted else []:
        features[f.task_id].append(f)
    grid = grid_of(aset.grid)
    classes = [class_key(c["value"]) for c in aset.classes]
    background = class_key(aset.completeness.get("background", aset.classes[0]["value"]))
    out = []
    for copy, ref in pairs:
        area = from_lonlat(shape(copy.complete_area).intersection(shape(ref.complete_area)), grid.crs_wkt)
        r0, c0, h, w = cell(grid, aset.block_size, copy.row, copy.col).window
        result = quality.compare(_shapes(features[ref.id], grid.crs_wkt), _shapes(features[copy.id], grid.crs_wkt),
                                 area, grid, Window(c0, r0, w, h), classes, background, all_touched)
        if copy.assignee_id is not None:
            out.append(Compared(copy.assignee_id, copy, ref, copy.copy_kind, result, True))
        if copy.copy_kind == "double" and ref.assignee_id is not None:
            out.append(Compared(ref.assignee_id, ref, copy, "double", result, False))
    return out


def _agreement(found: list[Compared], kind: str) -> AgreementOut | None:
    made = quality.agreement([c.result for c in found if c.kind == kind])
    return None if made is None else AgreementOut(n=made.n, iou=made.iou, iou_per_class=made.iou_per_class,
                                                  boundary_m=made.boundary_m, boundary_p95_m=made.boundary_p95_m,
                                                  boundary_px=made.boundary_px)


def annotator_stats(name: str, person: Person, found: list[Compared], n_classes: int) -> AnnotatorStatsOut:
    """One person's stats from what they did and their comparisons."""
    submitted = [person.seconds.get(t, 0.0) for t in person.submitted]
    return AnnotatorStatsOut(
        user=name, tasks=TaskCountsOut(submitted=len(person.submitted), accepted=person.accepted, rejected=person.rejected),
        acceptance_rate=quality.acceptance_rate(person.accepted, person.rejected),
        time_spent_s=float(sum(person.seconds.values())), median_task_s=quality.median_or_none(submitted),
        gold=_agreement(found, "gold"), double=_agreement(found, "double"),
        confusion=quality.total_confusion([c.result for c in found if c.counts_confusion], n_classes))


def _set_tasks(session: Session, aset: AnnotationSet) -> list[AnnotationTask]:
    return list(session.scalars(select(AnnotationTask).where(AnnotationTask.set_id == aset.id).order_by(AnnotationTask.id)))


def set_stats(session: Session, aset: AnnotationSet, all_touched: bool) -> SetStatsOut:
    """The set's stats: primary tasks by state, copies by kind, and every annotator's stats (by name).

    Args:
        session: A database session.
        aset: The set.
        all_touched: The project's ``labels.all_touched`` (for the confusion's rasterising).

    Returns:
        The stats.

    """
    tasks = _set_tasks(session, aset)
    done, found = people(session, aset, tasks), comparisons(session, aset, tasks, all_touched)
    names = usernames(session, done)
    stats = [annotator_stats(names[u], p, [c for c in found if c.user == u], len(aset.classes))
             for u, p in done.items() if u in names]
    copies = {k: sum(1 for t in tasks if t.copy_kind == k) for k in ("gold", "double")}
    return SetStatsOut(set_id=aset.id, counts=counts(session, aset.id), copies=copies,
                       annotators=sorted(stats, key=lambda s: s.user), classes=[c["value"] for c in aset.classes])


def user_stats(session: Session, aset: AnnotationSet, user_id: int, name: str, all_touched: bool,
               themself: bool) -> AnnotatorDetailOut:
    """One person's stats with each comparison; for ``themself`` only those of tasks no longer writable.

    Args:
        session: A database session.
        aset: The set.
        user_id: The person.
        name: Their user name.
        all_touched: The project's ``labels.all_touched``.
        themself: Whether they ask about themselves (then a task still writable keeps its comparison hidden).

    Returns:
        The stats and comparisons.

    """
    tasks = _set_tasks(session, aset)
    person = people(session, aset, tasks).get(user_id, Person())
    found = [c for c in comparisons(session, aset, tasks, all_touched) if c.user == user_id]
    if themself:
        found = [c for c in found if c.task.state not in WRITABLE]
    base = annotator_stats(name, person, found, len(aset.classes))
    rows = []
    for c in found:
        one = quality.agreement([c.result])
        assert one is not None  # one comparison
        rows.append(ComparisonOut(task=c.task.id, reference=c.reference.id, kind=c.kind, iou=one.iou,
                                  boundary_m=one.boundary_m, state=c.task.state))
    return AnnotatorDetailOut(**base.model_dump(), comparisons=rows)
