"""Datasets served over HTTP(S), read through a local cache as if they were folders.

An eoengine server serves the files of a dataset version at ``{URL}/files/{path}`` (range
requests; ``Authorization: Bearer <token>``, the token taken from ``EOENGINE_TOKEN`` at each
request). :func:`dataset_root` turns such a URL into a folder of the cache (``EOENGINE_CACHE`` or
~/.cache/eoengine): ``datasets/<host>/<name>@<version>-<digest of the URL>/``. The manifest is
fetched every time, since it says the version: a new version gets a new folder and never reads
another's chunks. The chip index is fetched once per version, and ``remote.json`` records the
URL and the version (never the token). The rest of eoengine reads that folder as any dataset
folder: :func:`eoengine.datasets.store.open_group` finds ``remote.json`` and opens ``data.zarr``
through fsspec's HTTP file system wrapped in a :class:`ChunkCache`.

A :class:`ChunkCache` fetches each chunk once and keeps it under ``chunks/`` of the folder,
written to a temporary file and renamed, so trainings and DataLoader workers reading one
dataset at once each see a whole chunk or none; a chunk the server does not have (a row never
written: its fill value) is remembered under ``absent/``. A version never changes, so neither
goes stale. fsspec's own caches (``filecache``,
``simplecache``) download into the final file name, where a concurrent reader can find half a
chunk; hence this small cache.

Every request is tried again after a transient failure (the server cannot be reached or drops
the connection, answers 502, 503 or 504, or 429: after its ``Retry-After``), with a bounded
exponential backoff (:func:`retry_wait`); an answer that will not change (401, 403, 404, any
other 4xx) is never tried again.
"""

from __future__ import annotations

import asyncio
import atexit
import email.utils
import hashlib
import json
import os
import re
import time
from collections.abc import AsyncGenerator, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from zarr.abc.store import ByteRequest, OffsetByteRequest, RangeByteRequest, Store
from zarr.core.buffer import Buffer, BufferPrototype
from zarr.storage import WrapperStore

from eoengine.datasets.location import REMOTE, TOKEN_ENV, clean_url, is_url, remote_url, remote_version
from eoengine.datasets.schema import DATASET_FIX, MANIFEST, DatasetManifest
from eoengine.datasets.store import ARRAYS, INDEX
from eoengine.errors import EOError, Invalid, NotFound, Unavailable, first_line
from eoengine.files import atomic_write_bytes, cache_dir

CHUNKS = "chunks"
"""In a served dataset's cache folder: the objects of ``data.zarr`` fetched so far."""
ABSENT = "absent"
"""In a served dataset's cache folder: an empty file for each object the server does not have (a chunk never written)."""
URL_FIX = f"{DATASET_FIX}, or the URL of a dataset version on an eoengine server (https://HOST/.../datasets/NAME@VERSION)"
ATTEMPTS = 4
"""Tries of one request before a transient failure is given up on."""
FIRST_WAIT_S = 0.25
"""The wait before the second try; it doubles before each further one, up to :data:`MAX_WAIT_S`."""
MAX_WAIT_S = 4.0
"""The longest backoff between two tries."""
MAX_RETRY_AFTER_S = 30.0
"""The longest wait a 429's ``Retry-After`` is honoured with."""
RETRY_STATUSES = frozenset({429, 502, 503, 504})
"""Answers that say "try again later" (too many requests, a proxy's or an overloaded server's)."""
TOKEN_FIX = (f"set {TOKEN_ENV} to an API token of that server with access to the project "
             "('eoengine remote login', or the server's tokens page)")


def dataset_root(location: str | Path) -> Path:
    """A dataset's local folder: a path as it is; for an http(s) URL, its folder in the cache, brought up to date.

    Args:
        location: A dataset folder, or the URL of a dataset version on an eoengine server.

    Returns:
        The folder to read the dataset from.

    Raises:
        NotFound: The server has no dataset at the URL (no manifest or chip index there).
        Invalid: The URL is malformed, or the server refused the token (401, 403).
        Unavailable: The server cannot be reached or failed.
        EOError: What the server gave is not a dataset manifest.

    """
    if not is_url(location):
        return Path(location)
    url = clean_url(str(location))
    raw = _fetch(url, MANIFEST)
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise NotFound(f"{url} is not an eoengine dataset (its {MANIFEST} is not JSON)", URL_FIX) from None
    manifest = DatasetManifest.from_json(data, f"{url}/files/{MANIFEST}", URL_FIX)
    root = cache_folder(url, manifest)
    if remote_version(root) != manifest.version or not (root / INDEX).is_file():
        keep(root / INDEX, _fetch(url, INDEX))
        keep(root / MANIFEST, raw)
        keep(root / REMOTE, json.dumps({"url": url, "version": manifest.version}).encode())  # last: the folder is whole
    return root


def keep(path: Path, data: bytes) -> None:
    """Write a file of the cache atomically.

    Args:
        path: The file, in a served dataset's cache folder.
        data: Its content.

    Raises:
        EOError: The cache folder cannot be written (no space, no permission, a file in the way).

    """
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise EOError(f"cannot write the dataset cache {path}: {exc.strerror or exc}",
                      "free some space, or set EOENGINE_CACHE to a folder with room that you can write to") from None


def cache_folder(url: str, manifest: DatasetManifest) -> Path:
    """The cache folder of a served dataset version: per host, name, version and URL."""
    parts = urlsplit(url)
    host = f"{parts.hostname}_{parts.port}" if parts.port else str(parts.hostname)
    digest = hashlib.sha256(url.encode()).hexdigest()[:8]
    return cache_dir() / "datasets" / _safe(host) / f"{_safe(manifest.name)}@{manifest.version[:12]}-{digest}"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "dataset"


def _headers() -> dict[str, str]:
    token = os.environ.get(TOKEN_ENV)
    return {"Authorization": f"Bearer {token}"} if token else {}


def http_problem(exc: BaseException, url: str) -> EOError | None:
    """A failed request to a dataset's server as the error to show, or None when it is not one.

    Args:
        exc: What the request raised (not FileNotFoundError: a 404 means different things).
        url: The dataset's URL (named in the message; the token never is).

    Returns:
        Invalid for 401 and 403 (fix: the token), Unavailable for other answers and for a
        server that cannot be reached; None for other exceptions.

    """
    import aiohttp

    if isinstance(exc, aiohttp.ClientResponseError):
        if exc.status == 401:
            why = "refused the token in " + TOKEN_ENV if os.environ.get(TOKEN_ENV) else f"asks for a token and {TOKEN_ENV} is not set"
            return Invalid(f"the server of {url} {why} (401)", TOKEN_FIX)
        if exc.status == 403:
            return Invalid(f"the token in {TOKEN_ENV} may not read {url} (403)",
                           "use a token of a member of the dataset's project, or ask a project admin to add you")
        return Unavailable(f"the server of {url} answered {exc.status} {exc.message}",
                           "try again later; the server's log says what failed")
    if isinstance(exc, aiohttp.ClientError | OSError | asyncio.TimeoutError) and not isinstance(exc, FileNotFoundError):
        return Unavailable(f"cannot reach the server of {url}: {first_line(exc)}",
                           "check the URL and that the server runs ('eoengine server run'), then try again")
    return None


def retry_wait(exc: BaseException, attempt: int) -> float | None:
    """How long to wait before trying a failed request again, or None when it must not be tried again.

    Args:
        exc: What the ``attempt``-th try raised.
        attempt: The number of tries made so far (1 after the first).

    Returns:
        Seconds to wait: a 429's ``Retry-After`` (at most :data:`MAX_RETRY_AFTER_S`), else
        :data:`FIRST_WAIT_S` doubled per try made, at most :data:`MAX_WAIT_S`. None after
        :data:`ATTEMPTS` tries, and for an answer that will not change (401, 403, 404, other
        4xx) or an error that is not the server's.

    """
    import aiohttp

    if attempt >= ATTEMPTS:
        return None
    if isinstance(exc, aiohttp.ClientResponseError):
        if exc.status not in RETRY_STATUSES:
            return None
        after = _retry_after(exc.headers) if exc.status == 429 else None
        if after is not None:
            return min(after, MAX_RETRY_AFTER_S)
    elif http_problem(exc, "") is None:
        return None
    return float(min(FIRST_WAIT_S * 2 ** (attempt - 1), MAX_WAIT_S))


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    """A ``Retry-After`` header in seconds (it gives seconds or an HTTP date), or None without a valid one."""
    value = (headers or {}).get("Retry-After", "").strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds()) if when.tzinfo else None


def _wait_or_raise(exc: Exception, url: str, attempt: int) -> float:
    """The wait before the next try of a request that raised ``exc``; raises when it is not tried again.

    Raises:
        EOError: :func:`http_problem`'s error (naming the tries made), for a failure of the server's.
        Exception: ``exc`` itself, for any other failure.

    """
    wait = retry_wait(exc, attempt)
    if wait is not None:
        return wait
    problem = http_problem(exc, url)
    if problem is None:
        raise exc
    if attempt > 1:
        problem = type(problem)(f"{problem.problem} (tried {attempt} times)", problem.fix)
    raise problem from None


def _fetch(url: str, name: str) -> bytes:
    """One small file of a served dataset (manifest, chip index), tried again after transient failures."""
    from fsspec.implementations.http import HTTPFileSystem

    fs = HTTPFileSystem(headers=_headers())  # fsspec keeps one per process and token, and closes it
    attempt = 0
    while True:
        attempt += 1
        try:
            return bytes(fs.cat_file(f"{url}/files/{name}"))
        except FileNotFoundError:
            raise NotFound(f"{url} is not an eoengine dataset (the server has no {name} there)", URL_FIX) from None
        except Exception as exc:  # noqa: BLE001 - raised again unless it is worth another try
            wait = _wait_or_raise(exc, url, attempt)
        time.sleep(wait)


_ASYNC: list[tuple[int, Any]] = []
"""The async HTTP file systems zarr reads through, with the process that made each."""


def _async_http() -> Any:
    """The async HTTP file system for zarr's event loop: one per process and token (fsspec's instance cache)."""
    from fsspec.implementations.http import HTTPFileSystem

    fs = HTTPFileSystem(asynchronous=True, headers=_headers())
    if not any(known is fs for _, known in _ASYNC):
        if not _ASYNC:
            atexit.register(_close_sessions)
        _ASYNC.append((os.getpid(), fs))
    return fs


def _close_sessions() -> None:
    """At exit, close this process's connections to dataset servers (fsspec leaves an async session open)."""
    from fsspec.implementations.http import HTTPFileSystem

    for pid, fs in _ASYNC:
        session = getattr(fs, "_session", None)
        if pid == os.getpid() and session is not None:  # a forked child leaves its parent's connections alone
            HTTPFileSystem.close_session(None, session)


def remote_group(root: Path, mode: str = "r") -> Any:
    """The zarr group of a served dataset's arrays, read through the chunk cache of its cache folder.

    Args:
        root: The dataset's cache folder (made by :func:`dataset_root`).
        mode: Only ``r``: a served dataset is read-only.

    Returns:
        The opened group (open it in the process that reads: its connections belong to the process).

    Raises:
        Invalid: Another mode than ``r``; the server refused the token.
        NotFound: The server has no arrays for the dataset.
        Unavailable: The server cannot be reached.

    """
    import zarr
    from zarr.errors import GroupNotFoundError
    from zarr.storage import FsspecStore

    url = remote_url(root)
    if url is None:
        raise NotFound(f"{root} is not the cache folder of a served dataset (no {REMOTE})", URL_FIX)
    if mode != "r":
        raise Invalid(f"{root} caches the dataset served at {url}, which is read-only",
                      "write to a dataset folder of your own ('eoengine dataset build')")
    store = ChunkCache(FsspecStore(_async_http(), read_only=True, path=f"{url}/files/{ARRAYS}"), root, url)
    try:
        return zarr.open_group(store, mode="r", zarr_format=3)
    except (GroupNotFoundError, FileNotFoundError):
        raise NotFound(f"{url} has no chip arrays (no {ARRAYS} on the server)", URL_FIX) from None


class ChunkCache(WrapperStore[Store]):
    """A read-only zarr store that fetches each whole object once from a served dataset and keeps it in a folder.

    An object is written to a temporary file and renamed into ``root/chunks``, so readers in
    other processes find it whole or not at all; one the server does not have is remembered as
    an empty file in ``root/absent``. A part of an object not yet cached (a byte range) is
    fetched from the server and not kept. Failed requests raise :func:`http_problem`'s errors.
    """

    def __init__(self, store: Store, root: Path, url: str) -> None:
        super().__init__(store)
        self.root = root
        self.url = url

    def _with_store(self, store: Store) -> ChunkCache:
        return type(self)(store, self.root, self.url)

    async def get(self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None) -> Buffer | None:
        """The object ``key`` (or a part of it): from the cache folder, else from the server (then kept if whole)."""
        local, absent = self.root / CHUNKS / key, self.root / ABSENT / key
        try:
            data = await asyncio.to_thread(local.read_bytes)
        except FileNotFoundError:
            if absent.is_file():
                return None
        else:
            return prototype.buffer.from_bytes(_part(data, byte_range))
        value = await self._remote(key, prototype, byte_range)
        if byte_range is None:
            file, content = (absent, b"") if value is None else (local, value.to_bytes())
            await asyncio.to_thread(keep, file, content)
        return value

    async def _remote(self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None) -> Buffer | None:
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._store.get(key, prototype, byte_range)  # a missing object (404) is None: its fill value
            except Exception as exc:  # noqa: BLE001 - raised again unless it is worth another try
                wait = _wait_or_raise(exc, self.url, attempt)
            await asyncio.sleep(wait)

    async def get_partial_values(
        self, prototype: BufferPrototype, key_ranges: Iterable[tuple[str, ByteRequest | None]],
    ) -> list[Buffer | None]:
        """Parts of several objects, each as :meth:`get` gives it."""
        return list(await asyncio.gather(*(self.get(key, prototype, part) for key, part in key_ranges)))

    async def _get_many(
        self, requests: Iterable[tuple[str, BufferPrototype, ByteRequest | None]],
    ) -> AsyncGenerator[tuple[str, Buffer | None], None]:
        for key, prototype, part in requests:
            yield key, await self.get(key, prototype, part)


def _part(data: bytes, byte_range: ByteRequest | None) -> bytes:
    if byte_range is None:
        return data
    if isinstance(byte_range, RangeByteRequest):
        return data[byte_range.start:byte_range.end]
    if isinstance(byte_range, OffsetByteRequest):
        return data[byte_range.offset:]
    return data[-byte_range.suffix:] if byte_range.suffix else b""
