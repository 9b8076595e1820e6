"""The annotation API's request and response bodies (label features travel as plain GeoJSON dicts)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from eoengine.errors import Conflict, Invalid
from eoengine.platform.schemas import EventOut

SET_KINDS = ("classes", "change")
TASK_STATES = ("open", "in_progress", "submitted", "accepted", "rejected")


class Stale(Conflict):
    """An edit of a label feature from a version that is no longer the stored one (a 409).

    Attributes:
        current: The stored feature (GeoJSON; ``properties.deleted`` when it was deleted), to merge into.

    """

    def __init__(self, problem: str, fix: str, current: dict[str, Any]) -> None:
        super().__init__(problem, fix)
        self.current = current


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClassIn(_In):
    """A class of a set: its value (as the label source and built datasets use it), name and colour."""

    value: int | str
    name: str = Field(min_length=1, max_length=100)
    color: str = Field("#808080", pattern=r"^#[0-9a-fA-F]{6}$")


class SetIn(_In):
    """A new annotation set: its items (dates), kind, classes, area, block size and background class."""

    name: str = Field(min_length=1, max_length=100)
    items: list[str] = Field(min_length=1, max_length=50, description="STAC item ids of the project catalog")
    kind: Literal["classes", "change"] = "classes"
    classes: list[ClassIn] | None = Field(None, min_length=1, max_length=255,
                                          description="default: the project config's classes")
    aoi: dict[str, Any] | None = Field(None, description="a GeoJSON Polygon/MultiPolygon in EPSG:4326; "
                                                         "default: the first item's footprint")
    block_size: int | None = Field(None, gt=0, le=100_000, description="pixels; default: the config's "
                                   "dataset.split.block_size, else 4 x dataset.patch_size")
    background: int | str | None = Field(None, description="class value of unlabelled pixels inside a task's "
                                         "completeness area; default: the config's labels.background, else the first class")


class ItemRef(BaseModel):
    """An imagery item of a set and its date."""

    id: str
    datetime: str | None = None


class SetOut(BaseModel):
    """An annotation set, with its task counts by state."""

    id: int
    name: str
    kind: str
    classes: list[dict[str, Any]]
    items: list[ItemRef]
    block_size: int
    grid: dict[str, Any]
    completeness: dict[str, Any]
    aoi: dict[str, Any]
    counts: dict[str, int]
    created_at: dt.datetime


class AssignIn(_In):
    """Who gets a task (a member who may annotate), or null to unassign it."""

    user: str | None = Field(None, max_length=64)


class CommentOut(BaseModel):
    """A comment on a task, pinned at (lon, lat) or on the whole task."""

    id: int
    author: str | None
    text: str
    lon: float | None
    lat: float | None
    resolved: bool
    created_at: dt.datetime


class TaskOut(BaseModel):
    """A task: its cell, completeness area, state, people, version, the set's items and the comments."""

    id: int
    set_id: int
    row: int
    col: int
    state: str
    assignee: str | None
    reviewer: str | None
    version: int
    priority: float | None
    geometry: dict[str, Any]
    complete_area: dict[str, Any]
    items: list[ItemRef]
    comments: list[CommentOut]
    copy_kind: str | None = Field(None, description="reviewers: '' (a primary task), 'gold' or 'double'; "
                                  "null for everyone else")
    reference_task_id: int | None = Field(None, description="reviewers: the task a copy is compared with")
    gold: bool | None = Field(None, description="reviewers: whether the task's accepted labels are a known answer")


class ResolveIn(_In):
    """Whether a comment is resolved (false: open again)."""

    resolved: bool = True


class PinIn(_In):
    """A comment pinned on the map."""

    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    text: str = Field(min_length=1, max_length=5000)


class CommentIn(_In):
    """A comment on a task, pinned when lon and lat are given."""

    text: str = Field(min_length=1, max_length=5000)
    lon: float | None = Field(None, ge=-180, le=180)
    lat: float | None = Field(None, ge=-90, le=90)


class ReviewIn(_In):
    """A review of a submitted task: accept, or reject with a comment or pins (the reasons)."""

    decision: Literal["accept", "reject"]
    comment: str | None = Field(None, min_length=1, max_length=5000)
    pins: list[PinIn] = Field(default_factory=list, max_length=200)


class FeatureIn(BaseModel):
    """A GeoJSON Feature in EPSG:4326.

    ``properties`` has ``label`` (``from``/``to`` for a change set), ``item`` (default: the
    set's first) and, to update it, ``version`` (the one last seen).
    """

    model_config = ConfigDict(extra="allow")
    type: Literal["Feature"] = "Feature"
    geometry: Any = None
    properties: dict[str, Any] = Field(default_factory=dict)


class DeletedOut(BaseModel):
    """A deleted feature: its id and its version when it was deleted."""

    id: int
    version: int
    deleted: bool = True


class HistoryOut(BaseModel):
    """A task's events (its own and its features'), oldest first."""

    task_id: int
    events: list[EventOut]


class GoldIn(_In):
    """Who labels a gold task again, blind: annotators' user names, or null for every annotator but its own."""

    annotators: list[str] | None = Field(None, min_length=1, max_length=500)


class GoldOut(BaseModel):
    """A task marked gold and the copies made of it (one per annotator who had none)."""

    task: TaskOut
    copies: list[TaskOut]


class DoubleIn(_In):
    """Which primary tasks to label twice: a random ``share`` of them (by ``seed``), or the ``tasks`` listed."""

    share: float | None = Field(None, description="in (0, 1]: that share of the set's primary tasks, rounded up")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    tasks: list[int] | None = Field(None, min_length=1, max_length=10_000)


class AgreementOut(BaseModel):
    """How an annotator's copies agree with their references: IoU (mean over classes, per class), boundary distances."""

    n: int
    iou: float | None
    iou_per_class: dict[str, float]
    boundary_m: float | None
    boundary_p95_m: float | None
    boundary_px: float | None


class TaskCountsOut(BaseModel):
    """An annotator's tasks handed in (distinct tasks) and the review decisions on them."""

    submitted: int
    accepted: int
    rejected: int


class AnnotatorStatsOut(BaseModel):
    """One annotator's work in a set: tasks, acceptance rate, time, agreement on gold and double copies, confusion."""

    user: str
    tasks: TaskCountsOut
    acceptance_rate: float | None
    time_spent_s: float
    median_task_s: float | None
    gold: AgreementOut | None
    double: AgreementOut | None
    confusion: list[list[int]] = Field(description="pixels: rows the reference's class, columns the annotator's "
                                                   "(the order of the set stats' classes)")


class ComparisonOut(BaseModel):
    """One of the annotator's tasks compared with its reference."""

    task: int
    reference: int
    kind: str
    iou: float | None
    boundary_m: float | None
    state: str


class AnnotatorDetailOut(AnnotatorStatsOut):
    """An annotator's stats with each comparison."""

    comparisons: list[ComparisonOut]


class SetStatsOut(BaseModel):
    """A set's quality: primary tasks by state, copies by kind, per-annotator stats, the classes (confusion order)."""

    set_id: int
    counts: dict[str, int]
    copies: dict[str, int]
    annotators: list[AnnotatorStatsOut]
    classes: list[int | str]


class ImportRefused(Invalid):
    """Some features of an import are bad: each with its index in the file and the reason; nothing was stored.

    Attributes:
        problems: ``[{"index": position in the file, "reason": ...}]``, every bad feature.

    """

    def __init__(self, problems: list[dict[str, Any]], problem: str | None = None, fix: str | None = None) -> None:
        super().__init__(problem or f"{len(problems)} feature(s) of the import cannot be stored, so none was",
                         fix or "fix the features listed in 'problems' (index = position in the file) and import again")
        self.problems = problems


class ImportOut(BaseModel):
    """What an import stored: how many features, in how many tasks."""

    imported: int
    tasks: int


class SnapshotOut(BaseModel):
    """A label snapshot: the hash of its content, its folder in the project, what it holds, when it was taken."""

    hash: str
    path: str
    features: int
    tasks: int
    created: str
