"""Progress of long jobs as a protocol: core code reports, the caller decides how it shows.

Core functions (a dataset build, a fetch, a prediction, a training run) report to the
*current reporter*, held in a context variable: by default a :class:`NullReporter`, which
shows nothing. An adapter installs its own with :func:`using_reporter` — the CLI installs
Rich progress bars (``eoengine.cli.progress``), a job runner one that records progress
where its users can read it::

    with using_reporter(MyReporter()):
        build_dataset(cfg)

A reporter hands out one :class:`ProgressTask` per unit of work (``task(description,
total)``), which the core advances and closes when the work ends, failed or not.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol


class ProgressTask(Protocol):
    """One unit of work being reported: ``total`` steps, of which some are done."""

    def advance(self, steps: int = 1) -> None:
        """Count ``steps`` more steps as done.

        Args:
            steps: How many steps were completed since the last report.

        """

    def update(self, completed: int) -> None:
        """Set how many steps are done in all (work counted elsewhere, e.g. by other processes).

        Args:
            completed: Steps done so far.

        """

    def close(self) -> None:
        """End the task: the work finished or stopped; no more reports follow."""


class ProgressReporter(Protocol):
    """Where core code reports the progress of its long jobs (see the module docs)."""

    @property
    def console(self) -> bool:
        """Whether progress shows on this process's console (its stdout and stderr).

        When it does, training leaves its progress to Lightning's own display (bars in a
        terminal, a line per epoch into a file or pipe) instead of reporting an epochs task.
        """

    def task(self, description: str, total: int, completed: int = 0) -> ProgressTask:
        """Start reporting a unit of work.

        Args:
            description: What is being done, e.g. ``"building chips"``.
            total: Steps the work has.
            completed: Steps already done (a resumed job).

        Returns:
            The task to advance and close.

        """


class _NullTask:
    """A task nobody watches."""

    def advance(self, steps: int = 1) -> None:
        """Do nothing (see :meth:`ProgressTask.advance`)."""

    def update(self, completed: int) -> None:
        """Do nothing (see :meth:`ProgressTask.update`)."""

    def close(self) -> None:
        """Do nothing (see :meth:`ProgressTask.close`)."""


class NullReporter:
    """The default reporter: it shows nothing."""

    console = False

    def task(self, description: str, total: int, completed: int = 0) -> ProgressTask:
        """A task that records nothing.

        Args:
            description: Ignored.
            total: Ignored.
            completed: Ignored.

        Returns:
            A task whose reports go nowhere.

        """
        return _NullTask()


_NULL = NullReporter()
_current: ContextVar[ProgressReporter | None] = ContextVar("eoengine_progress_reporter", default=None)


def current_reporter() -> ProgressReporter:
    """The reporter core code reports to here (this thread or task's context).

    Returns:
        The reporter installed with :func:`using_reporter`, else a :class:`NullReporter`.

    """
    reporter = _current.get()
    return _NULL if reporter is None else reporter


@contextmanager
def using_reporter(reporter: ProgressReporter) -> Iterator[ProgressReporter]:
    """Make ``reporter`` the current one for the duration of the block.

    The reporter holds for the current context: threads started inside the block begin
    with the default one (the core creates its tasks where it was called, so threads it
    starts report through those).

    Args:
        reporter: Where progress goes while the block runs.

    Yields:
        The reporter.

    """
    token = _current.set(reporter)
    try:
        yield reporter
    finally:
        _current.reset(token)


@contextmanager
def progress_task(description: str, total: int, completed: int = 0) -> Iterator[ProgressTask]:
    """A task of the current reporter, closed when the block ends (whether or not it fails).

    Args:
        description: What is being done.
        total: Steps the work has.
        completed: Steps already done.

    Yields:
        The task to advance.

    """
    task = current_reporter().task(description, total, completed)
    try:
        yield task
    finally:
        task.close()


@contextmanager
def polled(description: str, total: int, poll: Callable[[], int], every: float = 0.5) -> Iterator[None]:
    """Report progress of work done elsewhere (other processes) by polling a counter.

    Args:
        description: What is being done.
        total: Steps the work has.
        poll: Returns how many steps are done; called every ``every`` seconds and at the end.
        every: Seconds between polls.

    Yields:
        Nothing; the work runs inside the block.

    """
    stop = threading.Event()
    with progress_task(description, total) as task:

        def loop() -> None:
            while not stop.wait(every):
                task.update(poll())

        t = threading.Thread(target=loop, daemon=True)
        t.start()
        try:
            yield
        finally:
            stop.set()
            t.join()
            task.update(poll())
