"""Which tracked runs are really running: a lock held by the training process.

MLflow marks a run FINISHED, FAILED or KILLED when its process ends it; a process killed
outright (SIGKILL, out of memory, a lost machine) leaves it RUNNING for ever. The training
process therefore holds an exclusive ``flock`` on ``<run dir>/running.lock`` for as long
as it trains: the kernel drops the lock when the process dies however it dies, so a RUNNING
run whose lock can be taken has no process left, and the next start marks it KILLED.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

LOCK = "running.lock"


@contextmanager
def running(run_dir: Path) -> Iterator[None]:
    """Hold the run's lock while the block runs (the training process calls this).

    Args:
        run_dir: the run's folder (``<output_dir>/runs/<run id>``).

    Yields:
        Nothing; the lock is held until the block ends or the process dies.

    """
    with (run_dir / LOCK).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def process_gone(run_dir: Path) -> bool:
    """True when the run's folder has a lock that no process holds any more.

    Args:
        run_dir: the run's folder.

    Returns:
        False for a run still training, and for a run without a lock (another machine's).

    """
    path = run_dir / LOCK
    if not path.exists():
        return False
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
    return True


def mark_interrupted(uri: str, experiment_id: str, runs_root: Path) -> list[str]:
    """Mark the experiment's RUNNING runs whose training process is gone as KILLED.

    Args:
        uri: the MLflow tracking URI.
        experiment_id: the experiment whose runs to check.
        runs_root: the project's ``runs`` folder, holding one folder per run.

    Returns:
        The ids of the runs marked.

    """
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    marked = []
    for run in client.search_runs([experiment_id], "attributes.status = 'RUNNING'", max_results=1000):
        run_id = run.info.run_id
        if process_gone(runs_root / run_id):
            client.set_tag(run_id, "eoengine.interrupted", "its process ended without finishing the run")
            client.set_terminated(run_id, "KILLED")
            marked.append(run_id)
            log.info("run %s was left RUNNING by a process that is gone: marked KILLED", run_id)
    return marked
