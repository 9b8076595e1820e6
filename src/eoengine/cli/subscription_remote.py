"""``eoengine subscription ...`` against a platform server: create, list, show, pause, resume, cancel, run now.

They join the group of :mod:`eoengine.cli.subscription` (``run`` and ``dry-run`` of a spec file, without
a server), so ``subscription_app`` is imported from here to have every command.

They use the server ``eoengine remote login`` saved; ``--server URL`` checks that it is that one
(a token is never sent to another server). A spec file is read as ``eoengine subscription run``
reads it (``area`` may name a GeoJSON file next to it), but its paths are the project's on the
server: ``source`` left out is the project's imagery catalog.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from eoengine.cli.remote import JsonOpt, out, print_json, when
from eoengine.cli.subscription import subscription_app
from eoengine.errors import Invalid

if TYPE_CHECKING:
    from eoengine.client import Client
    from eoengine.platform.schemas import SubscriptionOut

ProjectOpt = Annotated[str, typer.Option("--project", "-p", help="The project's slug on the server")]
ServerOpt = Annotated[str | None, typer.Option("--server", help="The server (must be the one 'eoengine remote login' "
                                                                "saved)")]
IdArg = Annotated[int, typer.Argument(help="The subscription's id")]


def _client(server: str | None) -> Client:
    """The saved server's client, checked to be ``server`` when one is named."""
    from eoengine.client import Client
    from eoengine.client.http import server_url

    client = Client.from_saved()
    if server is not None and server_url(server) != client.url:
        client.close()
        raise Invalid(f"the saved server is {client.url}, not {server_url(server)}",
                      f"sign in to it first: eoengine remote login {server}")
    return client


def _table(title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    out.print(table)


def _line(sub: SubscriptionOut) -> str:
    due = when(sub.next_due) or "never"
    return f"subscription {sub.id} {sub.name!r} on {sub.project}: {sub.state}, next due {due}, {sub.runs} run(s)"


@subscription_app.command("create")
def create(spec_file: Annotated[Path, typer.Argument(help="The spec (YAML or JSON)")], project: ProjectOpt,
           server: ServerOpt = None, as_json: JsonOpt = False) -> None:
    """Create a subscription on a project from a spec file; it is checked by the server (model, area, cadence)."""
    from eoengine.subscriptions.spec import read_spec

    data = read_spec(spec_file, local=False)
    if not isinstance(data, dict):
        raise Invalid(f"{spec_file} holds a {type(data).__name__}, not a subscription spec",
                      "write name, area, model, cadence and start as keys")
    with _client(server) as client:
        made = client.create_subscription(project, data)
    if as_json:
        print_json(made)
    else:
        out.print(_line(made))


@subscription_app.command("list")
def list_(project: ProjectOpt, server: ServerOpt = None, state: Annotated[str | None, typer.Option(
        help="Only: pending, active, suspended, completed, cancelled or failed")] = None, as_json: JsonOpt = False) -> None:
    """A project's subscriptions: state, cadence, model, next due time, runs."""
    with _client(server) as client:
        found = client.subscriptions(project, state)
    if as_json:
        print_json(found)
        return
    _table(f"{project}: {len(found)} subscription(s)", ("id", "name", "state", "cadence", "model", "next due", "runs", "by"),
           [(str(s.id), s.name, s.state, str(s.spec["cadence"]), str(s.spec["model"]), when(s.next_due), str(s.runs),
             s.created_by or "") for s in found])


@subscription_app.command("show")
def show(sub_id: IdArg, project: ProjectOpt, server: ServerOpt = None, as_json: JsonOpt = False) -> None:
    """One subscription: its state, schedule and spec (webhook secrets masked)."""
    with _client(server) as client:
        found = client.subscription(project, sub_id)
    if as_json:
        print_json(found)
        return
    out.print(_line(found))
    out.print_json(data=found.spec)


def _change(action: str, sub_id: int, project: str, server: str | None, as_json: bool) -> None:
    with _client(server) as client:
        changed = client.change_subscription(project, sub_id, action)
    if as_json:
        print_json(changed)
    else:
        out.print(_line(changed))


@subscription_app.command("pause")
def pause(sub_id: IdArg, project: ProjectOpt, server: ServerOpt = None, as_json: JsonOpt = False) -> None:
    """Suspend a subscription: nothing runs until it is resumed."""
    _change("pause", sub_id, project, server, as_json)


@subscription_app.command("resume")
def resume(sub_id: IdArg, project: ProjectOpt, server: ServerOpt = None, as_json: JsonOpt = False) -> None:
    """Resume a suspended (or failed) subscription; a due time missed meanwhile runs once."""
    _change("resume", sub_id, project, server, as_json)


@subscription_app.command("cancel")
def cancel(sub_id: IdArg, project: ProjectOpt, server: ServerOpt = None, as_json: JsonOpt = False) -> None:
    """Cancel a subscription for good (its creator or a project admin); its maps and statistics stay."""
    _change("cancel", sub_id, project, server, as_json)


@subscription_app.command("run-now")
def run_now(sub_id: IdArg, project: ProjectOpt, server: ServerOpt = None,
            wait: Annotated[bool, typer.Option("--wait", help="Wait for the run job; fail if it fails")] = False,
            as_json: JsonOpt = False) -> None:
    """Run an active subscription now (a run job), without waiting for its next due time."""
    with _client(server) as client:
        job = client.run_subscription(project, sub_id)
        if wait:
            job.wait()
        if as_json:
            print_json(job.info)
        else:
            out.print(f"job {job.id} ({job.info.kind}) {job.state} on {project}")
        if wait:
            job.raise_for_state()


@subscription_app.command("runs")
def runs(sub_id: IdArg, project: ProjectOpt, server: ServerOpt = None, as_json: JsonOpt = False) -> None:
    """A subscription's recorded runs, newest first: key, due time, status, job."""
    with _client(server) as client:
        found = client.subscription_runs(project, sub_id)
    if as_json:
        print_json(found)
        return
    _table(f"subscription {sub_id}: {len(found)} run(s)", ("run", "key", "due", "status", "job"),
           [(str(r.id), r.key, when(r.due), r.status, str(r.job_id or "")) for r in found])
