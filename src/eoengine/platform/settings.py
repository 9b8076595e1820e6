"""The platform server's settings and the state its routes share."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from eoengine.platform.db.engine import Database, sqlite_url

DEFAULT_HOME = Path("~/.eoengine-server")


def default_home() -> Path:
    """The server home: ``EOENGINE_HOME`` or ``~/.eoengine-server``."""
    return Path(os.environ.get("EOENGINE_HOME") or DEFAULT_HOME).expanduser()


@dataclass(frozen=True)
class PlatformSettings:
    """What a platform server (and its workers) run with.

    Attributes:
        home: The server's folder: the SQLite database, ``projects/``, ``jobs/`` (logs).
        db_url: The database (default: SQLite under ``home``).
        secure_cookies: Mark session cookies ``Secure`` (browsers then send them over HTTPS only;
            off for a server on loopback over plain HTTP).
        session_hours: How long a browser session lasts.
        max_upload_mb: The largest upload.
        max_json_mb: The largest JSON body.
        data_roots: Folders outside the projects that project configs may read imagery from.
        import_roots: Folders under which site admins may import CLI project folders in place.
        examples: The folder of bundled sample projects (templates), if any.
        custom_code: Whether jobs may run a config's own Python code (models and losses by dotted path);
            whoever may edit a project's config could otherwise run any code as the workers' user.
        subscription_poll_s: Seconds between searches of an ``each-new-scene`` subscription by the scheduler.

    """

    home: Path
    db_url: str = ""
    secure_cookies: bool = True
    session_hours: float = 12.0
    max_upload_mb: float = 2048.0
    max_json_mb: float = 4.0
    data_roots: tuple[Path, ...] = ()
    import_roots: tuple[Path, ...] = ()
    examples: Path | None = None
    stale_after_s: float = 30.0
    custom_code: bool = False
    subscription_poll_s: float = 3600.0

    @property
    def database_url(self) -> str:
        """The database URL (SQLite under ``home`` unless one was given)."""
        return self.db_url or sqlite_url(self.home)

    @property
    def projects_dir(self) -> Path:
        """Where project folders live."""
        return self.home / "projects"

    @property
    def jobs_dir(self) -> Path:
        """Where job logs live."""
        return self.home / "jobs"


@dataclass
class Platform:
    """What the routes share: the settings and the database."""

    settings: PlatformSettings
    db: Database = field(init=False)

    def __post_init__(self) -> None:
        self.db = Database(self.settings.database_url)
