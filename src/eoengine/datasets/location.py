"""Where a dataset is: a folder, or the URL of a dataset version served over HTTP(S) by an eoengine server.

Light on purpose (no zarr, no HTTP client): job specs and configs name datasets with these;
reading a served dataset is :mod:`eoengine.datasets.remote`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BeforeValidator

from eoengine.errors import Invalid

TOKEN_ENV = "EOENGINE_TOKEN"
"""The environment variable holding the API token sent to a dataset's server."""
REMOTE = "remote.json"
"""In the cache folder of a dataset served over HTTP(S): its URL and version (never a token)."""


def is_url(location: object) -> bool:
    """Whether a dataset location is an http(s) URL (rather than a folder)."""
    return isinstance(location, str) and location.strip().lower().startswith(("http://", "https://"))


def as_location(value: Any) -> Any:
    """A dataset location as given: an http(s) URL stays text (a Path would fold its ``//``), text else is a path."""
    return Path(value) if isinstance(value, str) and not is_url(value) else value


DatasetLocation = Annotated[Path | str, BeforeValidator(as_location)]
"""A dataset folder, or the URL of a dataset served over HTTP(S), as a typed field."""


def clean_url(url: str) -> str:
    """A served dataset's URL as eoengine records it: lower-case scheme and host, no trailing ``/`` or ``/files``.

    Args:
        url: The URL given (``https://HOST/.../datasets/NAME@VERSION``).

    Returns:
        The URL to fetch from and record.

    Raises:
        Invalid: The URL has no host, or carries user info, a query or a fragment (a token in
            a URL would be recorded with the run).

    """
    parts = urlsplit(url.strip())
    shown = f"{parts.scheme}://{parts.hostname or ''}{parts.path}"
    if not parts.hostname:
        raise Invalid(f"the dataset URL {shown} names no host", "give it as https://HOST/.../datasets/NAME@VERSION")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise Invalid(f"the dataset URL {shown} carries user info, a query or a fragment",
                      f"give the URL alone and the token in {TOKEN_ENV}")
    path = parts.path.rstrip("/")
    path = path.removesuffix("/files")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, "", ""))


def _record(root: Path) -> dict[str, Any] | None:
    try:
        found = json.loads((root / REMOTE).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return found if isinstance(found, dict) else None


def remote_url(root: Path) -> str | None:
    """The URL a cache folder's dataset is served at, or None for a dataset folder of its own."""
    record = _record(root)
    return str(record["url"]) if record and "url" in record else None


def remote_version(root: Path) -> str | None:
    """The version a cache folder holds, or None when it holds none (yet)."""
    record = _record(root)
    return str(record["version"]) if record and "version" in record else None


def dataset_source(root: Path) -> str:
    """Where a dataset is, as a run records it: the URL of a served one, else its folder."""
    return remote_url(root) or str(root)
