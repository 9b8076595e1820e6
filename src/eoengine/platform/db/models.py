"""The platform's tables (SQLAlchemy 2 ORM). Migrations in ``migrations/versions`` create the same schema.

Times are stored in UTC and read back timezone-aware on every database. JSON columns hold job
specs, progress, results and event data. The ``events`` table is append-only: nothing updates
or deletes its rows.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> dt.datetime:
    """The current time in UTC, timezone-aware."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and read back timezone-aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    """The platform's declarative base."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {dt.datetime: UTCDateTime, dict[str, Any]: JSON}


class User(Base):
    """A person (or a service account) who signs in."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """A named API token: only its SHA-256 is kept; it is shown once, when made."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class BrowserSession(Base):
    """A signed-in browser: the cookie's and the CSRF token's SHA-256 only."""

    __tablename__ = "sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    session_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()


class LoginFailure(Base):
    """One failed sign-in, by user name and by client address (for rate limiting)."""

    __tablename__ = "login_failures"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), index=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Project(Base):
    """A project: a folder with an eoengine config and everything made from it."""

    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    config_hash: Mapped[str] = mapped_column(String(64), default="")


class Membership(Base):
    """A person's role on a project: admin, annotator, reviewer or viewer."""

    __tablename__ = "memberships"
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))


class Job(Base):
    """A job: a typed job spec, queued, run by a worker, with progress, log, outputs and who started it."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_state_created", "state", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    spec: Mapped[dict[str, Any]] = mapped_column()
    state: Mapped[str] = mapped_column(String(16), default="queued")
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    progress: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    result: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    error: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    resume: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    finished_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    worker: Mapped[str | None] = mapped_column(String(200), default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    pid: Mapped[int | None] = mapped_column(Integer, default=None)


class Artifact(Base):
    """The index of a project's artefacts (datasets, runs, models, maps, scenes, uploads); the files stay the truth."""

    __tablename__ = "artifacts"
    __table_args__ = (Index("ix_artifacts_project_kind", "project_id", "kind"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(100), default="")
    path: Mapped[str] = mapped_column(Text, default="")
    ref: Mapped[str] = mapped_column(String(300), default="")
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), default=None)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Event(Base):
    """One change of state: who, when, what, on which object, and a hash of its data. Append-only."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_object", "object_type", "object_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(Integer, default=None)  # no foreign keys: rows outlive what they name
    project_id: Mapped[int | None] = mapped_column(Integer, default=None, index=True)
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    payload_hash: Mapped[str] = mapped_column(String(64))


class AnnotationSet(Base):
    """An annotation project of a project: its classes, imagery items (dates), area and the block grid of its tasks.

    ``grid`` is the reference item's grid (``crs`` WKT or EPSG code, ``transform`` as six
    numbers, ``width``, ``height``) on which tasks are ``block_size``-pixel cells, the blocks
    of ``dataset.split: blocks``. ``completeness`` says what unlabelled pixels inside a task's
    completeness area are: ``{"background": CLASS}`` (a class value).
    """

    __tablename__ = "annotation_sets"
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16), default="classes")  # classes | change
    classes: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    items: Mapped[list[str]] = mapped_column(JSON)
    aoi: Mapped[dict[str, Any]] = mapped_column()
    grid: Mapped[dict[str, Any]] = mapped_column()
    block_size: Mapped[int] = mapped_column(Integer)
    completeness: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AnnotationTask(Base):
    """A task: one block-grid cell of a set (row, col), its completeness area, state, assignee and reviewer.

    States: ``open`` → ``in_progress`` → ``submitted`` → ``accepted`` | ``rejected`` (→
    ``in_progress`` again). ``version`` grows with every change of state or assignment.

    A *copy* labels the same cell again to measure its annotator: ``copy_kind`` is ``gold``
    (``reference_task_id`` is an accepted task marked ``gold``, the known answer) or ``double``
    (the reference is the cell's primary task, labelled independently). Primary tasks have
    ``copy_kind == ""``; only their labels are exported, snapshotted and built.
    """

    __tablename__ = "annotation_tasks"
    __table_args__ = (Index("ix_annotation_tasks_set_state", "set_id", "state"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    set_id: Mapped[int] = mapped_column(ForeignKey("annotation_sets.id", ondelete="CASCADE"))
    row: Mapped[int] = mapped_column(Integer)
    col: Mapped[int] = mapped_column(Integer)
    geometry: Mapped[dict[str, Any]] = mapped_column()
    complete_area: Mapped[dict[str, Any]] = mapped_column()
    state: Mapped[str] = mapped_column(String(16), default="open")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    gold: Mapped[bool] = mapped_column(Boolean, default=False)
    priority: Mapped[float | None] = mapped_column(default=None)  # e.g. a model's mean entropy: highest first
    copy_kind: Mapped[str] = mapped_column(String(8), default="")  # "" (primary) | gold | double
    reference_task_id: Mapped[int | None] = mapped_column(
        ForeignKey("annotation_tasks.id", ondelete="CASCADE"), default=None, index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class LabelFeature(Base):
    """One drawn (imported, or suggested) label: EPSG:4326 GeoJSON geometry, class, imagery item and its CRS, version.

    ``label`` is the class value (for change sets, ``properties`` holds ``from`` and ``to``
    and ``items`` both dates' items). A deleted feature keeps its row (``deleted``), so a stale
    edit of it still gets its 409. ``source``: ``drawn``, ``import`` or ``model``.
    """

    __tablename__ = "label_features"
    __table_args__ = (Index("ix_label_features_task", "task_id", "deleted"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    set_id: Mapped[int] = mapped_column(ForeignKey("annotation_sets.id", ondelete="CASCADE"), index=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("annotation_tasks.id", ondelete="CASCADE"))
    geometry: Mapped[dict[str, Any]] = mapped_column()
    label: Mapped[str] = mapped_column(String(100))
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    item: Mapped[str] = mapped_column(String(300), default="")
    items: Mapped[list[str]] = mapped_column(JSON, default=list)
    native_crs: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(16), default="drawn")
    suggestion: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ReviewComment(Base):
    """A reviewer's (or annotator's) comment on a task, pinned at a point (lon, lat) or on the task as a whole."""

    __tablename__ = "review_comments"
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("annotation_tasks.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    text: Mapped[str] = mapped_column(Text)
    lon: Mapped[float | None] = mapped_column(default=None)
    lat: Mapped[float | None] = mapped_column(default=None)
    resolved: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Subscription(Base):
    """An area watched with a model on a schedule (issue 15): its spec, state, run state and schedule.

    States: ``pending`` (before its start) → ``active`` → ``suspended`` (paused; resumed to
    ``active``) | ``completed`` (past its end) | ``cancelled`` | ``failed`` (too many failed runs
    in a row). ``run_state`` is the core's ``SubscriptionState`` between runs. ``next_due`` is when
    the scheduler fires next; it is claimed by a conditional update, so a due time fires once.
    """

    __tablename__ = "subscriptions"
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_subscriptions_project_name"),
                      Index("ix_subscriptions_state_due", "state", "next_due"))
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    spec: Mapped[dict[str, Any]] = mapped_column()
    state: Mapped[str] = mapped_column(String(16), default="pending")
    run_state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    next_due: Mapped[dt.datetime | None] = mapped_column(default=None)
    last_due: Mapped[dt.datetime | None] = mapped_column(default=None)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SubscriptionRun(Base):
    """One run of a subscription: its run key (unique per subscription), due time, job, status and record (JSON).

    The record is the core's ``RunRecord`` (scenes, model version, map, item, statistics, change,
    drift, webhook deliveries, error), so the deliveries' history is read from here.
    """

    __tablename__ = "subscription_runs"
    __table_args__ = (UniqueConstraint("subscription_id", "key", name="uq_subscription_runs_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(200))
    due: Mapped[dt.datetime | None] = mapped_column(default=None)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), default=None)
    status: Mapped[str] = mapped_column(String(16))
    record: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
