"""Jobs: submitted as typed job specs, listed, shown, cancelled, and their logs read or followed live.

A spec is checked when it is submitted: its kind and fields by :func:`eoengine.jobs.specs.parse_spec`
(with its messages), and every file it names must lie inside the project folder — relative paths
are relative to it, ``config`` defaults to the project's ``eoengine.yaml`` — so a job cannot read
or write another project's files or the server's. The spec is stored as given; workers run it.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from eoengine.errors import Denied, Invalid, NotFound
from eoengine.jobs.specs import SPECS, AnySpec, parse_spec
from eoengine.platform.db.models import Job, Project, User
from eoengine.platform.deps import (
    CurrentCaller,
    DbSession,
    ProjectAccess,
    Reader,
    RowId,
    Runner,
    find_project,
    platform_of,
)
from eoengine.platform.events import record
from eoengine.platform.index import RUN_ID
from eoengine.platform.projects import CONFIG, validate_config
from eoengine.platform.queue import FINISHED, State, request_cancel
from eoengine.platform.schemas import JobIn, JobOut
from eoengine.platform.settings import Platform
from eoengine.platform.worker import job_log

router = APIRouter(tags=["jobs"])
LOG_CHUNK = 2**20
STREAM_POLL_S = 0.5
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_REMOTE_VSI = ("/vsicurl/", "/vsis3/", "/vsigs/", "/vsiaz/", "/vsiadls/", "/vsioss/", "/vsiswift/", "/vsihdfs/")
PATH_FIX = "name a file inside the project folder (relative to it), e.g. data/scene.tif; upload the file first"


def job_out(job: Job, project: str, created_by: str | None) -> JobOut:
    """A job as the API shows it.

    Args:
        job: The row.
        project: Its project's slug.
        created_by: Its submitter's user name.

    Returns:
        The response body.

    """
    return JobOut(id=job.id, project=project, kind=job.kind, spec=job.spec, state=job.state,
                  cancel_requested=job.cancel_requested, progress=job.progress, result=job.result, error=job.error,
                  created_by=created_by, created_at=job.created_at, started_at=job.started_at,
                  finished_at=job.finished_at, attempts=job.attempts, worker=job.worker)


def latest_jobs(session: Session, project: Project, limit: int = 20, state: State | None = None) -> list[JobOut]:
    """A project's newest jobs (in one state, if given).

    Args:
        session: A database session.
        project: The project.
        limit: How many at most.
        state: Only jobs in this state.

    Returns:
        The jobs, newest first.

    """
    query = (select(Job, User.username).outerjoin(User, User.id == Job.created_by).where(Job.project_id == project.id)
             .order_by(Job.id.desc()).limit(limit))
    if state is not None:
        query = query.where(Job.state == state)
    return [job_out(job, project.slug, name) for job, name in session.execute(query)]


def _local(value: str) -> str | None:
    """The local path a file reference names (None for a remote URL, which leaves the server alone)."""
    if value.startswith("file://"):
        return value.removeprefix("file://")
    if _URI.match(value) or value.startswith(_REMOTE_VSI):
        return None
    return value


def _scene_paths(field: str, values: list[str]) -> Iterator[tuple[str, str]]:
    """Each file of ``scene``/``scenes``: every comma-separated part, and the path of a ``name=path`` pair."""
    for i, value in enumerate(values):
        for part in value.split(","):
            yield f"{field}[{i}]", part
            if "=" in part:
                yield f"{field}[{i}]", part.split("=", 1)[1]


def confine_path(root: Path, field: str, value: str) -> None:
    """Refuse a local path outside ``root``, one no file could have (a NUL byte, too long), or the config as an output."""
    local = _local(value)
    if local is None:
        return
    shown = value if len(value) <= 200 else value[:197] + "..."
    try:
        resolved = (root / local).resolve()
        resolved.is_file()  # a name no file can have fails here, not in a later check
    except (ValueError, OSError) as exc:
        raise Invalid(f"{field} ({shown!r}) is not a usable file name: {exc}", PATH_FIX) from None
    if resolved != root and root not in resolved.parents:
        raise Invalid(f"{field} ({shown}) is outside the project folder", PATH_FIX)
    if field != "config" and resolved == root / CONFIG:
        raise Invalid(f"{field} ({shown}) is the project's config", f"name another file; {CONFIG} is changed with "
                                                                     "PUT /api/v1/projects/SLUG/config")


def _is_local_model(value: str) -> bool:
    """Whether a model reference is a package folder (not an MLflow run id or ``models:/`` URI)."""
    return not (RUN_ID.match(value) or value.startswith("models:/"))


def spec_paths(spec: AnySpec) -> Iterator[tuple[str, str]]:
    """Every local file a spec names, as (field, path as given); URLs and model URIs are left out.

    Args:
        spec: The parsed spec.

    Yields:
        (field name, path).

    """
    for name in type(spec).model_fields:
        value = getattr(spec, name)
        if isinstance(value, Path):
            yield name, str(value)
        elif name == "model" and isinstance(value, str) and _is_local_model(value):
            yield name, value
        elif name == "models" and isinstance(value, list):
            yield from ((f"models[{i}]", v) for i, v in enumerate(value) if _is_local_model(v))
        elif name in ("scene", "scenes") and value:
            yield from _scene_paths(name, value)
        elif name == "aoi" and isinstance(value, str) and not value.lstrip().startswith("{"):
            yield name, value


def project_spec(data: dict[str, Any], folder: Path, data_roots: tuple[Path, ...] = ()) -> AnySpec:
    """A submitted spec, parsed and confined to its project folder.

    Args:
        data: The spec as submitted (``config`` may be left out: the project's config).
        folder: The project folder.
        data_roots: Folders outside the projects that configs may read from.

    Returns:
        The spec.

    Raises:
        Invalid: An unknown kind or field, a bad value (parse_spec's messages), a file outside the
            project, a tracking URI, or a config that is missing or fails its checks.

    """
    kind = data.get("kind")
    model = SPECS.get(kind) if isinstance(kind, str) else None
    if model is not None and "config" in model.model_fields and data.get("config") is None:
        data = data | {"config": CONFIG}
    spec = parse_spec(data)
    root = folder.resolve()
    for field, value in spec_paths(spec):
        confine_path(root, field, value)
    if getattr(spec, "tracking_uri", None):
        raise Invalid("tracking_uri is set, but a project on the server keeps its runs in its own store",
                      "leave tracking_uri out: the job uses the project's MLflow store")
    config = getattr(spec, "config", None)
    if config is not None:
        path = root / config
        if not path.is_file():  # inside the folder (checked above), so a name that cannot exist raised there
            raise Invalid(f"config ({config}) is not a file in the project folder",
                           f"leave config out to use the project's {CONFIG}, or name a YAML file of the project")
        validate_config(path.read_text(), root, data_roots)
    return spec


@router.post("/projects/{slug}/jobs", response_model=JobOut, status_code=201)
def submit_job(body: JobIn, access: Runner, request: Request, session: DbSession) -> JobOut:
    """Queue a job: a typed job spec (see ``eoengine.jobs.specs``: build, train, evaluate, predict, fetch, ...)."""
    settings = platform_of(request).settings
    spec = project_spec(body.spec, settings.projects_dir / access.project.slug, settings.data_roots)
    stored = spec.model_dump(mode="json")
    job = Job(project_id=access.project.id, kind=spec.kind, spec=stored, created_by=access.user_id)
    session.add(job)
    session.flush()
    record(session, "job.submit", "job", job.id, actor_id=access.user_id, project_id=access.project.id,
           data={"kind": spec.kind, "spec": stored})
    return job_out(job, access.project.slug, access.caller.user.username)


@router.get("/projects/{slug}/jobs", response_model=list[JobOut])
def list_jobs(access: Reader, session: DbSession, state: State | None = None,
              limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[JobOut]:
    """A project's jobs, newest first (``?state=`` for one state)."""
    return latest_jobs(session, access.project, limit, state)


def visible_job(session: Session, job_id: int, caller: CurrentCaller) -> tuple[Job, ProjectAccess]:
    """A job the caller may see (read on its project), and their access to the project.

    Args:
        session: The request's session.
        job_id: The job.
        caller: Who asks.

    Returns:
        The job and the access.

    Raises:
        NotFound: No such job, or one of a project the caller is no member of.

    """
    row = session.execute(select(Job, Project.slug).join(Project, Project.id == Job.project_id)
                          .where(Job.id == job_id)).first()
    if row is None:
        raise NotFound(f"no job {job_id}", "list a project's jobs (GET /api/v1/projects/SLUG/jobs)")
    try:
        access = find_project(session, row[1], caller, "read")
    except NotFound:
        raise NotFound(f"no job {job_id}", "list a project's jobs (GET /api/v1/projects/SLUG/jobs)") from None
    return row[0], access


def _shown(session: Session, job: Job, slug: str) -> JobOut:
    name = session.scalar(select(User.username).where(User.id == job.created_by)) if job.created_by else None
    return job_out(job, slug, name)


@router.get("/jobs/{job_id}", response_model=JobOut)
def get_job(job_id: RowId, session: DbSession, caller: CurrentCaller) -> JobOut:
    """A job: its spec, state, progress, result or error, who started it and when."""
    job, access = visible_job(session, job_id, caller)
    return _shown(session, job, access.project.slug)


@router.post("/jobs/{job_id}/cancel", response_model=JobOut)
def cancel_job(job_id: RowId, session: DbSession, caller: CurrentCaller) -> JobOut:
    """Cancel a job: a queued one at once, a running one once its worker stops its processes (409 when finished)."""
    job, access = visible_job(session, job_id, caller)
    own = job.created_by == caller.user.id and access.allows("run")
    if not (own or access.allows("manage")):
        raise Denied(f"your role on {access.project.slug!r} ({access.role}) may not cancel job {job_id}",
                     "the job's submitter (reviewer or higher) or a project admin may cancel it")
    job = request_cancel(session, job_id, caller.user.id)
    return _shown(session, job, access.project.slug)


def read_log(path: Path, offset: int, limit: int = LOG_CHUNK) -> tuple[bytes, int]:
    """Up to ``limit`` bytes of a log from ``offset``, cut before a UTF-8 character split at the end.

    Args:
        path: The log file (missing: empty).
        offset: Byte offset to read from.
        limit: Most bytes to read.

    Returns:
        (the bytes, the offset after them).

    Raises:
        Invalid: ``offset`` is past the end of the log.

    """
    size = path.stat().st_size if path.exists() else 0
    if offset > size:
        raise Invalid(f"offset {offset} is past the end of the log ({size} bytes)",
                      "read from offset 0, or from the X-Log-Offset of the last answer")
    if offset == size:
        return b"", offset
    with path.open("rb") as f:
        f.seek(offset)
        chunk = f.read(limit)
    cut = len(chunk)
    for back in range(1, min(4, len(chunk)) + 1):  # a UTF-8 lead byte whose sequence runs past the end
        byte = chunk[-back]
        if byte & 0xC0 == 0x80:
            continue
        if byte >= 0xC0 and back < (2 if byte < 0xE0 else 3 if byte < 0xF0 else 4):
            cut = len(chunk) - back
        break
    return chunk[:cut], offset + cut


@router.get("/jobs/{job_id}/log", response_class=PlainTextResponse)
def job_log_text(job_id: RowId, request: Request, session: DbSession, caller: CurrentCaller,
                 offset: Annotated[int, Query(ge=0)] = 0) -> PlainTextResponse:
    """A job's log from byte ``offset`` (text/plain; the header X-Log-Offset is where to read on from)."""
    job, _ = visible_job(session, job_id, caller)
    chunk, after = read_log(job_log(platform_of(request).settings.jobs_dir, job.id), offset)
    return PlainTextResponse(chunk.decode("utf-8", errors="replace"), headers={"X-Log-Offset": str(after)})


def _state(platform: Platform, job_id: int) -> dict[str, Any]:
    with platform.db.read() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return {"state": job.state, "progress": job.progress, "attempts": job.attempts, "error": job.error,
                "result": job.result if job.state in FINISHED else None}


def _sse(event: str, data: str, event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    # a carriage return ends an SSE line as a newline does (progress bars write them): each part its own data line
    return head + f"event: {event}\n" + "".join(f"data: {line}\n" for line in re.split(r"\r\n|\r|\n", data)) + "\n"


async def _follow(request: Request, platform: Platform, job_id: int, path: Path, offset: int) -> AsyncIterator[str]:
    """Log lines and state changes until the job has finished and its log is read to the end."""
    last: dict[str, Any] | None = None
    pending = b""  # a line not ended yet; ``offset`` is where it begins
    while True:
        state = await to_thread.run_sync(_state, platform, job_id)
        while True:
            chunk, _ = await to_thread.run_sync(read_log, path, offset + len(pending))
            if not chunk:
                break
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                offset += len(line) + 1
                yield _sse("log", line.decode("utf-8", errors="replace"), str(offset))
        if state != last:
            yield _sse("state", json.dumps(state))
            last = state
        if state["state"] in FINISHED:
            if pending:
                yield _sse("log", pending.decode("utf-8", errors="replace"), str(offset + len(pending)))
            yield _sse("end", state["state"])
            return
        if await request.is_disconnected():
            return
        await asyncio.sleep(STREAM_POLL_S)


@router.get("/jobs/{job_id}/log/stream", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
def job_log_stream(job_id: RowId, request: Request, session: DbSession, caller: CurrentCaller,
                   offset: Annotated[int, Query(ge=0)] = 0) -> StreamingResponse:
    """Follow a job as text/event-stream until it has finished.

    Events: ``log`` (one line each; its ``id`` is the byte offset after it, to resume from with
    ``?offset=``), ``state`` (state, progress, attempts, error, result) when it changes, and
    ``end`` (the final state) once the job has finished and its log is read to the end.
    """
    job, _ = visible_job(session, job_id, caller)
    platform = platform_of(request)
    path = job_log(platform.settings.jobs_dir, job.id)
    read_log(path, offset, 0)  # a bad offset is a 422 now, not a broken stream
    session.commit()  # the stream holds no transaction
    return StreamingResponse(_follow(request, platform, job.id, path, offset), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
