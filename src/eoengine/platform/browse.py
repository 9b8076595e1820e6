"""What the browsing routes share: a project's folder and config, a path kept inside a folder, indexed artefacts.

Artefact paths in the index are relative to the project folder; a route that serves a file
named in a request (a dataset's file, an upload) resolves it with :func:`inside`, which
refuses ``..``, absolute paths and symlinks that lead out of the folder with the same 404 as
a file that is not there, so a caller learns nothing about the server's other files.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Annotated

from fastapi import Path as PathParam
from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from eoengine.config.schema import ProjectConfig
from eoengine.errors import NotFound
from eoengine.platform.db.models import Artifact, Project
from eoengine.platform.deps import RowId, platform_of
from eoengine.platform.projects import CONFIG, validate_config

ROW_ID = RowId
"""An artefact's id in a path, bounded as every row id (by PostgreSQL's integer: a larger one is a 422, not a 500)."""
CHIP_ID = Annotated[int, PathParam(ge=0, le=2**63 - 1, description="A chip id of the dataset")]


def project_folder(request: Request, project: Project) -> Path:
    """The folder of a project.

    Args:
        request: A request to the server (for its settings).
        project: The project.

    Returns:
        ``projects_dir / slug``.

    """
    return platform_of(request).settings.projects_dir / project.slug


def project_config(request: Request, project: Project) -> ProjectConfig:
    """The project's config, validated (and confined to its folder) as on creation.

    Args:
        request: The request (for the server's settings).
        project: The project.

    Returns:
        The config, its paths resolving against the project folder.

    Raises:
        ConfigError: The config on disk no longer validates.

    """
    folder = project_folder(request, project)
    return validate_config((folder / CONFIG).read_text(), folder, platform_of(request).settings.data_roots)


def inside(folder: Path, relative: str, what: str = "file") -> Path:
    """``relative`` resolved inside ``folder``; anything that would leave it is not there.

    Args:
        folder: The folder.
        relative: A path relative to it, with ``/`` between parts.
        what: What the path names (for the message).

    Returns:
        The resolved path (it exists).

    Raises:
        NotFound: The path is absolute, has ``..`` parts, leads out through a symlink, or does not exist.

    """
    parts = PurePosixPath(relative).parts
    root = folder.resolve()
    target = root.joinpath(*parts).resolve() if parts else root
    if not parts or parts[0] == "/" or ".." in parts or "\\" in relative or (
            target != root and root not in target.parents) or not target.exists():
        raise NotFound(f"no {what} {relative!r}", f"list the {what}s first")
    return target


def artifacts_of(session: Session, project: Project, kind: str) -> list[Artifact]:
    """A project's indexed artefacts of one kind, newest first.

    Args:
        session: A database session.
        project: The project.
        kind: ``dataset``, ``run``, ``model``, ``map``, ``scene`` or ``upload``.

    Returns:
        The artefacts.

    """
    query = select(Artifact).where(Artifact.project_id == project.id, Artifact.kind == kind)
    return list(session.scalars(query.order_by(Artifact.id.desc())))


def imagery_artifacts(session: Session, project: Project) -> list[Artifact]:
    """The artefacts a project's imagery catalog is made of besides its config's scenes: fetched scenes, uploads.

    Args:
        session: A database session.
        project: The project.

    Returns:
        Its ``scene`` then its ``upload`` artefacts, each newest first.

    """
    return artifacts_of(session, project, "scene") + artifacts_of(session, project, "upload")


def one_artifact(session: Session, project: Project, kind: str, fix: str, *, artifact_id: int | None = None,
                 name: str | None = None, version: str | None = None) -> Artifact:
    """One indexed artefact of a project, by id or by name and version.

    Args:
        session: A database session.
        project: The project.
        kind: Its kind.
        fix: What to do when there is none.
        artifact_id: Its id.
        name: Its name.
        version: Its version.

    Returns:
        The artefact.

    Raises:
        NotFound: The project has no such artefact.

    """
    query = select(Artifact).where(Artifact.project_id == project.id, Artifact.kind == kind)
    if artifact_id is not None:
        query = query.where(Artifact.id == artifact_id)
    if name is not None:
        query = query.where(Artifact.name == name)
    if version is not None:
        query = query.where(Artifact.version == version)
    found = session.scalars(query.order_by(Artifact.id.desc())).first()
    if found is None:
        label = f"{artifact_id}" if artifact_id is not None else f"{name}@{version}" if version else f"{name}"
        raise NotFound(f"no {kind} {label} in project {project.slug!r}", fix)
    return found
