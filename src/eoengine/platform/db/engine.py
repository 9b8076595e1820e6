"""Engines and sessions for the platform's database: SQLite (embedded default) or PostgreSQL.

SQLite runs in WAL mode with foreign keys on and a busy timeout; a write transaction begins
``IMMEDIATE`` (it takes the write lock at once, so two writers queue instead of failing midway),
a read transaction ``DEFERRED``. On PostgreSQL both are plain transactions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from eoengine.errors import Invalid

DB_FIX = "use sqlite:///PATH/eoengine.db or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE"


def sqlite_url(home: Path) -> str:
    """The embedded default database of a server home."""
    return f"sqlite:///{(home / 'eoengine.db').resolve()}"


def redact(url: str) -> str:
    """A database URL with its password hidden (for logs and messages)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # transactions are begun below, with the mode asked for
        cursor = dbapi_conn.cursor()
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "busy_timeout=30000", "synchronous=NORMAL"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql(f"BEGIN {conn.get_execution_options().get('sqlite_begin', 'IMMEDIATE')}")


class Database:
    """The platform's database: an engine and sessions for reading and for writing.

    Args:
        url: A SQLAlchemy URL (``sqlite:///…`` or ``postgresql+psycopg://…``).

    Raises:
        Invalid: The URL is malformed or names another database.

    """

    def __init__(self, url: str) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise Invalid(f"database URL {url!r} is not a URL", DB_FIX) from None
        if parsed.get_backend_name() not in ("sqlite", "postgresql"):
            raise Invalid(f"database {parsed.get_backend_name()!r} is not supported", DB_FIX)
        if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() != "psycopg":
            parsed = parsed.set(drivername="postgresql+psycopg")
        self.url = parsed.render_as_string(hide_password=False)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        options: dict[str, Any] = {"pool_pre_ping": True}
        if self.is_sqlite:
            options["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            options.update(pool_size=10, max_overflow=20, connect_args={"connect_timeout": 5})
        self.engine = create_engine(self.url, **options)
        if self.is_sqlite:
            _sqlite_setup(self.engine)
        reader = self.engine.execution_options(sqlite_begin="DEFERRED") if self.is_sqlite else self.engine
        self._write = sessionmaker(self.engine, expire_on_commit=False)
        self._read = sessionmaker(reader, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session whose transaction commits on leaving (rolls back on an error).

        Yields:
            The session.

        """
        with self._write() as session, session.begin():
            yield session

    @contextmanager
    def request(self, read_only: bool = False) -> Iterator[Session]:
        """A session for one request: commits when the block ends without an error, else rolls back.

        Unlike :meth:`write`, its code may commit midway (to release SQLite's write lock before
        slow work); the next statement begins a new transaction.

        Args:
            read_only: The request only reads (a GET): on SQLite its transactions begin DEFERRED,
                so it takes no write lock and waits for none.

        Yields:
            The session.

        """
        with (self._read if read_only else self._write)() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading (its transaction is rolled back on leaving).

        Yields:
            The session.

        """
        with self._read() as session:
            yield session

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
