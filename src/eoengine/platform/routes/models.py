"""Registering a run's model in the project's MLflow registry, and moving its aliases (reviewers and admins).

A registration is what ``eoengine register`` does (:func:`eoengine.deploy.registry.register`):
the run's package becomes a new version of the registered model, an MLflow pyfunc with its
signature. Each change is indexed (an ``artifacts`` row of kind ``model`` per version, ref
``models:/NAME/VERSION``) and written to the event log: ``model.register`` with its input
``run:RUN_ID`` (so the lineage runs dataset → run → model version → maps) and ``model.alias``
with the versions the alias pointed at before and after. Reads are in :mod:`.runs`.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Path, Request

from eoengine.errors import Invalid, NotFound
from eoengine.models.meta import META
from eoengine.platform.deps import DbSession, Reviewer
from eoengine.platform.index import alias_moved, registration, store_artifacts
from eoengine.platform.routes.runs import MODEL_FIX, RUN_FIX, named, project_store
from eoengine.platform.schemas import ALIAS_NAME, MODEL_NAME, AliasIn, AliasOut, ModelRegisterIn, ModelVersionOut
from eoengine.tracking.runs import get_run, local_path

if TYPE_CHECKING:
    from eoengine.models.package import ModelPackage

router = APIRouter(prefix="/projects/{slug}/models", tags=["models"])
RESERVED = ("latest",)
ALIAS_FIX = "name the alias with a letter, then letters, digits, '_' or '-' (e.g. champion); not 'latest' nor vN"
ModelName = Annotated[str, Path(pattern=MODEL_NAME, description="A registered model's name")]
AliasName = Annotated[str, Path(pattern=ALIAS_NAME, description="An alias, e.g. champion")]
_REGISTERING = threading.Lock()
"""MLflow's registration sets the process's tracking URI: one registration at a time."""


def check_alias(alias: str) -> str:
    """``alias``, when the registry would take it.

    Raises:
        Invalid: ``latest`` or ``v`` and digits (MLflow keeps them for versions).

    """
    if alias.lower() in RESERVED or (alias[:1] in "vV" and alias[1:].isdigit()):
        raise Invalid(f"alias {alias!r} is reserved by the registry", ALIAS_FIX)
    return alias


def _run_package(uri: str, run_id: str, slug: str) -> ModelPackage:
    """The model package of a run of the project (checked before anything loads it)."""
    from eoengine.deploy.registry import load_model_ref

    info = named(lambda: get_run(uri, run_id), f"no run {run_id} in project {slug!r}", RUN_FIX)
    local = local_path(info.artifact_uri)
    if local is not None and not (local / "model" / META).is_file():
        raise Invalid(f"run {run_id} has no model package",
                      "register a run that finished training (its runs:/RUN_ID/model holds the package)")
    return load_model_ref(str(local / "model") if local is not None else f"runs:/{run_id}/model", uri)


@router.post("", response_model=ModelVersionOut, status_code=201)
def register_model(body: ModelRegisterIn, access: Reviewer, request: Request, session: DbSession) -> ModelVersionOut:
    """Register a run's model package as a new version of model NAME (and point ``alias`` at it)."""
    from eoengine.deploy.registry import move_alias, register

    uri, _, exists = project_store(request, access, session)
    if not exists:
        raise NotFound(f"no run {body.run_id} in project {access.project.slug!r}", RUN_FIX)
    alias = check_alias(body.alias) if body.alias else None
    pkg = _run_package(uri, body.run_id, access.project.slug)
    with _REGISTERING:
        made = register(pkg, body.name, uri)
    before = move_alias(uri, body.name, alias, made.version) if alias else None
    aliases = [alias] if alias else []
    store_artifacts(session, access.project.id, access.user_id, None,
                    [registration(body.name, made.version, body.run_id, aliases)])
    if alias:
        alias_moved(session, access.project.id, body.name, alias, (before, made.version), access.user_id)
    return ModelVersionOut(name=body.name, version=made.version, ref=made.uri, run_id=body.run_id, aliases=aliases)


def _move(access: Reviewer, request: Request, session: DbSession, name: str, alias: str,
          version: str | None) -> AliasOut:
    from eoengine.deploy.registry import move_alias

    uri, _, exists = project_store(request, access, session)
    problem = f"no registered model {name!r} in project {access.project.slug!r}"
    if not exists:
        raise NotFound(problem, MODEL_FIX)
    before = move_alias(uri, name, check_alias(alias), version)
    alias_moved(session, access.project.id, name, alias, (before, version), access.user_id)
    return AliasOut(name=name, alias=alias, version=version, previous=before)


@router.put("/{name}/aliases/{alias}", response_model=AliasOut)
def set_alias(name: ModelName, alias: AliasName, body: AliasIn, access: Reviewer, request: Request,
              session: DbSession) -> AliasOut:
    """Point an alias of model NAME at a version (moving it from the one it named)."""
    return _move(access, request, session, name, alias, str(body.version))


@router.delete("/{name}/aliases/{alias}", response_model=AliasOut)
def delete_alias(name: ModelName, alias: AliasName, access: Reviewer, request: Request, session: DbSession) -> AliasOut:
    """Remove an alias of model NAME."""
    return _move(access, request, session, name, alias, None)
