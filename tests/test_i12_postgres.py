"""The platform on PostgreSQL: every core API test again on a real server, `server init`'s migrations, and models = migrations.

The core tests (tests/test_i12_platform_core.py) run here with their ``live`` fixture on a fresh
PostgreSQL database per test (``pg_db``); the core module itself runs them on SQLite. The
migrated schema must equal the SQLAlchemy models on both databases (Alembic's autogenerate
comparison), so a model changed without a migration fails here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import test_i12_platform_core as core
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from platform_server import LiveServer, live_platform
from sqlalchemy import Column, MetaData, String, inspect

from eoengine.platform.db.engine import Database, sqlite_url
from eoengine.platform.db.migrate import current, head, upgrade
from eoengine.platform.db.models import Base

CORE_TESTS = sorted(name for name in vars(core) if name.startswith("test_"))
globals().update({name: getattr(core, name) for name in CORE_TESTS})  # collected here with this module's `live`
EOENGINE = Path(sys.executable).parent / "eoengine"


@pytest.fixture
def live(tmp_path: Path, pg_db: str) -> Iterator[LiveServer]:
    with live_platform(tmp_path / "home", db_url=pg_db) as server:
        assert server.platform.db.dialect == "postgresql"
        yield server


def test_every_core_test_runs_here() -> None:
    assert len(CORE_TESTS) >= 8 and all(globals()[name] is getattr(core, name) for name in CORE_TESTS)


def _differences(db: Database, metadata: MetaData = Base.metadata) -> list[Any]:
    with db.engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata))


@pytest.fixture(params=["sqlite", "postgresql"])
def migrated(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = sqlite_url(tmp_path) if request.param == "sqlite" else request.getfixturevalue("pg_db")
    db = Database(url)
    upgrade(db)
    yield db
    db.dispose()


def test_migrations_match_the_models(migrated: Database) -> None:
    assert current(migrated) == head()
    assert _differences(migrated) == []
    upgrade(migrated)  # again: nothing to do
    assert current(migrated) == head()


def test_a_model_changed_without_a_migration_is_caught(migrated: Database) -> None:
    changed = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["users"].append_column(Column("nickname", String(64)))
    changed.remove(changed.tables["login_failures"])
    found = {(d[0], getattr(d[-1], "name", None) if d[0] == "add_column" else d[1].name) for d in _differences(migrated, changed)}
    assert found == {("add_column", "nickname"), ("remove_table", "login_failures"), ("remove_index", "ix_login_failures_key")}


def _init(home: Path, db: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ADMIN_PW": "pg-admin-password"}
    return subprocess.run([str(EOENGINE), "server", "init", "--home", str(home), "--db", db, "--password-env", "ADMIN_PW"],
                          capture_output=True, text=True, env=env, timeout=120, check=False)


def test_server_init_migrates_postgresql(tmp_path: Path, pg_db: str) -> None:
    done = _init(tmp_path / "home", pg_db)
    assert done.returncode == 0, done.stderr
    assert "database: postgresql+psycopg://" in done.stdout and "API token (shown once): eoe_" in done.stdout
    assert "pg-admin-password" not in done.stdout + done.stderr
    db = Database(pg_db)
    try:
        assert current(db) == head() and _differences(db) == []
        tables = set(inspect(db.engine).get_table_names())
        assert {"users", "api_tokens", "sessions", "projects", "memberships", "jobs", "artifacts", "events"} <= tables
        assert not (tmp_path / "home" / "eoengine.db").exists()  # nothing on SQLite
    finally:
        db.dispose()
    again = _init(tmp_path / "home", pg_db)
    assert again.returncode != 0 and "has users already" in again.stderr and "Traceback" not in again.stderr
