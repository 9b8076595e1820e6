"""The platform on PostgreSQL: every core API test again on a real server, `server init`'s migrations, and models = migrations.

The core tests (tests/test_i12_platform_core.py) run here with their ``live`` fixture on a fresh
PostgreSQL database per test (``pg_db``); the core module itself runs them on SQLite. The
migrated schema must equal the SQLAlchemy models on both databases (Alembic's autogenerate
comparison), so a model changed without a migration fails here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import test_i12_platform_core as core
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from platform_server import API, LiveServer, live_platform, row_id_params
from sqlalchemy import Column, MetaData, String, event, inspect

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


def test_row_ids_past_postgresqls_integers_are_bad_input(live: LiveServer) -> None:
    with live.client() as c:
        assert c.post("/projects", json={"name": "NC", "template": "nc-landsat"}).status_code == 201
        found = row_id_params(live.app)
        assert len(found) >= 3
        for route, name in found:
            method, template = route.split(" ", 1)
            values = {"slug": "nc", name: str(2**31)}
            path = re.sub(r"{(\w+)}", lambda m, v=values: v.get(m.group(1), "0"), template)  # type: ignore[misc]
            r = c.request(method, path.removeprefix(API))
            assert r.status_code == 422 and name in r.json()["error"], f"{route}: {r.status_code} {r.text}"


@pytest.fixture(params=["sqlite", "postgresql"])
def either(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    url = "" if request.param == "sqlite" else request.getfixturevalue("pg_db")
    with live_platform(tmp_path / "home", db_url=url) as server:
        yield server


def test_a_change_is_committed_before_it_is_answered(either: LiveServer) -> None:
    def slow_commit(conn: Any) -> None:
        time.sleep(0.5)  # widens the window between the answer and a commit that came after it

    with either.client() as c:
        assert c.get("/tokens").status_code == 200  # the token's use is noted: the reads below write nothing
        event.listen(either.platform.db.engine, "commit", slow_commit)
        try:
            made = c.post("/tokens", json={"name": "seen-at-once"})
        finally:
            event.remove(either.platform.db.engine, "commit", slow_commit)
        assert made.status_code == 201
        assert made.json()["id"] in [t["id"] for t in c.get("/tokens").json()]  # a client's next request sees it
