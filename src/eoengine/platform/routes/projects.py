"""Projects: listed, made (from a config, a bundled sample or an imported CLI folder), shown, re-configured, deleted."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from eoengine.errors import Conflict, Denied, Invalid
from eoengine.files import atomic_write_text
from eoengine.platform.db.models import Artifact, Membership, Project
from eoengine.platform.deps import Caller, CurrentCaller, DbSession, Manager, Reader, platform_of
from eoengine.platform.events import record
from eoengine.platform.footprints import scene_footprints
from eoengine.platform.importing import import_project, remove_folder
from eoengine.platform.projects import CONFIG, config_hash, create_folder, slugify, validate_config
from eoengine.platform.routes.jobs import latest_jobs
from eoengine.platform.schemas import ArtifactOut, ConfigIn, OverviewOut, ProjectIn, ProjectOut
from eoengine.platform.settings import Platform, PlatformSettings

router = APIRouter(prefix="/projects", tags=["projects"])


def artifact_out(a: Artifact) -> ArtifactOut:
    """An artefact as the API shows it."""
    return ArtifactOut(id=a.id, kind=a.kind, name=a.name, version=a.version, path=a.path, ref=a.ref, meta=a.meta,
                       job_id=a.job_id, created_at=a.created_at)


@router.get("", response_model=list[ProjectOut])
def list_projects(session: DbSession, caller: CurrentCaller) -> list[ProjectOut]:
    """The caller's projects (a site admin sees every project)."""
    query = select(Project, Membership.role).outerjoin(
        Membership, (Membership.project_id == Project.id) & (Membership.user_id == caller.user.id))
    if not caller.user.is_admin:
        query = query.where(Membership.role.is_not(None))
    return [ProjectOut(id=p.id, slug=p.slug, name=p.name, role=role, created_at=p.created_at)
            for p, role in session.execute(query.order_by(Project.name))]


@router.post("", response_model=ProjectOut, status_code=201)
def create_project(body: ProjectIn, request: Request, session: DbSession, caller: CurrentCaller) -> ProjectOut:
    """A new project from a config's YAML text, a bundled sample or a CLI project folder; its creator becomes its admin.

    The config is validated with the CLI's schema and messages, and every file it names must
    be inside the project folder (or a data root of the server). A ``folder`` (site admins
    only; under an import root of the server) is registered in place and what the CLI made
    there is indexed: see :mod:`eoengine.platform.importing`.
    """
    settings = platform_of(request).settings
    if body.folder is not None:
        return _import(body, settings, session, caller)
    slug = slugify(body.name)
    if session.scalar(select(Project).where(Project.slug == slug)) is not None:
        raise Conflict(f"a project {slug!r} exists already", "choose another name")
    folder, text = create_folder(settings.projects_dir, slug, body.config, body.template, settings.examples,
                                 settings.data_roots)
    try:
        project = Project(slug=slug, name=body.name, created_by=caller.user.id, config_hash=config_hash(text))
        session.add(project)
        session.flush()
        session.add(Membership(project_id=project.id, user_id=caller.user.id, role="admin"))
        record(session, "project.create", "project", project.slug, actor_id=caller.user.id, project_id=project.id,
               data={"name": body.name, "template": body.template, "config_hash": project.config_hash})
        session.flush()
    except BaseException:
        remove_folder(folder)
        raise
    return ProjectOut(id=project.id, slug=slug, name=body.name, role="admin", created_at=project.created_at)


def _import(body: ProjectIn, settings: PlatformSettings, session: Session, caller: Caller) -> ProjectOut:
    """Import a CLI project folder (site admins only)."""
    if not caller.user.is_admin:
        raise Denied("only site admins may import a project folder", "ask a site admin to import it")
    if body.config is not None or body.template is not None:
        raise Invalid("give 'folder' alone: an imported project keeps the config in its folder",
                      "leave out 'config' and 'template'")
    assert body.folder is not None
    project, _ = import_project(session, settings, body.folder, body.name, caller.user.id, settings.import_roots)
    return ProjectOut(id=project.id, slug=project.slug, name=project.name, role="admin", created_at=project.created_at)


def _artifacts(session: Session, project: Project) -> dict[str, list[ArtifactOut]]:
    by_kind: dict[str, list[ArtifactOut]] = {k: [] for k in ("dataset", "run", "model", "map", "upload")}
    for a in session.scalars(select(Artifact).where(Artifact.project_id == project.id).order_by(Artifact.id.desc())):
        by_kind.setdefault(a.kind, []).append(artifact_out(a))
    return by_kind


def overview(platform: Platform, session: Session, project: Project, role: str | None) -> OverviewOut:
    """A project's overview: config, artefacts by kind, latest jobs, footprints of its scenes (listed and fetched) and maps."""
    folder = platform.settings.projects_dir / project.slug
    text = (folder / CONFIG).read_text()
    arts = _artifacts(session, project)
    maps = [{"type": "Feature", "geometry": m.meta["footprint"], "properties": {"kind": "map", "name": m.name}}
            for m in arts["map"] if m.meta.get("footprint")]
    fetched = [{"type": "Feature", "geometry": a.meta["footprint"],
                "properties": {"kind": "scene", "name": a.name, "datetime": (a.meta.get("properties") or {}).get("datetime")}}
               for a in {a.name: a for a in reversed(arts.get("scene", []))}.values() if a.meta.get("footprint")]
    features: list[dict[str, Any]] = scene_footprints(validate_config(text, folder, platform.settings.data_roots))
    return OverviewOut(id=project.id, slug=project.slug, name=project.name, role=role, created_at=project.created_at,
                       config=text, datasets=arts["dataset"], runs=arts["run"], models=arts["model"],
                       maps=arts["map"], uploads=arts["upload"], jobs=latest_jobs(session, project),
                       footprints={"type": "FeatureCollection", "features": features + fetched + maps})


@router.get("/{slug}", response_model=OverviewOut)
def get_project(access: Reader, request: Request, session: DbSession) -> OverviewOut:
    """A project's overview."""
    return overview(platform_of(request), session, access.project, access.role)


@router.put("/{slug}/config", response_model=OverviewOut)
def put_config(body: ConfigIn, access: Manager, request: Request, session: DbSession) -> OverviewOut:
    """Replace a project's config (validated as on creation; nothing changes when it fails)."""
    platform = platform_of(request)
    folder = platform.settings.projects_dir / access.project.slug
    validate_config(body.config, folder, platform.settings.data_roots)
    atomic_write_text(folder / CONFIG, body.config)
    access.project.config_hash = config_hash(body.config)
    record(session, "project.config", "project", access.project.slug, actor_id=access.user_id,
           project_id=access.project.id, data={"config_hash": access.project.config_hash})
    return overview(platform, session, access.project, access.role)


@router.delete("/{slug}", status_code=204)
def delete_project(access: Manager, request: Request, session: DbSession) -> None:
    """Delete a project and its folder (an imported folder stays: its link goes); its events stay in the log."""
    folder = platform_of(request).settings.projects_dir / access.project.slug
    record(session, "project.delete", "project", access.project.slug, actor_id=access.user_id,
           project_id=access.project.id, data={"name": access.project.name})
    session.delete(access.project)
    session.flush()
    remove_folder(folder)
