"""The Python client of an eoengine platform server, typed with the API's own pydantic models.

>>> from eoengine.client import Client
>>> with Client("http://127.0.0.1:8000", token) as c:  # doctest: +SKIP
...     job = c.submit("nc-landcover", {"kind": "build"})
...     job.wait().state
'succeeded'

Every method answers the API's models (:mod:`eoengine.platform.schemas`); every error is an
:mod:`eoengine.errors` kind (see :mod:`eoengine.client.http`).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import closing
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from eoengine.client.annotation import Annotating
from eoengine.client.annotation_assist import Assisting
from eoengine.client.annotation_quality import AnnotationQuality
from eoengine.client.browse import Browsing
from eoengine.client.http import Http, parse, segment
from eoengine.client.jobs import Job
from eoengine.client.saved import load_remote
from eoengine.client.subscriptions import Subscribing
from eoengine.errors import Invalid, NotFound, os_error
from eoengine.jobs.specs import AnySpec
from eoengine.platform.roles import Role
from eoengine.platform.schemas import (
    AliasOut,
    ArtifactOut,
    EventOut,
    JobOut,
    Lineage,
    LoginOut,
    MemberOut,
    ModelVersionOut,
    NewTokenOut,
    OverviewOut,
    ProjectOut,
    TokenOut,
    UserOut,
)

UPLOAD_KINDS = ("imagery", "labels")


class Client(Assisting, Annotating, AnnotationQuality, Browsing, Subscribing):
    """A connection to one platform server as one user (by API token).

    Every method answers the API's models and raises the :mod:`eoengine.errors` kind of a
    refusal: Unauthenticated (a bad token), Denied (the role may not), NotFound (an unknown
    project, job or user, or a project the caller is no member of), Conflict, Invalid (bad
    input, with the fields named), TooManyRequests, or Unavailable (the server is out of reach
    or failed). Methods say so only where they add a kind of their own.

    Args:
        url: The server, e.g. ``http://127.0.0.1:8000`` (a trailing ``/api/v1`` is fine).
        token: An API token (``eoe_...``), sent as ``Authorization: Bearer``.
        timeout: Seconds to wait for a connection and for each read.
        transport: An httpx transport (None: the network).

    Raises:
        Invalid: ``url`` is not an http(s) URL.

    """

    def __init__(self, url: str, token: str, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.http = Http(url, token, timeout, transport)

    @classmethod
    def from_saved(cls, timeout: float = 30.0) -> Client:
        """A client for the server ``eoengine remote login`` saved.

        Raises:
            NotFound: No server is saved.
            Invalid: The saved file is unreadable, or readable by others.

        """
        remote = load_remote()
        return cls(remote.url, remote.token, timeout)

    @property
    def url(self) -> str:
        """The server's base URL."""
        return self.http.url

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self.http.close()

    # people and tokens

    def me(self) -> UserOut:
        """The user this client's token belongs to."""
        return self.http.get("/auth/me", UserOut)

    def users(self) -> list[UserOut]:
        """Every user (site admins only)."""
        return self.http.get("/users", list[UserOut])

    def create_user(self, username: str, password: str, is_admin: bool = False) -> UserOut:
        """A new user (site admins only)."""
        return self.http.send("POST", "/users", UserOut, {"username": username, "password": password,
                                                          "is_admin": is_admin})

    def update_user(self, user_id: int, **change: Any) -> UserOut:
        """Change a user (site admins only): ``password``, ``is_admin`` or ``disabled``."""
        return self.http.send("PATCH", f"/users/{user_id}", UserOut, change)

    def tokens(self) -> list[TokenOut]:
        """The caller's API tokens, newest first (their prefixes, never their secrets)."""
        return self.http.get("/tokens", list[TokenOut])

    def create_token(self, name: str, expires_days: float | None = 90) -> NewTokenOut:
        """A new API token of the caller; its secret is in the answer only.

        Args:
            name: What it is for.
            expires_days: Days until it expires (None: until revoked).

        Returns:
            The token, with its secret in ``token``.

        """
        return self.http.send("POST", "/tokens", NewTokenOut, {"name": name, "expires_days": expires_days})

    def revoke_token(self, token_id: int) -> None:
        """Revoke one of the caller's tokens (it stops working at once)."""
        self.http.request("DELETE", f"/tokens/{token_id}")

    # projects and members

    def projects(self) -> list[ProjectOut]:
        """The caller's projects (a site admin: every project)."""
        return self.http.get("/projects", list[ProjectOut])

    def project(self, slug: str) -> OverviewOut:
        """A project's overview: config, datasets, runs, models, maps, uploads, latest jobs, footprints."""
        return self.http.get(f"/projects/{segment(slug)}", OverviewOut)

    def create_project(self, name: str, config: str | None = None, template: str | None = None) -> ProjectOut:
        """A new project from a config's YAML text or a bundled sample (e.g. ``nc-landsat``); the caller is its admin.

        Raises:
            Invalid: Neither or both of ``config`` and ``template``, or a config the server refuses.
            Conflict: A project of that name exists.

        """
        if (config is None) == (template is None):
            raise Invalid("give a project either a config or a template",
                          "pass config=YAML_TEXT or template='nc-landsat'")
        body = {"name": name, "config": config} if config is not None else {"name": name, "template": template}
        return self.http.send("POST", "/projects", ProjectOut, body)

    def set_config(self, slug: str, config: str) -> OverviewOut:
        """Replace a project's config (validated by the server as on creation)."""
        return self.http.send("PUT", f"/projects/{segment(slug)}/config", OverviewOut, {"config": config})

    def delete_project(self, slug: str) -> None:
        """Delete a project and its folder (project admins)."""
        self.http.request("DELETE", f"/projects/{segment(slug)}")

    def members(self, slug: str) -> list[MemberOut]:
        """A project's members and their roles."""
        return self.http.get(f"/projects/{segment(slug)}/members", list[MemberOut])

    def add_member(self, slug: str, username: str, role: Role) -> MemberOut:
        """Add a user to a project with a role (viewer, annotator, reviewer or admin)."""
        return self.http.send("POST", f"/projects/{segment(slug)}/members", MemberOut,
                              {"username": username, "role": role})

    def set_role(self, slug: str, username: str, role: Role) -> MemberOut:
        """Change a member's role."""
        return self.http.send("PATCH", f"/projects/{segment(slug)}/members/{segment(username)}", MemberOut,
                              {"role": role})

    def remove_member(self, slug: str, username: str) -> None:
        """Remove a member from a project."""
        self.http.request("DELETE", f"/projects/{segment(slug)}/members/{segment(username)}")

    # uploads and jobs

    def upload(self, slug: str, path: str | Path, kind: str) -> ArtifactOut:
        """Upload a file to a project, streamed from disk (never read whole into memory).

        Args:
            slug: The project.
            path: The file: a raster for ``imagery``, a vector or raster file for ``labels``.
            kind: ``imagery`` or ``labels``.

        Returns:
            The upload, as the project's index shows it.

        Raises:
            Invalid: Another kind, or a file the server refuses.
            NotFound: No such file here, or no such project.

        """
        if kind not in UPLOAD_KINDS:
            raise Invalid(f"unknown upload kind {kind!r}", f"use one of: {', '.join(UPLOAD_KINDS)}")
        file = Path(path)
        if not file.is_file():
            raise NotFound(f"{file} is not a file", "pass the path of the file to upload")
        try:
            handle = file.open("rb")
        except OSError as exc:  # only the file's: the API's errors are OSErrors too (NotFound, Denied, ...)
            raise os_error(exc) from None
        with handle:
            response = self.http.request("POST", f"/projects/{segment(slug)}/uploads", data={"kind": kind},
                                         files={"file": (file.name, handle, "application/octet-stream")})
        return parse(response.json(), ArtifactOut, self.url)  # type: ignore[no-any-return]

    def uploads(self, slug: str) -> list[ArtifactOut]:
        """A project's uploads, newest first."""
        return self.http.get(f"/projects/{segment(slug)}/uploads", list[ArtifactOut])

    def submit(self, slug: str, spec: AnySpec | Mapping[str, Any]) -> Job:
        """Submit a job to a project's queue.

        Args:
            slug: The project.
            spec: A job spec (:mod:`eoengine.jobs.specs`) or its JSON mapping; its paths are relative
                to the project folder, and ``config`` defaults to the project's ``eoengine.yaml``.

        Returns:
            A handle on the queued job.

        Raises:
            Invalid: A spec the server refuses (the fields are named).
            Denied: The caller's role may not run jobs (reviewer or higher may).

        """
        body = spec.model_dump(mode="json") if not isinstance(spec, Mapping) else dict(spec)
        info = self.http.send("POST", f"/projects/{segment(slug)}/jobs", JobOut, {"spec": body})
        return Job(self.http, info)

    def job(self, job_id: int) -> Job:
        """A handle on a job, with its state now."""
        return Job(self.http, self.http.get(f"/jobs/{int(job_id)}", JobOut))

    def jobs(self, slug: str, state: str | None = None) -> list[JobOut]:
        """A project's jobs, newest first; only those in ``state`` (queued, running, succeeded, failed, cancelled)."""
        return self.http.get(f"/projects/{segment(slug)}/jobs", list[JobOut], state=state)

    # history

    def events(self, project: str | None = None, object: str | None = None, after: int = 0,
               limit: int = 200) -> list[EventOut]:
        """Events of the append-only log, oldest first, that the caller may see.

        Args:
            project: Only this project's (its slug).
            object: Only this object's, as ``TYPE:ID`` (e.g. ``job:12``).
            after: Only events with a larger id (to page on).
            limit: At most this many.

        Returns:
            The events.

        """
        return self.http.get("/events", list[EventOut], project=project, object=object, after=after or None,
                             limit=limit)

    def lineage(self, slug: str, object: str) -> Lineage:
        """Where an artefact came from and what was made from it: scenes and labels → dataset → run → model → maps.

        Args:
            slug: The project.
            object: The artefact as ``TYPE:ID``, e.g. ``dataset:NAME@VERSION``.

        Returns:
            Its nodes and edges.

        Raises:
            NotFound: The object is in no lineage of the project.
            Invalid: ``object`` is not ``TYPE:ID``.

        """
        return self.http.get(f"/projects/{segment(slug)}/lineage", Lineage, object=object)


    # the model registry

    def register_model(self, slug: str, run_id: str, name: str, alias: str | None = None) -> ModelVersionOut:
        """Register a run's model package as a new version of registered model ``name`` (reviewer or admin).

        Args:
            slug: The project.
            run_id: The run (32 hex digits) whose package to register.
            name: The registered model (made if new).
            alias: An alias to point at the new version (``champion``), moved from the version it named.

        Returns:
            The new version (``ref`` is ``models:/NAME/VERSION``).

        Raises:
            NotFound: No such run in the project.
            Invalid: The run has no model package, or a malformed name or alias.

        """
        body = {"run_id": run_id, "name": name, **({"alias": alias} if alias else {})}
        return self.http.send("POST", f"/projects/{segment(slug)}/models", ModelVersionOut, body)

    def set_alias(self, slug: str, name: str, alias: str, version: int | str) -> AliasOut:
        """Point an alias of registered model ``name`` at ``version`` (its ``previous`` is the version it named).

        Raises:
            NotFound: No such model or version.
            Invalid: A malformed or reserved alias (``latest``, ``vN``).

        """
        path = f"/projects/{segment(slug)}/models/{segment(name)}/aliases/{segment(alias)}"
        return self.http.send("PUT", path, AliasOut, {"version": int(version)})

    def delete_alias(self, slug: str, name: str, alias: str) -> AliasOut:
        """Remove an alias of registered model ``name``.

        Raises:
            NotFound: No such model, or the alias is not set.

        """
        path = f"/projects/{segment(slug)}/models/{segment(name)}/aliases/{segment(alias)}"
        return self.http.send("DELETE", path, AliasOut)


def sign_in_token(url: str, username: str, password: str, name: str, expires_days: float | None = 90,
                  timeout: float = 30.0, transport: httpx.BaseTransport | None = None) -> NewTokenOut:
    """Sign in with a password and make an API token, then end the browser session it took.

    Args:
        url: The server.
        username: The user.
        password: Their password.
        name: The new token's name.
        expires_days: Days until the token expires (None: until revoked).
        timeout: Seconds to wait for each answer.
        transport: An httpx transport (None: the network).

    Returns:
        The token, with its secret.

    Raises:
        Unauthenticated: Wrong user name or password.
        TooManyRequests: Too many failed sign-ins.
        Unavailable: The server cannot be reached.

    """
    with closing(Http(url, None, timeout, transport)) as http:  # no token: the session's cookies instead
        login = parse(http.request("POST", "/auth/login", json={"username": username, "password": password}).json(),
                      LoginOut, http.url)
        csrf = {"X-CSRF-Token": login.csrf_token}
        made = http.request("POST", "/tokens", json={"name": name, "expires_days": expires_days}, headers=csrf)
        http.request("POST", "/auth/logout", headers=csrf)
        return parse(made.json(), NewTokenOut, http.url)  # type: ignore[no-any-return]
