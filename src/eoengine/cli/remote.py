"""``eoengine remote ...``: use a platform server from the command line (sign in, projects, jobs, logs).

``remote login`` checks a token with the server and saves ``{url, token}`` in
``~/.config/eoengine/remote.json`` (mode 0600; ``EOENGINE_CONFIG_DIR`` moves it); the other
commands use it. ``remote submit PROJECT -- <command line>`` sends the job spec the command
line builds (``eoengine dataset build eoengine.yaml`` → ``-- dataset build eoengine.yaml``).
The token is never printed.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from eoengine.errors import Invalid, NotFound

if TYPE_CHECKING:
    from pydantic import BaseModel

    from eoengine.client import Client
    from eoengine.platform.schemas import JobOut

remote_app = typer.Typer(help="Use a platform server: sign in, list projects, submit, follow and cancel jobs.",
                         no_args_is_help=True)
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 220)  # whole tables when piped

EXAMPLE = '{"kind": "build"}'
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")]


def _client() -> Client:
    from eoengine.client import Client

    return Client.from_saved()


def print_json(items: BaseModel | Sequence[BaseModel]) -> None:
    """Print an answer (a model or a list of them) as indented JSON."""
    data: Any = ([i.model_dump(mode="json") for i in items] if isinstance(items, Sequence)
                 else items.model_dump(mode="json"))
    print(json.dumps(data, indent=2))


def when(value: Any) -> str:
    """A time as the tables show it (empty for None)."""
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def _token(token_env: str | None, username: str | None, password: str | None, url: str, expires_days: float) -> str:
    """The token to save: from an environment variable, a sign-in with a password, or typed in."""
    from eoengine.client import sign_in_token

    if token_env and username:
        raise Invalid("give --token-env or --username, not both", "use a token, or sign in with a password to make one")
    if token_env:
        token = os.environ.get(token_env, "")
        if not token.strip():
            raise Invalid(f"environment variable {token_env} is not set", f"export {token_env}=TOKEN first")
        return token
    if username:
        password = password or typer.prompt(f"password of {username}", hide_input=True)
        made = sign_in_token(url, username, password, f"eoengine remote login on {socket.gethostname()}", expires_days)
        return made.token
    return str(typer.prompt("API token (eoe_...)", hide_input=True))


@remote_app.command("login")
def login(
    url: Annotated[str, typer.Argument(help="The server, e.g. http://127.0.0.1:8000")],
    token_env: Annotated[str | None, typer.Option(help="Read the API token from this environment variable")] = None,
    username: Annotated[str | None, typer.Option(help="Sign in as this user and make a token (asks the password)")
                        ] = None,
    password: Annotated[str | None, typer.Option(help="The password (default: asked; a flag shows in the history)")
                        ] = None,
    expires_days: Annotated[float, typer.Option(help="With --username: days until the new token expires")] = 90,
) -> None:
    """Check an API token with the server and save it for the other commands (asks for it by default)."""
    from eoengine.client import Client, Remote, save_remote
    from eoengine.client.http import checked_token

    token = checked_token(_token(token_env, username, password, url, expires_days))
    with Client(url, token) as client:
        me = client.me()
        path = save_remote(Remote(client.url, token))
    admin = " (site admin)" if me.is_admin else ""
    out.print(f"signed in to {client.url} as {me.username}{admin}; saved in {path}")


@remote_app.command("projects")
def projects(as_json: JsonOpt = False) -> None:
    """Your projects on the server, with your role on each."""
    with _client() as client:
        found = client.projects()
    if as_json:
        print_json(found)
        return
    table = Table(title=f"{client.url}: {len(found)} project(s)")
    for col in ("slug", "name", "role", "created"):
        table.add_column(col)
    for p in found:
        table.add_row(p.slug, p.name, p.role or "(site admin)", when(p.created_at))
    out.print(table)


def _spec(command: list[str], spec_file: Path | None) -> Any:
    """The job spec of a command line (built as the command would build it) or of a JSON file."""
    from eoengine.cli.main import JOB_COMMANDS, spec_from_args

    if bool(command) == (spec_file is not None):
        raise Invalid("give the job as a command line after '--' or as --spec FILE.json, one of the two",
                      "e.g. eoengine remote submit PROJECT -- dataset build eoengine.yaml")
    if spec_file is None:
        try:
            return spec_from_args(command)
        except typer.TyperException as exc:  # the command's own usage error
            name = next(" ".join(c) for c in JOB_COMMANDS if tuple(command[: len(c)]) == c)
            raise Invalid(f"'{' '.join(command)}': {exc.format_message()}",
                          f"fix the job's flags (see eoengine {name} --help)") from None
    try:
        data = json.loads(spec_file.read_text())
    except FileNotFoundError:
        raise NotFound(f"{spec_file} not found", "pass a JSON file with the job spec") from None
    except ValueError as exc:
        raise Invalid(f"{spec_file} is not JSON: {exc}", f"write the spec as a JSON object, e.g. {EXAMPLE}") from None
    if not isinstance(data, dict):
        raise Invalid(f"{spec_file} holds a {type(data).__name__}, not a job spec",
                      f"write a JSON object, e.g. {EXAMPLE}")
    return data


@remote_app.command("submit")
def submit(
    project: Annotated[str, typer.Argument(help="The project's slug")],
    command: Annotated[list[str] | None, typer.Argument(
        help="After '--': the job's command line, e.g. train eoengine.yaml")] = None,
    spec_file: Annotated[Path | None, typer.Option("--spec", help="The job spec as a JSON file instead")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the job's log until it ends; fail if it fails")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Queue a job on a project: its spec from a command line (after '--') or a JSON file; paths are the project's."""
    spec = _spec(list(command or []), spec_file)
    with _client() as client:
        job = client.submit(project, spec)
        if not as_json:
            out.print(f"job {job.id} ({job.info.kind}) {job.state} on {project}")
        if wait:
            if not as_json:
                for line in job.logs(follow=True):
                    print(line, flush=True)
            job.wait()
            _finished(job.info, as_json)
            job.raise_for_state()
        elif as_json:
            print_json(job.info)


def _finished(info: JobOut, as_json: bool) -> None:
    if as_json:
        print_json(info)
    else:
        out.print(f"job {info.id} {info.state}" + (f": {json.dumps(info.result)}" if info.result else ""))


def _progress(info: JobOut) -> str:
    p = info.progress or {}
    done, total = p.get("completed"), p.get("total")
    count = f"{done:g}/{total:g}" if isinstance(done, int | float) and isinstance(total, int | float) else ""
    return " ".join(x for x in (count, str(p.get("description") or "")) if x)


@remote_app.command("jobs")
def jobs(
    project: Annotated[str, typer.Argument(help="The project's slug")],
    state: Annotated[str | None, typer.Option(help="Only jobs in this state: queued, running, succeeded, failed or "
                                                   "cancelled")] = None,
    as_json: JsonOpt = False,
) -> None:
    """A project's jobs, newest first: kind, state, progress, who started them and when."""
    with _client() as client:
        found = client.jobs(project, state)
    if as_json:
        print_json(found)
        return
    table = Table(title=f"{project}: {len(found)} job(s)")
    for col in ("job", "kind", "state", "progress", "by", "created", "finished"):
        table.add_column(col)
    for j in found:
        table.add_row(str(j.id), j.kind, j.state, _progress(j), j.created_by or "", when(j.created_at),
                      when(j.finished_at))
    out.print(table)


@remote_app.command("logs")
def logs(
    job_id: Annotated[int, typer.Argument(help="The job's id")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing as the job writes, until it ends")
                      ] = False,
) -> None:
    """A job's log (--follow: as it is written)."""
    with _client() as client:
        for line in client.job(job_id).logs(follow=follow):
            print(line, flush=True)


@remote_app.command("cancel")
def cancel(job_id: Annotated[int, typer.Argument(help="The job's id")]) -> None:
    """Cancel a job (yours as a reviewer, anyone's as the project's admin); an ended job stays as it ended."""
    with _client() as client:
        info = client.job(job_id).cancel()
    said = "cancelled" if info.state == "cancelled" else f"{info.state}, cancel requested" if info.cancel_requested \
        else f"already {info.state}"
    out.print(f"job {info.id} ({info.kind}): {said}")
