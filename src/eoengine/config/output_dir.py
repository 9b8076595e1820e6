"""The check that a project's outputs can be written, run before any work starts."""

from __future__ import annotations

import os
from pathlib import Path

from eoengine.errors import EOError

MIN_FREE_BYTES = 1 << 20


def check_output_dir(path: Path) -> None:
    """Check that outputs can be written under ``path`` (made when needed) before any work starts.

    Args:
        path: The project's output folder (it need not exist yet).

    Raises:
        EOError: A file stands where a folder is needed, the folder is not writable, or its
            disk is full.

    """
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise EOError(f"output_dir {path}: {existing} is a file, not a folder",
                      "set output_dir to a folder path (or move the file away)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise EOError(f"output_dir {path}: {existing} is not writable (read-only or no permission)",
                      "set output_dir to a folder you can write to")
    disk = os.statvfs(existing)
    if disk.f_bavail * disk.f_frsize < MIN_FREE_BYTES:
        raise EOError(f"output_dir {path}: no space left on its disk",
                      "free some space, or set output_dir on a disk with room")
