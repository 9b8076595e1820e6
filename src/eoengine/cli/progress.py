"""The CLI's progress reporter: Rich bars on stderr, silenced by ``EOENGINE_PROGRESS=0``."""

from __future__ import annotations

import os
import sys

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from eoengine.progress import ProgressTask


def enabled() -> bool:
    """Whether progress shows: unless ``EOENGINE_PROGRESS=0``.

    Returns:
        False when the environment silences progress.

    """
    return os.environ.get("EOENGINE_PROGRESS", "1") != "0"


class _Bar:
    """One task shown as its own Rich progress bar."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self.progress, self.id = progress, task

    def advance(self, steps: int = 1) -> None:
        """Move the bar ``steps`` steps on (see :meth:`eoengine.progress.ProgressTask.advance`)."""
        self.progress.advance(self.id, steps)

    def update(self, completed: int) -> None:
        """Set the steps done (see :meth:`eoengine.progress.ProgressTask.update`)."""
        self.progress.update(self.id, completed=completed)

    def close(self) -> None:
        """Stop drawing; the bar stays on screen as it ended."""
        self.progress.stop()


class RichReporter:
    """Progress bars with count, elapsed and remaining time, one per task.

    Bars go to stderr, redrawn four times a second in a terminal and every two seconds
    otherwise (a file or pipe gets the final state); none show when ``EOENGINE_PROGRESS=0``.
    """

    def __init__(self, console: Console | None = None) -> None:
        self.out = console or Console(stderr=True)

    @property
    def console(self) -> bool:
        """Progress shows on this process's console unless ``EOENGINE_PROGRESS=0``."""
        return enabled()

    def task(self, description: str, total: int, completed: int = 0) -> ProgressTask:
        """Start a bar.

        Args:
            description: Shown left of the bar.
            total: Steps the bar counts to.
            completed: Steps already done.

        Returns:
            The bar, as a task to advance and close.

        """
        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.out,
            disable=not enabled(),
            transient=False,
            refresh_per_second=4 if sys.stderr.isatty() else 0.5,
        )
        progress.start()
        return _Bar(progress, progress.add_task(description, total=total, completed=completed))
