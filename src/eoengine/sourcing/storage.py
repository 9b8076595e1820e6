"""Credentials and options for reading assets in object storage (``s3://``, ``gs://``, ``az://``).

GDAL reads these in place through its virtual file systems and takes its settings from the
environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_S3_ENDPOINT``,
``GOOGLE_APPLICATION_CREDENTIALS``, ``AZURE_STORAGE_CONNECTION_STRING``, ...) or from options
given here: ``imagery.source.storage`` in the config or ``--storage KEY=VALUE`` on the command
line. A value ``env:NAME`` is read from the environment variable NAME, so a config file need
not hold a secret.

Secrets never reach a log, an error message, a catalog or a dataset manifest: options are
applied with GDAL's configuration API and never printed, :func:`redacted` hides their values
wherever options are shown, and the manifest leaves them out.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from eoengine.errors import EOError

SECRET = re.compile(r"SECRET|TOKEN|PASSWORD|KEY|SAS|CONNECTION_STRING|CREDENTIAL", re.IGNORECASE)
NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_lock = threading.Lock()


def parse_options(pairs: list[str] | None) -> dict[str, str]:
    """``KEY=VALUE`` strings (the command line's ``--storage``) as a dict."""
    options = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise EOError(f"--storage '{key}' is not KEY=VALUE", "e.g. --storage AWS_S3_ENDPOINT=minio.local:9000")
        options[key.strip()] = value
    return options


def resolve(options: dict[str, str] | None) -> dict[str, str]:
    """The options with ``env:NAME`` values read from the environment; names checked."""
    out = {}
    for key, value in (options or {}).items():
        if not NAME.match(key):
            raise EOError(f"storage option '{key}' is not a GDAL/cloud option name",
                          "use upper-case names such as AWS_S3_ENDPOINT or AZURE_STORAGE_ACCOUNT")
        if value.startswith("env:"):
            var = value[4:]
            if var not in os.environ:
                raise EOError(f"storage option {key} names the environment variable {var}, which is not set",
                              f"export {var}=... before running")
            value = os.environ[var]
        out[key] = value
    return out


def redacted(options: dict[str, str]) -> dict[str, str]:
    """``options`` with every secret-looking value hidden (for messages and records)."""
    return {k: ("***" if SECRET.search(k) and not v.startswith("env:") else v) for k, v in options.items()}


@contextmanager
def storage_env(options: dict[str, str] | None) -> Iterator[None]:
    """Apply ``options`` as GDAL configuration for the duration of the block.

    They are set process-wide (so a fetch's worker threads see them) and restored afterwards.
    Blocks are serialised so that two fetches with different credentials never mix.
    """
    resolved = resolve(options)
    if not resolved:
        yield
        return
    from rasterio._env import del_gdal_config, get_gdal_config, set_gdal_config

    with _lock:
        previous = {k: get_gdal_config(k, normalize=False) for k in resolved}
        try:
            for k, v in resolved.items():
                set_gdal_config(k, v, normalize=False)
            yield
        finally:
            for k, v in previous.items():
                if v is None:
                    del_gdal_config(k)  # setting None would store the string 'None'
                else:
                    set_gdal_config(k, v, normalize=False)
