"""A served dataset is read through transient server failures: tried again with a bounded backoff, never after a 4xx.

A real HTTP server (http.server in a thread, on 127.0.0.1) serves a built dataset's files as the
platform does (``{URL}/files/{path}``, a Bearer token required) and fails the requests it is told
to: with 502/503/504, with 429 and a ``Retry-After``, or by closing the connection unanswered.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from conftest import save_config, tiny_config

import eoengine.datasets.remote as remote
from eoengine.config.load import load_config
from eoengine.datasets.build import BuildResult, build_dataset
from eoengine.datasets.location import TOKEN_ENV
from eoengine.datasets.remote import ATTEMPTS, FIRST_WAIT_S, MAX_RETRY_AFTER_S, MAX_WAIT_S, dataset_root, retry_wait
from eoengine.datasets.store import open_all_arrays
from eoengine.errors import Invalid, NotFound, Unavailable

TOKEN = "eoe_retry-token-5f2a9c"
DROP = 0
"""A failure that closes the connection without an answer."""


@dataclass
class Flaky:
    """The server: the failures still to give (status codes, or DROP), and the paths of every request."""

    folder: Path
    failures: list[int | tuple[int, str]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    base: str = ""

    @property
    def url(self) -> str:
        return f"{self.base}/projects/demo/datasets/tiny"


def _handler(state: Flaky) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # the base class's signature
            pass

        def do_GET(self) -> None:
            state.requests.append(self.path)
            state.times.append(time.monotonic())
            if state.failures:
                failure = state.failures.pop(0)
                status, retry_after = failure if isinstance(failure, tuple) else (failure, "")
                if status == DROP:
                    self.close_connection = True
                    self.connection.close()
                    return
                self.send_response(status)
                if retry_after:
                    self.send_header("Retry-After", retry_after)
                self._body(b'{"error": "failed", "fix": "try again"}', "application/json")
                return
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self.send_response(401)
                self._body(b'{"error": "no valid token", "fix": "send a token"}', "application/json")
                return
            prefix = "/projects/demo/datasets/tiny/files/"
            path = (state.folder / self.path.removeprefix(prefix)).resolve()
            if not self.path.startswith(prefix) or not path.is_relative_to(state.folder) or not path.is_file():
                self.send_response(404)
                self._body(b'{"error": "not found", "fix": "check the URL"}', "application/json")
                return
            self.send_response(200)
            self._body(path.read_bytes(), "application/octet-stream")

        def _body(self, data: bytes, kind: str) -> None:
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    tmp = tmp_path_factory.mktemp("retry-ds")
    return build_dataset(load_config(save_config(tmp, tiny_config(tmp))))


@pytest.fixture
def flaky(built: BuildResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flaky]:
    """The flaky server over the built dataset, a fresh cache, the token, and short waits (the schedule is tested apart)."""
    monkeypatch.setenv("EOENGINE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    monkeypatch.setattr(remote, "FIRST_WAIT_S", 0.05)
    state = Flaky(built.path.resolve())
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_transient_failures_are_tried_again_until_the_dataset_reads(built: BuildResult, flaky: Flaky) -> None:
    flaky.failures = [503, DROP, 502]
    root = dataset_root(flaky.url)
    assert flaky.requests[:4] == ["/projects/demo/datasets/tiny/files/manifest.json"] * 4
    assert (root / "manifest.json").read_bytes() == (built.path / "manifest.json").read_bytes()
    arrays = open_all_arrays(root)
    flaky.failures = [504, DROP]  # now while chunks are read
    before = len(flaky.requests)
    ids = np.arange(built.manifest.n_array_rows)
    local = open_all_arrays(built.path)["images"]
    assert [np.asarray(arrays["images"][int(i)]).tobytes() for i in ids] == [np.asarray(local[int(i)]).tobytes() for i in ids]
    chunks = flaky.requests[before:]
    assert len(chunks) == len(set(chunks)) + 2  # the failed chunk fetched again, each other once


def test_a_429_waits_as_long_as_its_retry_after_says(flaky: Flaky) -> None:
    flaky.failures = [(429, "1")]
    dataset_root(flaky.url)
    assert len(flaky.requests) >= 3 and flaky.times[1] - flaky.times[0] >= 0.95  # manifest twice, then the index


def test_a_server_that_keeps_failing_is_unavailable_after_bounded_tries(flaky: Flaky) -> None:
    flaky.failures = [503] * (ATTEMPTS + 2)
    with pytest.raises(Unavailable, match=rf"answered 503 .*\(tried {ATTEMPTS} times\)") as failed:
        dataset_root(flaky.url)
    assert len(flaky.requests) == ATTEMPTS and "try again later" in str(failed.value)


@pytest.mark.parametrize(("status", "error", "message"), [
    (401, Invalid, "refused the token"), (403, Invalid, r"may not read .* \(403\)"),
    (404, NotFound, "is not an eoengine dataset"), (400, Unavailable, "answered 400"),
])
def test_4xx_answers_are_never_tried_again(flaky: Flaky, status: int, error: type[Exception], message: str) -> None:
    flaky.failures = [status]
    with pytest.raises(error, match=message) as refused:
        dataset_root(flaky.url)
    assert len(flaky.requests) == 1 and "tried" not in str(refused.value)


def _answer(status: int, headers: dict[str, str] | None = None) -> aiohttp.ClientResponseError:
    return aiohttp.ClientResponseError(None, (), status=status, headers=headers)  # type: ignore[arg-type]


def test_the_backoff_doubles_up_to_its_bound_and_stops() -> None:
    waits = [retry_wait(_answer(503), attempt) for attempt in range(1, ATTEMPTS + 1)]
    assert waits == [min(FIRST_WAIT_S * 2**i, MAX_WAIT_S) for i in range(ATTEMPTS - 1)] + [None]
    assert retry_wait(ConnectionRefusedError(), 1) == FIRST_WAIT_S
    assert retry_wait(aiohttp.ServerDisconnectedError(), 2) == 2 * FIRST_WAIT_S
    assert retry_wait(_answer(429, {"Retry-After": "3"}), 1) == 3.0
    assert retry_wait(_answer(429, {"Retry-After": "86400"}), 1) == MAX_RETRY_AFTER_S
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=10), usegmt=True)
    assert 8 < (retry_wait(_answer(429, {"Retry-After": soon}), 1) or 0) <= 10
    assert retry_wait(_answer(429, {"Retry-After": "whenever"}), 1) == FIRST_WAIT_S
    assert [retry_wait(_answer(s), 1) for s in (400, 401, 403, 404, 409, 500)] == [None] * 6
    assert retry_wait(ValueError("not the server's"), 1) is None
    assert retry_wait(FileNotFoundError(), 1) is None
