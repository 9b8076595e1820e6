"""Progress display for long jobs (Rich), silent when not attached to a terminal or disabled."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)


def enabled() -> bool:
    """Progress bars show unless EOENGINE_PROGRESS=0."""
    return os.environ.get("EOENGINE_PROGRESS", "1") != "0"


def make_progress() -> Progress:
    """A Rich progress bar with count, elapsed and remaining time."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled(),
        transient=False,
        refresh_per_second=4 if sys.stderr.isatty() else 0.5,
    )


@contextmanager
def polled(description: str, total: int, poll: Callable[[], int], every: float = 0.5) -> Iterator[None]:
    """Show progress of work done elsewhere (other processes) by polling a counter."""
    stop = threading.Event()
    with make_progress() as bar:
        task = bar.add_task(description, total=total)

        def loop() -> None:
            while not stop.wait(every):
                bar.update(task, completed=poll())

        t = threading.Thread(target=loop, daemon=True)
        t.start()
        try:
            yield
        finally:
            stop.set()
            t.join()
            bar.update(task, completed=poll())
