"""The client's HTTP layer: requests to one server's API, and its answers' errors as eoengine error kinds.

Every answer that is not a 2xx becomes the :mod:`eoengine.errors` kind of its status, with the
server's ``{"error", "fix"}``; a server that cannot be reached, times out or fails (5xx) is
:class:`~eoengine.errors.Unavailable`, naming the URL. No httpx exception leaves this module.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import TypeAdapter, ValidationError

from eoengine import __version__
from eoengine.errors import (
    Conflict,
    Denied,
    EOError,
    Invalid,
    NotFound,
    TooManyRequests,
    Unauthenticated,
    Unavailable,
    os_error,
)

API = "/api/v1"
T = TypeVar("T")

KIND_BY_STATUS: dict[int, type[EOError]] = {400: Invalid, 401: Unauthenticated, 403: Denied, 404: NotFound,
                                            409: Conflict, 413: Invalid, 422: Invalid}
"""The error kind of each 4xx status the API answers (429 and 5xx are handled apart)."""

DEFAULT_FIXES = {401: "sign in again: eoengine remote login URL", 403: "ask the project's admin for a role that may",
                 404: "check the name or id (list them first)", 409: "look at its state and try again"}
"""The fix of an error answer that names none (not the API's JSON body), by status."""

API_FIX = "check the request against the server's API (its /docs page)"

UNREACHABLE_FIX = "check the URL and that the server runs ('eoengine server run'), then try again"


def segment(value: str) -> str:
    """``value`` as one path segment of a URL (``@`` kept, as dataset references use it)."""
    return quote(str(value), safe="@")


def server_url(url: str) -> str:
    """A server's base URL, checked: ``http(s)://HOST[:PORT][/prefix]`` without a trailing ``/api/v1``.

    Args:
        url: The URL the user gave (with or without ``/api/v1``).

    Returns:
        The base URL, without a trailing slash.

    Raises:
        Invalid: Not an http or https URL with a host.

    """
    text = url.strip().rstrip("/")
    text = text.removesuffix(API)
    try:
        parsed = httpx.URL(text)
    except (httpx.InvalidURL, TypeError):
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise Invalid(f"{url!r} is not a server URL", "give it as http://HOST:PORT or https://HOST")
    return text


def checked_token(token: str) -> str:
    """An API token without surrounding blanks, checked to fit in a header.

    Args:
        token: The token as given (pasted, read from a variable or a file).

    Returns:
        The token, stripped.

    Raises:
        Invalid: Empty, or with blanks or characters a header cannot carry (the token is not shown).

    """
    text = token.strip()
    if not text or any(not (33 <= ord(c) <= 126) for c in text):
        raise Invalid("the API token is empty or has blanks or non-ASCII characters in it",
                      "paste the whole token (eoe_...) as 'server init' or POST /api/v1/tokens showed it")
    return text


def error_of(response: httpx.Response) -> EOError:
    """The eoengine error an answer that is not a 2xx stands for.

    Args:
        response: The answer (its body read).

    Returns:
        The error of the status's kind, with the server's problem and fix.

    """
    status, where = response.status_code, f"{response.request.method} {response.request.url}"
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        problem, fix = body["error"], str(body.get("fix") or "")
        if status >= 500:
            problem = f"{where}: {problem}"
    else:
        text = " ".join(response.text.split())[:200]
        problem, fix = f"{where} answered {status} {response.reason_phrase}" + (f": {text}" if text else ""), ""
    if status == 429:
        wait = response.headers.get("retry-after", "60")
        return TooManyRequests(problem, fix or f"wait {wait} s and try again", int(wait) if wait.isdigit() else 60)
    if status >= 500:
        return Unavailable(problem, fix or "try again later; the server's log has the details")
    return KIND_BY_STATUS.get(status, EOError)(problem, fix or DEFAULT_FIXES.get(status, API_FIX))


@contextmanager
def reaching(url: str) -> Iterator[None]:
    """Turn httpx's failures to reach ``url`` into :class:`~eoengine.errors.Unavailable`.

    Args:
        url: The server, as the messages name it.

    Yields:
        Nothing; the block runs the request.

    Raises:
        Unavailable: The server could not be reached, or did not answer in time.

    """
    try:
        yield
    except httpx.TimeoutException as exc:
        raise Unavailable(f"{url} did not answer in time ({type(exc).__name__})",
                          "try again, or give the client a longer timeout") from None
    except httpx.HTTPError as exc:
        raise Unavailable(f"cannot reach {url}: {exc or type(exc).__name__}", UNREACHABLE_FIX) from None


def parse(data: Any, shape: Any, url: str) -> Any:
    """A decoded JSON answer as the API's pydantic model (or list of models).

    Args:
        data: The decoded JSON.
        shape: The type, e.g. ``JobOut`` or ``list[ProjectOut]``.
        url: The server (named when its answer does not fit).

    Returns:
        The validated value.

    Raises:
        EOError: The answer does not have the shape this client expects (another server version).

    """
    try:
        return TypeAdapter(shape).validate_python(data)
    except ValidationError as err:
        raise EOError(f"{url} answered a body this client does not understand ({err.error_count()} problem(s), "
                      f"first: {err.errors()[0]['msg']})", "use the eoengine version the server runs") from None


class Http:
    """Requests to one server's API with a bearer token; errors are eoengine kinds.

    Args:
        url: The server's base URL (``server_url`` checks it).
        token: An API token (sent as ``Authorization: Bearer``; never shown), or None to send none
            (the cookies a sign-in sets are kept instead).
        timeout: Seconds to wait for a connection and for each read.
        transport: An httpx transport (None: the network).

    """

    def __init__(self, url: str, token: str | None, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = server_url(url)
        self.timeout = timeout
        token = None if token is None else checked_token(token)
        headers = {"User-Agent": f"eoengine/{__version__}"} | ({"Authorization": f"Bearer {token}"} if token else {})
        self._http = httpx.Client(base_url=self.url + API, timeout=timeout, transport=transport, headers=headers)

    def __repr__(self) -> str:
        return f"Http({self.url!r})"

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def request(self, method: str, path: str, allow: tuple[int, ...] = (), **kwargs: Any) -> httpx.Response:
        """One request, its answer read.

        Args:
            method: The HTTP method.
            path: The route under ``/api/v1``, e.g. ``/projects``.
            allow: Error statuses to answer rather than raise (a caller reading the error's body).
            **kwargs: httpx's request arguments (``json``, ``params``, ``files``, ``data``, ...).

        Returns:
            The 2xx answer (or one of ``allow``).

        Raises:
            EOError: The kind of the status (see :func:`error_of`), or Unavailable.

        """
        with reaching(self.url):
            response = self._http.request(method, path, **kwargs)
        if response.is_error and response.status_code not in allow:
            raise error_of(response)
        return response

    def get(self, path: str, shape: type[T], **params: Any) -> T:
        """``GET path`` (query ``params``, None ones left out), as the model ``shape``.

        Raises:
            EOError: The kind of the status, Unavailable, or an answer of another shape.

        """
        query = {k: v for k, v in params.items() if v is not None}
        return parse(self.request("GET", path, params=query).json(), shape, self.url)  # type: ignore[no-any-return]

    def send(self, method: str, path: str, shape: type[T], body: Any = None) -> T:
        """A change (``POST``/``PUT``/``PATCH``) with a JSON ``body``, its answer as ``shape``.

        Raises:
            EOError: The kind of the status, Unavailable, or an answer of another shape.

        """
        return parse(self.request(method, path, json=body).json(), shape, self.url)  # type: ignore[no-any-return]

    @contextmanager
    def stream(self, path: str, read_timeout: float | None = None, **params: Any) -> Iterator[httpx.Response]:
        """``GET path`` whose body is read as it arrives (a log stream, an archive).

        Args:
            path: The route under ``/api/v1``.
            read_timeout: Seconds to wait for each chunk (None: forever, for a stream that waits).
            **params: The query.

        Yields:
            The 2xx answer, its body not read yet.

        Raises:
            EOError: The kind of the status, or Unavailable (also while the body streams).

        """
        timeout = httpx.Timeout(self.timeout, read=read_timeout)
        query = {k: v for k, v in params.items() if v is not None}
        with reaching(self.url), self._http.stream("GET", path, params=query, timeout=timeout) as response:
            if response.is_error:
                response.read()
                raise error_of(response)
            yield response

    def download(self, path: str, dest: Path, **params: Any) -> Path:
        """Stream ``GET path`` into a file, written whole or not at all.

        Args:
            path: The route under ``/api/v1``.
            dest: The file to write, or a folder to write into under the answer's file name.
            **params: The query (None ones left out).

        Returns:
            The file written.

        Raises:
            EOError: The kind of the status, Unavailable (nothing is left behind), or the file cannot be written.

        """
        with self.stream(path, read_timeout=self.timeout, **params) as response:
            target = dest / attachment_name(response) if dest.is_dir() else dest
            tmp: str | None = None
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
                with os.fdopen(fd, "wb") as out:
                    for chunk in response.iter_bytes():
                        out.write(chunk)
                os.replace(tmp, target)
            except OSError as exc:
                raise os_error(exc) from None
            finally:
                if tmp is not None:
                    Path(tmp).unlink(missing_ok=True)
        return target


def attachment_name(response: httpx.Response) -> str:
    """The file name an answer gives itself (``Content-Disposition``), else the last part of its URL; never a path."""
    found = re.search(r'filename="?([^";]+)"?', response.headers.get("content-disposition", ""))
    name = Path(found.group(1) if found else response.url.path.rstrip("/").rsplit("/", 1)[-1]).name
    return name if name not in ("", ".", "..") else "download"
