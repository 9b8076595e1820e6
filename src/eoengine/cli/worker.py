"""``eoengine worker``: run the platform's queued jobs on this machine (any number of workers per database)."""

from __future__ import annotations

from typing import Annotated

import typer

from eoengine.cli.server import CustomCodeOpt, DbOpt, HomeOpt, set_custom_code, settings_from

ConcurrencyOpt = Annotated[int, typer.Option("--concurrency", min=1, help="Jobs run at once by one worker")]
StaleOpt = Annotated[float, typer.Option("--stale-after", min=1.0, help="Seconds without a heartbeat after which a "
                                                                          "worker counts as gone and its jobs re-queued")]


def worker(home: HomeOpt = None, db: DbOpt = None, concurrency: ConcurrencyOpt = 1, stale_after: StaleOpt = 30.0,
           max_attempts: Annotated[int, typer.Option(min=1, help="Starts of a job before a worker that stops "
                                                                 "answering fails it")] = 3,
           grace: Annotated[float, typer.Option(min=0.0, help="Seconds a cancelled job gets between SIGTERM "
                                                              "and SIGKILL")] = 10.0,
           wait_db: Annotated[float, typer.Option(min=0.0, help="Seconds to wait for the database at start")] = 60.0,
           allow_custom_code: CustomCodeOpt = False) -> None:
    """Claim and run queued jobs until interrupted (SIGTERM or Ctrl-C re-queue the jobs running)."""
    from sqlalchemy.exc import DBAPIError

    from eoengine.errors import Unavailable, first_line
    from eoengine.platform.db.engine import redact
    from eoengine.platform.db.migrate import upgrade
    from eoengine.platform.queue import retrying
    from eoengine.platform.settings import Platform
    from eoengine.platform.worker import Worker

    settings = settings_from(home, db, stale_after_s=stale_after, custom_code=allow_custom_code)
    set_custom_code(allow_custom_code)
    platform = Platform(settings)
    try:
        retrying(lambda: upgrade(platform.db), "migrating the database", deadline_s=wait_db)
    except DBAPIError as exc:
        raise Unavailable(f"cannot reach the database {redact(settings.database_url)}: {first_line(exc.orig or exc)}",
                          "check --db (or EOENGINE_DB) and that the database server runs") from None
    settings.jobs_dir.mkdir(parents=True, exist_ok=True)
    run = Worker(platform, concurrency=concurrency, max_attempts=max_attempts, grace_s=grace)
    typer.echo(f"eoengine worker {run.name}: {concurrency} job(s) at once, home {settings.home}", err=True)
    run.run()

