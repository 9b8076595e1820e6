"""User-facing errors.

Every problem a user can fix (a missing file, a wrong band name, a malformed config) is
raised as :class:`EOError`, whose message names the offending thing and how to fix it. The
CLI prints these as one line and exits non-zero, without a traceback.

Some errors say their kind too, as a subtype that also inherits the matching builtin (so
``except FileNotFoundError`` and the like see them as well); an HTTP adapter answers each
kind with its own status (``serving/errors.py``):

- :class:`NotFound` (a ``FileNotFoundError``): a file, run, model, scene, dataset or
  collection the user named does not exist;
- :class:`Invalid` (a ``ValueError``): a value that is not valid (a plain :class:`EOError`
  means bad input as well);
- :class:`Unavailable` (a ``ConnectionError``): an upstream service — a STAC API, an object
  store, Earth Engine, a geocoder — cannot be reached or failed; the same call may work later;
- :class:`Conflict`: the thing exists but its state refuses the request (a run another
  process is still training, an output that already exists);
- :class:`Unauthenticated`: a request to the platform server with no valid credentials;
- :class:`Denied` (a ``PermissionError``): the caller is known but their role may not do this;
- :class:`TooManyRequests`: the caller must wait before trying again (failed sign-ins).
"""

from __future__ import annotations

import base64
import errno
import json
import re
import traceback
from pathlib import Path


class EOError(Exception):
    """An error caused by user input, with a message that names the problem and the fix."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem} — {fix}" if fix else problem)


class NotFound(EOError, FileNotFoundError):
    """A file, run, model, scene, dataset or collection the user named does not exist."""


class Invalid(EOError, ValueError):
    """A value the user gave that is not valid (malformed, out of range, inconsistent)."""


class Unavailable(EOError, ConnectionError):
    """An upstream service (STAC API, object store, Earth Engine, geocoder) cannot be reached or failed."""


class Conflict(EOError):
    """The thing exists but its state refuses the request: a run still training, an output already there."""


class Unauthenticated(EOError):
    """A request without valid credentials (no token or session, or an expired or revoked one)."""


class Denied(EOError, PermissionError):
    """The caller is known, but their role may not do what they asked."""


class TooManyRequests(EOError):
    """Too many attempts (e.g. failed sign-ins): the caller must wait ``retry_after`` seconds."""

    def __init__(self, problem: str, fix: str | None = None, retry_after: int = 60) -> None:
        super().__init__(problem, fix)
        self.retry_after = retry_after


KINDS: dict[str, type[EOError]] = {kind.__name__: kind for kind in (EOError, NotFound, Invalid, Unavailable, Conflict,
                                                                    Unauthenticated, Denied)}
"""The error kinds by name (a kind survives the text a Beam worker's failure travels as)."""


class ConfigError(EOError):
    """A project config that does not validate; carries every problem found."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        listing = "; ".join(problems)
        super().__init__(f"{source}: {len(problems)} problem(s): {listing}")


def first_line(exc: BaseException) -> str:
    """An exception's first message line, cut to 300 characters (its type name if it has none)."""
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


_WORKER_TAG = "eoengine-error:"
_WORKER_RE = re.compile(re.escape(_WORKER_TAG) + r"([A-Za-z0-9_=-]+)")


def worker_error(exc: EOError) -> RuntimeError:
    """An :class:`EOError` raised in a Beam worker, as an exception whose text survives the runner.

    Runners hand a worker's failure to the driver as text (a traceback, sometimes quoted
    again), so the problem and fix travel base64-encoded and :func:`from_worker` finds them.

    Args:
        exc: The error the worker raised.

    Returns:
        The exception for the worker to raise instead.

    """
    kind = type(exc).__name__ if type(exc).__name__ in KINDS else "EOError"
    payload = base64.urlsafe_b64encode(json.dumps([exc.problem, exc.fix, kind]).encode()).decode()
    return RuntimeError(f"{_WORKER_TAG}{payload} ({exc})")


def from_worker(exc: BaseException) -> EOError | None:
    """The :class:`EOError` a Beam worker raised, found in the text of a pipeline's failure.

    Args:
        exc: What running the pipeline raised.

    Returns:
        The worker's error, of the kind it raised, or None when the failure carries none.

    """
    found = _WORKER_RE.search("".join(traceback.format_exception(exc)))
    if found is None:
        return None
    problem, fix, kind = json.loads(base64.urlsafe_b64decode(found.group(1)))
    return KINDS[kind](problem, fix)


_OS_FIXES = {
    errno.ENOSPC: ("no space left on the device", "free some space, or set output_dir on a disk with room"),
    errno.EDQUOT: ("disk quota exceeded", "free some space, or set output_dir on a disk with room"),
    errno.EROFS: ("read-only file system", "set output_dir to a folder you can write to"),
    errno.EACCES: ("permission denied", "set output_dir to a folder you can write to, or fix its permissions"),
    errno.EPERM: ("permission denied", "set output_dir to a folder you can write to, or fix its permissions"),
    errno.ENOTDIR: ("a file stands where a folder is needed", "set output_dir to a folder, not under a file"),
    errno.EISDIR: ("a folder stands where a file is needed", "pass a file, not a folder"),
}


def os_error(exc: OSError) -> EOError:
    """A failed file operation as an :class:`EOError` naming the path, the reason and the fix.

    Args:
        exc: The error from the operating system.

    Returns:
        The error to show the user.

    """
    reason, fix = _OS_FIXES.get(exc.errno or 0, (exc.strerror or str(exc), "check the path and the disk"))
    return EOError(f"{exc.filename or 'a file'}: {reason}", fix)


def check_not_folder(path: str | Path, what: str, fix: str) -> None:
    """Raise when ``path`` is a folder where a file is needed.

    Args:
        path: The path the user gave.
        what: What it should have been, e.g. "a raster file".
        fix: What to pass instead.

    Raises:
        EOError: ``path`` is a folder.

    """
    if Path(path).is_dir():
        raise EOError(f"{path} is a folder, not {what}", fix)
