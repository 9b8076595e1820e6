"""A job on the server, followed from the client: refreshed, waited for, its log read or streamed, cancelled.

:meth:`Job.wait` returns the job's final state whatever it is (a failed job is an answer, not
an error of the client); :meth:`Job.raise_for_state` then raises the job's own error, of its
kind, when it failed or was cancelled — as ``httpx.Response.raise_for_status`` does for a status.
"""

from __future__ import annotations

import codecs
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from eoengine.client.http import Http
from eoengine.errors import KINDS, Conflict, EOError
from eoengine.platform.schemas import JobOut

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
"""The states a job ends in."""

LOG_OFFSET = "X-Log-Offset"
"""The header of a log page that gives the offset to read from next."""


class WaitTimeout(EOError, TimeoutError):
    """A job did not end within the time :meth:`Job.wait` was given."""


@dataclass(frozen=True)
class ServerEvent:
    """One server-sent event: its name (``message`` when unnamed), data and id."""

    event: str
    data: str
    id: str | None = None


def server_events(lines: Iterable[str]) -> Iterator[ServerEvent]:
    """The events of a ``text/event-stream`` body, given its lines.

    Args:
        lines: The body's lines, without their line ends.

    Yields:
        Each event, when the blank line that ends it arrives (comments and events without data are skipped).

    """
    event, ident = "message", None
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield ServerEvent(event, "\n".join(data), ident)
            event, data = "message", []
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "event":
            event = value
        elif field == "id":
            ident = value
    if data:
        yield ServerEvent(event, "\n".join(data), ident)


class Job:
    """A handle on one job: its latest known state in :attr:`info`.

    Args:
        http: The connection to the job's server.
        info: The job as the server last showed it.

    """

    def __init__(self, http: Http, info: JobOut) -> None:
        self._http = http
        self.info = info

    def __repr__(self) -> str:
        return f"Job({self.info.id}, {self.info.kind!r}, {self.info.state!r})"

    @property
    def id(self) -> int:
        """The job's id."""
        return self.info.id

    @property
    def state(self) -> str:
        """The state last seen: queued, running, succeeded, failed or cancelled."""
        return self.info.state

    @property
    def done(self) -> bool:
        """Whether the job had ended when last seen."""
        return self.info.state in TERMINAL

    def refresh(self) -> JobOut:
        """The job's state now (also kept in :attr:`info`).

        Returns:
            The job.

        Raises:
            EOError: The server's error (NotFound when the job is gone), or Unavailable.

        """
        self.info = self._http.get(f"/jobs/{self.id}", JobOut)
        return self.info

    def wait(self, timeout: float | None = None, poll: float = 1.0) -> JobOut:
        """Poll until the job ends, and return its final state (succeeded, failed or cancelled).

        Args:
            timeout: Seconds to wait at most (None: as long as it takes).
            poll: Seconds between two looks.

        Returns:
            The ended job; :meth:`raise_for_state` raises its error when it did not succeed.

        Raises:
            WaitTimeout: The job had not ended after ``timeout`` seconds.
            EOError: The server's error, or Unavailable.

        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.refresh().state not in TERMINAL:
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(f"job {self.id} is still {self.state} after {timeout:g} s",
                                  "wait longer, follow it with 'eoengine remote logs --follow', or cancel it")
            time.sleep(poll if deadline is None else max(0.0, min(poll, deadline - time.monotonic())))
        return self.info

    def raise_for_state(self) -> JobOut:
        """Raise the job's error when it failed or was cancelled (as last seen).

        Returns:
            The job, when it succeeded or has not ended.

        Raises:
            EOError: It failed: its own problem and fix, of the kind it names (a plain EOError otherwise).
            Conflict: It was cancelled.

        """
        if self.state == "failed":
            error = self.info.error or {}
            kind = KINDS.get(str(error.get("kind", "")), EOError)
            raise kind(f"job {self.id} ({self.info.kind}) failed: {error.get('error', 'no reason recorded')}",
                       error.get("fix") or f"read its log: eoengine remote logs {self.id}")
        if self.state == "cancelled":
            raise Conflict(f"job {self.id} ({self.info.kind}) was cancelled", "submit it again to run it")
        return self.info

    def cancel(self) -> JobOut:
        """Ask the server to cancel the job (its process group is stopped; an ended job stays as it is).

        Returns:
            The job after the request.

        Raises:
            EOError: Denied when the caller may not cancel it, the server's other errors, or Unavailable.

        """
        self.info = self._http.send("POST", f"/jobs/{self.id}/cancel", JobOut)
        return self.info

    def logs(self, follow: bool = False) -> Iterator[str]:
        """The job's log, line by line.

        Args:
            follow: Keep reading the log's stream (server-sent events) as the job writes it, until it ends.

        Yields:
            Each line, without its line end.

        Raises:
            EOError: The server's error, or Unavailable.

        """
        return self._follow() if follow else self._pages()

    def _pages(self) -> Iterator[str]:
        """The log written so far, read in pages from offset 0."""
        offset, rest, text = 0, "", codecs.getincrementaldecoder("utf-8")(errors="replace")
        while True:
            page = self._http.request("GET", f"/jobs/{self.id}/log", params={"offset": offset})
            following = int(page.headers.get(LOG_OFFSET, offset + len(page.content)))
            if following <= offset:
                break
            *lines, rest = (rest + text.decode(page.content)).split("\n")
            yield from lines
            offset = following
        rest += text.decode(b"", final=True)
        if rest:
            yield rest

    def _follow(self) -> Iterator[str]:
        """The log's stream from offset 0: ``log`` events are lines, ``state`` events update :attr:`info`.

        The stream ends with an ``end`` event once the job has finished and its log is read; a stream
        closed before (a proxy's timeout) is opened again from the offset of the last line.
        """
        offset = 0
        while True:
            with self._http.stream(f"/jobs/{self.id}/log/stream", offset=offset) as response:
                for event in server_events(response.iter_lines()):
                    if event.event == "log":
                        yield event.data
                        offset = int(event.id) if event.id and event.id.isdigit() else offset
                    elif event.event == "state":
                        state = {k: v for k, v in json.loads(event.data).items() if k in JobOut.model_fields}
                        self.info = self.info.model_copy(update=state)
                    elif event.event == "end":
                        return
