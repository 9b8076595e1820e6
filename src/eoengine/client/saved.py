"""The server the command line talks to: ``{url, token}`` in ``remote.json``, readable by its owner only.

The file lives in ``$EOENGINE_CONFIG_DIR`` (default ``~/.config/eoengine``), is written
atomically with mode 0600, and is refused when others may read it (as ssh refuses a key).
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from eoengine.errors import Invalid, NotFound
from eoengine.files import atomic_write_text

CONFIG_ENV = "EOENGINE_CONFIG_DIR"
REMOTE_FILE = "remote.json"
LOGIN_FIX = "sign in first: eoengine remote login URL"


@dataclass(frozen=True)
class Remote:
    """A server and the API token to use it with (the token is left out of the repr)."""

    url: str
    token: str = field(repr=False)


def config_dir() -> Path:
    """The folder of the client's settings: ``$EOENGINE_CONFIG_DIR`` or ``~/.config/eoengine``."""
    return Path(os.environ.get(CONFIG_ENV) or "~/.config/eoengine").expanduser()


def remote_path() -> Path:
    """Where the saved server is kept."""
    return config_dir() / REMOTE_FILE


def save_remote(remote: Remote) -> Path:
    """Keep ``remote`` for later commands, in a file only its owner may read.

    Args:
        remote: The server and token.

    Returns:
        The file written.

    """
    path = remote_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({"url": remote.url, "token": remote.token}, indent=2) + "\n")
    os.chmod(path, 0o600)  # mkstemp made it 0600 already; say so where it matters
    return path


def load_remote() -> Remote:
    """The saved server.

    Returns:
        Its URL and token.

    Raises:
        NotFound: Nothing is saved.
        Invalid: The file is readable by others, or is not ``{"url": ..., "token": ...}``.

    """
    path = remote_path()
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except FileNotFoundError:
        raise NotFound(f"no server saved in {path}", LOGIN_FIX) from None
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise Invalid(f"{path} holds an API token and others may read it (mode {stat.S_IMODE(mode):o})",
                      f"chmod 600 {path}, then revoke the token if others had access")
    try:
        data = json.loads(text)
        return Remote(url=str(data["url"]), token=str(data["token"]))
    except (ValueError, KeyError, TypeError):
        raise Invalid(f"{path} is not a saved server ({{\"url\": ..., \"token\": ...}})", LOGIN_FIX) from None
