"""The API's request and response bodies (they document the OpenAPI and type the Python client)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from eoengine.platform.roles import Role
from eoengine.subscriptions.state import Delivery, RunRecord


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginIn(_In):
    """Sign-in with a user name and password."""

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class UserOut(BaseModel):
    """A user as the API shows them (never the password hash)."""

    id: int
    username: str
    is_admin: bool
    disabled: bool = False


class LoginOut(BaseModel):
    """A signed-in session: the user and the CSRF token to send with changes."""

    user: UserOut
    csrf_token: str


class UserIn(_In):
    """A new user (site admins only)."""

    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=8, max_length=1024)
    is_admin: bool = False


class UserPatch(_In):
    """A change to a user: a new password, admin rights, or disabling the account."""

    password: str | None = Field(None, min_length=8, max_length=1024)
    is_admin: bool | None = None
    disabled: bool | None = None


class TokenIn(_In):
    """A new API token: its name and how many days it lasts (none: until revoked)."""

    name: str = Field(min_length=1, max_length=100)
    expires_days: float | None = Field(90, gt=0, le=3650)


class TokenOut(BaseModel):
    """An API token as listed: its name, prefix and dates (the secret is shown only when made)."""

    id: int
    name: str
    prefix: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None


class NewTokenOut(TokenOut):
    """A token just made, with its secret (shown this once)."""

    token: str


class ProjectIn(_In):
    """A new project from a config's YAML text, a bundled sample (``template``), or a CLI project ``folder`` (imported)."""

    name: str = Field(min_length=1, max_length=200)
    config: str | None = Field(None, max_length=1_000_000, description="The eoengine.yaml text")
    template: str | None = Field(None, description="A bundled sample, e.g. nc-landsat")
    folder: str | None = Field(None, max_length=4096, description="Site admins: a CLI project folder (absolute, under "
                               "an import root of the server) to register in place, its artefacts indexed")


class ConfigIn(_In):
    """A project's new config text."""

    config: str = Field(max_length=1_000_000)


class ProjectOut(BaseModel):
    """A project as listed: its slug, name and the caller's role."""

    id: int
    slug: str
    name: str
    role: str | None
    created_at: dt.datetime


class ArtifactOut(BaseModel):
    """An indexed artefact: a dataset version, run, model version, map, scene or upload."""

    id: int
    kind: str
    name: str
    version: str
    path: str
    ref: str
    meta: dict[str, Any]
    job_id: int | None
    created_at: dt.datetime


class JobIn(_In):
    """A job to queue: a typed job spec (its ``kind``: build, train, sweep, evaluate, predict, predict-area, ...)."""

    spec: dict[str, Any] = Field(description="The job spec, e.g. {\"kind\": \"build\"}; paths are relative to the "
                                             "project folder, 'config' defaults to the project's eoengine.yaml")


class JobOut(BaseModel):
    """A job: its spec, state, progress, outputs, who started it and when."""

    id: int
    project: str
    kind: str
    spec: dict[str, Any]
    state: str
    cancel_requested: bool
    progress: dict[str, Any] | None
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    created_by: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    attempts: int
    worker: str | None


class OverviewOut(ProjectOut):
    """A project's overview: its config, artefacts, latest jobs and a map of its footprints."""

    config: str
    datasets: list[ArtifactOut]
    runs: list[ArtifactOut]
    models: list[ArtifactOut]
    maps: list[ArtifactOut]
    uploads: list[ArtifactOut]
    jobs: list[JobOut]
    footprints: dict[str, Any]


class MemberIn(_In):
    """A person added to a project with a role."""

    username: str = Field(min_length=1, max_length=64)
    role: Role


class RolePatch(_In):
    """A member's new role."""

    role: Role


class MemberOut(BaseModel):
    """A project member and their role."""

    username: str
    role: str


class EventOut(BaseModel):
    """An event of the append-only log."""

    id: int
    at: dt.datetime
    actor: str | None
    project: str | None
    action: str
    object_type: str
    object_id: str
    data: dict[str, Any]
    payload_hash: str


# Browsing: datasets, maps, uploads (routes/datasets.py, maps.py, uploads.py)


class DatasetOut(BaseModel):
    """A dataset version as listed: its name and version, folder (relative to the project), chips per split.

    ``chips`` and ``splits`` come from its manifest; None and empty when its folder is gone.
    """

    id: int
    name: str
    version: str
    ref: str = Field(description="name@version, as the dataset's URLs name it")
    path: str
    created_at: dt.datetime
    job_id: int | None
    chips: int | None
    splits: dict[str, int]


class DatasetDetailOut(BaseModel):
    """A dataset version: its manifest, class balance per split, and band statistics."""

    name: str
    version: str
    path: str
    manifest: dict[str, Any]
    class_balance: dict[str, Any]
    band_stats: dict[str, Any]


class MapClass(BaseModel):
    """A class of a class map: the pixel code, its name and colour (``#rrggbb``)."""

    code: int
    name: str
    color: str


class MapClassArea(BaseModel):
    """A class of a class map within an area: its code, name, colour, pixel count and hectares."""

    code: int
    name: str
    color: str
    pixels: int
    hectares: float


class MapOut(BaseModel):
    """A prediction map: where it is, what its pixels hold, its footprint, and its tiles.

    ``kind`` is ``classes`` (a class map: ``classes`` lists its codes with their colours) or
    ``values`` (regression outputs or probabilities: ``ranges`` holds each band's 2nd and 98th
    percentile, the range its tiles' colour ramp spans).
    """

    id: int
    name: str
    path: str
    created_at: dt.datetime
    job_id: int | None
    meta: dict[str, Any]
    kind: str
    crs: str
    width: int
    height: int
    dtype: str
    bands: list[str]
    footprint: dict[str, Any]
    bbox: list[float]
    classes: list[MapClass]
    ranges: list[list[float]]
    tags: dict[str, str]
    tiles: str = Field(description="XYZ tile URL template, relative to the API root")


class ImageryItemOut(BaseModel):
    """A scene of the project's imagery catalog (a STAC Item of its ``scenes``, ``fetched`` or ``uploads`` collection)."""

    id: str
    collection: str
    datetime: str | None
    bbox: list[float]
    bands: list[str] = Field(description="Band names and common names a render recipe can use")
    recipes: list[str] = Field(description="The recipes its bands allow (index:NAME needs the index's bands)")
    tiles: str = Field(description="XYZ tile URL template, relative to the API root (add ?recipe=...)")
    properties: dict[str, Any] = Field(default_factory=dict, description="Its other STAC properties, e.g. "
                                       "eo:cloud_cover and platform of a fetched scene")


class LineageNode(BaseModel):
    """An object of the lineage: its type, id, and the event that made it (None for inputs never made here)."""

    type: str
    id: str
    event: int | None = None
    at: str | None = None


class LineageEdge(BaseModel):
    """``source`` was an input of ``target`` (both ``type:id``)."""

    source: str
    target: str


class Lineage(BaseModel):
    """The objects an object came from and those made from it, with the edges between them."""

    object: str
    nodes: list[LineageNode]
    edges: list[LineageEdge]


MODEL_NAME = r"^[\w\-.]{1,128}$"
"""A registered model's name (the characters MLflow's registry allows)."""
ALIAS_NAME = r"^[A-Za-z_][\w\-]{0,63}$"
"""An alias: a letter or ``_``, then letters, digits, ``_`` or ``-`` (``latest`` and ``vN`` are MLflow's own)."""


class ModelRegisterIn(_In):
    """Register a run's model package as a new version of a registered model (optionally pointing an alias at it)."""

    run_id: str = Field(pattern=r"^[0-9a-f]{32}$", description="The run (32 hex digits)")
    name: str = Field(pattern=MODEL_NAME, description="The registered model (made if new)")
    alias: str | None = Field(None, pattern=ALIAS_NAME, description="An alias to point at the new version (champion)")


class AliasIn(_In):
    """Point an alias at a version."""

    version: int = Field(ge=1, le=2**31 - 1, description="The model version")


class ModelVersionOut(BaseModel):
    """A registered model version: its name, number, ``models:/NAME/VERSION`` reference, run and aliases."""

    name: str
    version: str
    ref: str
    run_id: str
    aliases: list[str]


class AliasOut(BaseModel):
    """An alias of a registered model: the version it points at now (None: removed) and before (None: unset)."""

    name: str
    alias: str
    version: str | None
    previous: str | None


class SubscriptionIn(_In):
    """A new subscription: its spec (see ``eoengine.subscriptions.spec.SubscriptionSpec``; ``source`` defaults to ``project``)."""

    spec: dict[str, Any] = Field(description="The subscription spec: name, area (GeoJSON), model, cadence, start, ...; "
                                             "source 'project' (the default) is the project's imagery catalog")


class SubscriptionOut(BaseModel):
    """A subscription: its spec (webhook secrets masked), state, schedule and run counts."""

    id: int
    project: str
    name: str
    spec: dict[str, Any]
    state: str = Field(description="pending, active, suspended, completed, cancelled or failed")
    next_due: dt.datetime | None = Field(description="When the scheduler fires next (None: never again)")
    last_due: dt.datetime | None = Field(description="The last due time fired")
    failures: int = Field(description="Failed runs in a row (the subscription fails at 3)")
    runs: int = Field(description="Runs recorded")
    active_job: int | None = Field(description="The queued or running run job, if any")
    created_by: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


class SubscriptionRunOut(BaseModel):
    """One recorded run of a subscription: its key, due time, job, status and the core's run record."""

    id: int
    key: str
    due: dt.datetime | None
    job_id: int | None
    status: str = Field(description="succeeded, failed, no-imagery or skipped")
    record: RunRecord = Field(description="The run record: period, scenes, model version, map, item, stats, "
                                          "change, drift, deliveries, error")
    created_at: dt.datetime


class DeliveryOut(BaseModel):
    """One webhook delivery of a run (the URL, topic, attempts and outcome, as the run recorded them)."""

    run_id: int
    run_key: str
    delivery: Delivery
