"""``eoengine server init|run``: the team platform on one machine (SQLite and one worker by default)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from eoengine.platform.settings import PlatformSettings

server_app = typer.Typer(help="The team platform: projects, people, jobs, datasets, runs, models and maps.",
                         no_args_is_help=True)

HomeOpt = Annotated[Path | None, typer.Option("--home", help="Server folder (default: $EOENGINE_HOME or ~/.eoengine-server)")]
DbOpt = Annotated[str | None, typer.Option("--db", help="Database URL (default: SQLite under --home); "
                                                          "postgresql+psycopg://USER:PASSWORD@HOST/DB for teams")]
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
CustomCodeOpt = Annotated[bool, typer.Option(
    "--allow-custom-code", help="Let jobs run a config's own Python code (models and losses by dotted path): "
                                "anyone who may edit a project's config can then run any code as this user")]


def set_custom_code(allowed: bool) -> None:
    """Set, for this process and the ones it starts, whether custom code by dotted path is imported.

    Args:
        allowed: Whether it is.

    """
    import os

    from eoengine.runtime import CUSTOM_CODE_ENV

    os.environ[CUSTOM_CODE_ENV] = "1" if allowed else "0"


def settings_from(home: Path | None, db: str | None, **extra: object) -> PlatformSettings:
    """The platform settings from the command's options (and ``EOENGINE_DB``)."""
    from eoengine.platform.settings import PlatformSettings, default_home

    return PlatformSettings(home=(home or default_home()).expanduser().resolve(),
                            db_url=db or os.environ.get("EOENGINE_DB", ""),
                            examples=EXAMPLES if EXAMPLES.is_dir() else None, **extra)  # type: ignore[arg-type]


@server_app.command("init")
def init(home: HomeOpt = None, db: DbOpt = None,
         admin: Annotated[str, typer.Option(help="The first admin's user name")] = "admin",
         password_env: Annotated[str | None, typer.Option(help="Read the admin's password from this environment "
                                                                 "variable (default: a random one, printed once)")] = None,
         ) -> None:
    """Create the database and the first admin; prints their password and an API token, once."""
    from eoengine.errors import Invalid
    from eoengine.platform.admin import init_server
    from eoengine.platform.db.engine import redact
    from eoengine.platform.settings import Platform

    settings = settings_from(home, db)
    password = None
    if password_env:
        password = os.environ.get(password_env)
        if not password:
            raise Invalid(f"environment variable {password_env} is not set", f"export {password_env}=PASSWORD first")
    first = init_server(Platform(settings), admin, password)
    typer.echo(f"server home: {settings.home}")
    typer.echo(f"database: {redact(settings.database_url)}")
    typer.echo(f"admin: {first.username}")
    if not password_env:
        typer.echo(f"password (shown once): {first.password}")
    typer.echo(f"API token (shown once): {first.token}")
    typer.echo("next: eoengine server run, then open http://127.0.0.1:8000/ or 'eoengine remote login'")


@server_app.command("run")
def run(home: HomeOpt = None, db: DbOpt = None,
        host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
        secure_cookies: Annotated[bool | None, typer.Option(
            "--secure-cookies/--insecure-cookies",
            help="Send session cookies over HTTPS only (default: on, except on a loopback address)")] = None,
        data_root: Annotated[list[Path] | None, typer.Option(
            "--data-root", help="A folder outside the projects that configs may read imagery from (repeatable)")] = None,
        import_root: Annotated[list[Path] | None, typer.Option(
            "--import-root", help="A folder under which site admins may import CLI project folders in place "
                                  "(POST /api/v1/projects with 'folder'; repeatable)")] = None,
        max_upload_mb: Annotated[float, typer.Option(help="Largest upload in MB")] = 2048.0,
        workers: Annotated[int, typer.Option(min=0, help="Worker processes started with the server "
                                                         "(0: run 'eoengine worker' yourself)")] = 1,
        concurrency: Annotated[int, typer.Option(min=1, help="Jobs each of those workers runs at once")] = 1,
        allow_custom_code: CustomCodeOpt = False,
        stale_after: Annotated[float, typer.Option(min=1.0, help="Seconds without a heartbeat after which a "
                                                                 "worker counts as gone")] = 30.0,
        ) -> None:
    """Serve the API (/api/v1, documented at /docs) and the web app (/) until interrupted, with its workers."""
    import uvicorn

    from eoengine.platform.app import create_platform_app
    from eoengine.platform.db.migrate import upgrade
    from eoengine.platform.settings import Platform
    from eoengine.platform.worker import start_worker_process, stop_process

    loopback = host in ("127.0.0.1", "localhost", "::1")
    settings = settings_from(home, db, secure_cookies=not loopback if secure_cookies is None else secure_cookies,
                             data_roots=tuple(p.resolve() for p in data_root or ()), max_upload_mb=max_upload_mb,
                             import_roots=tuple(p.resolve() for p in import_root or ()),
                             stale_after_s=stale_after, custom_code=allow_custom_code)
    set_custom_code(allow_custom_code)
    platform = Platform(settings)
    upgrade(platform.db)
    app = create_platform_app(settings, platform)
    started = [start_worker_process(settings, concurrency) for _ in range(workers)]
    typer.echo(f"eoengine platform on http://{host}:{port}/ (API: /api/v1, docs: /docs), {workers} worker(s)")
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        for proc in started:
            stop_process(proc, 30.0)


@server_app.command("import")
def import_folder(folder: Annotated[Path, typer.Argument(help="The CLI project folder (holding its eoengine.yaml)")],
                  name: Annotated[str, typer.Option("--name", help="The project's name (its slug must be free)")],
                  home: HomeOpt = None, db: DbOpt = None,
                  data_root: Annotated[list[Path] | None, typer.Option(
                      "--data-root", help="A folder outside the project its config may read imagery from "
                                          "(as the server's --data-root; repeatable)")] = None,
                  ) -> None:
    """Register a CLI project folder in place as a project, indexing its datasets, runs, models and maps."""
    from eoengine.platform.db.migrate import upgrade
    from eoengine.platform.importing import import_project
    from eoengine.platform.settings import Platform

    settings = settings_from(home, db, data_roots=tuple(p.resolve() for p in data_root or ()))
    settings.home.mkdir(parents=True, exist_ok=True)
    platform = Platform(settings)
    upgrade(platform.db)
    with platform.db.write() as session:
        project, indexed = import_project(session, settings, str(folder.expanduser().absolute()), name, None, None)
        slug = project.slug
    platform.db.dispose()
    typer.echo(f"imported {folder} as project {slug!r} ({indexed} artefact(s) indexed); site admins manage it")
