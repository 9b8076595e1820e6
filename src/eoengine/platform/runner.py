"""One attempt of one job, in a process of its own: ``python -m eoengine.platform.runner JOB_ID``.

A worker starts it in the project folder, in a new process group, with its output appended
to the job's log, and tells it the database, the server home and the attempt through the
environment (:data:`ENV_DB`, :data:`ENV_HOME`, :data:`ENV_WORKER`, :data:`ENV_ATTEMPT`). It
runs the job's spec with :func:`eoengine.jobs.run.run_spec` — what the CLI runs — reporting
progress into the job's row (at most twice a second), then records the outcome and indexes
the outputs, fenced by the attempt's lease and retried while the database is unreachable. A
``subscription-run`` job runs :func:`eoengine.platform.subscription_job.subscription_work` instead.

A rerun after an interruption continues where the stages resume by themselves (dataset build
markers, prediction checkpoints); a training continues its MLflow run, whose id the first
attempt recorded in the job's ``resume`` column as soon as the run existed.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from eoengine.errors import KINDS, EOError
from eoengine.jobs.specs import AnySpec, PredictAreaSpec, PrelabelSpec, TrainSpec, parse_spec
from eoengine.platform.db.engine import Database
from eoengine.platform.db.models import Job, Project
from eoengine.platform.projects import CONFIG
from eoengine.platform.queue import Lease, finish, report, retrying
from eoengine.platform.settings import PlatformSettings
from eoengine.progress import ProgressTask, using_reporter

if TYPE_CHECKING:
    from eoengine.sourcing.catalog import CatalogIndex

ENV_DB, ENV_HOME, ENV_WORKER, ENV_ATTEMPT = "EOENGINE_DB", "EOENGINE_HOME", "EOENGINE_JOB_WORKER", "EOENGINE_JOB_ATTEMPT"
PROGRESS_EVERY_S = 0.5
BUG_FIX = "this looks like a bug or a problem of the worker's machine: read the job's log, then report it"
log = logging.getLogger("eoengine.platform.runner")


class _Task:
    """A task of the :class:`JobReporter`: its counts go to the reporter's latest progress."""

    def __init__(self, reporter: JobReporter, description: str, total: int, completed: int) -> None:
        self.reporter, self.description, self.total, self.completed = reporter, description, total, completed
        reporter.show(self)

    def advance(self, steps: int = 1) -> None:
        """Count ``steps`` more steps done."""
        self.completed += steps
        self.reporter.show(self)

    def update(self, completed: int) -> None:
        """Set the steps done."""
        self.completed = completed
        self.reporter.show(self)

    def close(self) -> None:
        """The task ended: its last counts are written at the next flush."""
        self.reporter.show(self)


class JobReporter:
    """A progress reporter that writes ``{description, completed, total}`` into the job's row.

    Writes happen on a thread of their own at most every ``every`` seconds, and only when
    something changed; a write that fails (the database briefly down) is tried again at the
    next tick, and never stops the work. A training's MLflow run id is picked up when its
    first task starts (its run is active then) and written as the job's ``resume``.

    Args:
        db: The platform database.
        lease: The attempt whose row to write.
        every: Seconds between writes.

    """

    console = False

    def __init__(self, db: Database, lease: Lease, every: float = PROGRESS_EVERY_S) -> None:
        self.db, self.lease, self.every = db, lease, every
        self._lock = threading.Lock()
        self._pending: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="eoengine-job-progress", daemon=True)
        self._thread.start()

    def task(self, description: str, total: int, completed: int = 0) -> ProgressTask:
        """A task whose counts are written into the job (see :class:`eoengine.progress.ProgressReporter`).

        Args:
            description: What is being done.
            total: Steps the work has.
            completed: Steps already done.

        Returns:
            The task.

        """
        run_id = _active_run_id()
        if run_id:
            with self._lock:
                self._pending["resume"] = {"run_id": run_id}
        return _Task(self, description, total, completed)

    def show(self, task: _Task) -> None:
        """Make a task's counts the job's progress at the next write.

        Args:
            task: The task that changed.

        """
        with self._lock:
            self._pending["progress"] = {"description": task.description, "completed": task.completed,
                                         "total": task.total}

    def flush(self) -> None:
        """Write what changed since the last write (a failed write keeps it for the next)."""
        with self._lock:
            values, self._pending = self._pending, {}
        if not values:
            return
        try:
            report(self.db, self.lease, **values)
        except Exception as exc:  # noqa: BLE001 - progress must never stop the job
            log.debug("progress not written (%s); trying again", type(exc).__name__)
            with self._lock:
                self._pending = values | self._pending

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.flush()

    def close(self) -> None:
        """Stop the writer thread after a last write."""
        self._stop.set()
        self._thread.join()
        self.flush()


def _active_run_id() -> str | None:
    """The MLflow run active in this thread, if MLflow is loaded (a training has started its run)."""
    mlflow = sys.modules.get("mlflow")
    run = mlflow.active_run() if mlflow is not None else None
    return run.info.run_id if run is not None else None


def prepared_spec(job: Job, folder: Path) -> AnySpec:
    """The job's spec as it runs here: the project's MLflow store unless one is named, and a resumed training.

    Args:
        job: The job (its spec, and its ``resume`` from an earlier attempt).
        folder: The project folder (the process's working directory).

    Returns:
        The spec to run.

    """
    from eoengine.config.load import load_config
    from eoengine.tracking.store import tracking_uri

    spec = parse_spec(job.spec)
    if "tracking_uri" not in type(spec).model_fields:
        return spec
    cfg = load_config(folder / getattr(spec, "config", CONFIG))
    if getattr(spec, "tracking_uri", None) is None:
        spec = spec.model_copy(update={"tracking_uri": tracking_uri(cfg.output_path, cfg.training.tracking_uri)})
    run_id = (job.resume or {}).get("run_id")
    if isinstance(spec, TrainSpec) and spec.resume is None and run_id:
        from eoengine.training.train import resumable

        try:
            resumable(cfg.output_path, spec.tracking_uri or "", run_id)
        except EOError as exc:
            print(f"run {run_id} of the last attempt cannot be continued ({exc.problem}); starting a new run", flush=True)
        else:
            print(f"continuing run {run_id} of the last attempt", flush=True)
            spec = spec.model_copy(update={"resume": run_id})
    return spec


def refresh_catalog(db: Database, project_id: int, folder: Path) -> CatalogIndex:
    """Bring the project's imagery catalog up to date (its config's scenes, fetched scenes, uploads).

    A ``predict-area`` job that searches the project's catalog calls this first, so scenes
    fetched or uploaded since the catalog was last built are found.

    Args:
        db: The platform database.
        project_id: The job's project.
        folder: The project folder.

    Returns:
        The catalog.

    Raises:
        EOError: The project has no local imagery, or a scene cannot be read.

    """
    from eoengine.config.load import load_config
    from eoengine.platform.browse import imagery_artifacts
    from eoengine.platform.imagery import project_catalog

    with db.read() as session:
        project = session.get(Project, project_id)
        assert project is not None
        artifacts = imagery_artifacts(session, project)
        session.expunge_all()
    return project_catalog(load_config(folder / CONFIG), (folder / CONFIG).read_text(), folder, artifacts)


def ingest(db: Database, job: Job, spec: PrelabelSpec, folder: Path) -> None:
    """Store a pre-labelling job's result in its annotation tasks (after it ran), with the items' grids.

    Args:
        db: The platform database.
        job: The job.
        spec: Its spec.
        folder: The project folder.

    Raises:
        EOError: The result cannot be read or stored (a task frozen since), or the catalog cannot be read.

    """
    from eoengine.platform.annotation.grid import item_grid
    from eoengine.platform.annotation.suggestions import ingest_prelabel

    catalog = retrying(lambda: refresh_catalog(db, job.project_id, folder), "reading the project's imagery")
    grids = {r.item["id"]: item_grid(r.item) for r in catalog.records}
    retrying(lambda: ingest_prelabel(db, job, spec, folder, grids), "storing the suggestions")


OnSuccess = Callable[[Session, Job], object]
"""What a job's success writes in the transaction that records it (the index of its outputs)."""


def spec_work(db: Database, job: Job, folder: Path, reporter: JobReporter) -> tuple[dict[str, Any], OnSuccess]:
    """Run a job spec as the CLI runs it (:func:`eoengine.jobs.run.run_spec`), reporting progress into the job.

    Args:
        db: The platform database.
        job: The job.
        folder: The project folder.
        reporter: The job's progress reporter.

    Returns:
        The result (JSON) and what its success writes: the index of its outputs.

    Raises:
        EOError: The job failed.

    """
    from eoengine.jobs.run import run_spec
    from eoengine.platform.index import outputs_of, store_outputs

    spec = prepared_spec(job, folder)
    if isinstance(spec, PredictAreaSpec) and spec.catalog is None and spec.stac_api is None:
        retrying(lambda: refresh_catalog(db, job.project_id, folder), "reading the project's imagery")
    with using_reporter(reporter):
        result = run_spec(spec)
    if isinstance(spec, PrelabelSpec):
        ingest(db, job, spec, folder)
    outputs = outputs_of(result, spec, folder)
    return result.model_dump(mode="json"), lambda session, row: store_outputs(session, row, outputs)


def _outcome(db: Database, lease: Lease, job: Job, folder: Path) -> bool:
    """Run the job and record how it ended; True when it succeeded (and this attempt recorded it)."""
    from eoengine.platform.scheduler import KIND as SUBSCRIPTION_RUN
    from eoengine.platform.subscription_job import subscription_work

    reporter = JobReporter(db, lease)
    work = subscription_work if job.kind == SUBSCRIPTION_RUN else spec_work
    try:
        body, on_success = work(db, job, folder, reporter)
    except EOError as exc:
        print(f"error: {exc}", flush=True)
        failed = {"error": exc.problem, "fix": exc.fix or "read the job's log for the details",
                  "kind": type(exc).__name__ if type(exc).__name__ in KINDS else "EOError"}
    except Exception as exc:  # noqa: BLE001 - a bug still ends as a failed job with its traceback in the log
        traceback.print_exc()
        failed = {"error": f"the job failed: {type(exc).__name__}: {exc}"[:1000], "fix": BUG_FIX}
    else:
        failed = {}
    finally:
        reporter.close()
    if failed:
        recorded = retrying(lambda: finish(db, lease, "failed", error=failed), "recording the job's failure")
    else:
        print(f"done: {body}", flush=True)
        recorded = retrying(lambda: finish(db, lease, "succeeded", result=body, on_success=on_success),
                            "recording the job's result")
    if not recorded:
        print(f"not recorded: attempt {lease.attempt} no longer holds the job (it was re-queued)", flush=True)
    return recorded and not failed


def setup_logging() -> None:
    """Warnings and eoengine's own records into the log (stderr); other libraries' chatter left out."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("eoengine").setLevel(logging.INFO)
    logging.getLogger("apache_beam").setLevel(logging.CRITICAL)
    # Beam warns at import when some Google Cloud package is installed without BigQuery's; eoengine uses none
    logging.getLogger().addFilter(lambda record: "apitools not found" not in record.getMessage())


def main(argv: list[str] | None = None) -> int:
    """Run one attempt of a job (the worker's child process).

    Args:
        argv: ``[JOB_ID]`` (default: the command line's).

    Returns:
        The exit code: 0 when the job succeeded, 1 when it failed, 2 when not started by a worker, 3 when the job
        is no longer this attempt's.

    """
    from eoengine.runtime import tune_allocator

    args = sys.argv[1:] if argv is None else argv
    unset = [name for name in (ENV_DB, ENV_HOME, ENV_WORKER, ENV_ATTEMPT) if not os.environ.get(name)]
    if len(args) != 1 or not args[0].isdigit() or unset:
        print(f"error: a worker starts this with a job id and {', '.join(unset) or 'its environment'} set "
              "— run 'eoengine worker' instead", file=sys.stderr)
        return 2
    lease = Lease(int(args[0]), os.environ[ENV_WORKER], int(os.environ[ENV_ATTEMPT]))
    tune_allocator()
    setup_logging()
    db = Database(os.environ[ENV_DB])
    found = retrying(lambda: _load(db, lease), "loading the job")
    if found is None:
        print(f"job {lease.job_id}: attempt {lease.attempt} no longer holds it; nothing to do", flush=True)
        return 3
    job, slug = found
    folder = PlatformSettings(home=Path(os.environ[ENV_HOME])).projects_dir / slug
    started = time.monotonic()
    ok = _outcome(db, lease, job, folder)
    print(f"job {job.id} attempt {lease.attempt}: {'succeeded' if ok else 'failed'} in "
          f"{time.monotonic() - started:.1f} s", flush=True)
    db.dispose()
    return 0 if ok else 1


def _load(db: Database, lease: Lease) -> tuple[Job, str] | None:
    with db.read() as session:
        job = session.get(Job, lease.job_id)
        if job is None or (job.worker, job.attempts, job.state) != (lease.worker, lease.attempt, "running"):
            return None
        project = session.get(Project, job.project_id)
        assert project is not None
        return job, project.slug


if __name__ == "__main__":
    sys.exit(main())
