"""File helpers shared by every stage: atomic writes (a reader never sees a half-written file) and the cache folder."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in its folder and a rename (never half-written).

    Args:
        path: The file to write; its folder is made if missing.
        data: The content.

    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` via a temporary file and rename (never half-written)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data: Any) -> None:
    """Write JSON atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str))


def cache_dir() -> Path:
    """The user's cache folder: models fetched from MLflow, datasets read over HTTP (``EOENGINE_CACHE`` or ~/.cache/eoengine)."""
    return Path(os.environ.get("EOENGINE_CACHE", Path.home() / ".cache" / "eoengine"))
