"""Alembic migrations, applied by ``eoengine server init`` and ``server run`` (and by every worker).

The scripts live in ``migrations/`` inside the package; :func:`upgrade` runs them on a database
to the newest revision, in one transaction on PostgreSQL (SQLite: one per revision).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from eoengine.platform.db.engine import Database

SCRIPTS = Path(__file__).with_name("migrations")


def _config(db: Database) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    cfg.attributes["engine"] = db.engine
    return cfg


def head() -> str:
    """The newest revision of the migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    rev = ScriptDirectory.from_config(cfg).get_current_head()
    assert rev is not None
    return rev


def current(db: Database) -> str | None:
    """The revision a database is at (None when it has no tables yet).

    Args:
        db: The database.

    Returns:
        The revision id, or None.

    """
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(db: Database) -> None:
    """Bring a database to the newest revision (nothing to do when it is there).

    Args:
        db: The database.

    """
    command.upgrade(_config(db), "head")
