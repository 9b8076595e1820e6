"""Fixtures for the platform's tests: a throw-away PostgreSQL cluster and headless Chromium through Playwright.

Both use Debian packages that `make system-deps` installs (postgresql, chromium). When one is missing a test
fails under CI (the CI variable set) and is skipped elsewhere, with the fix in the message.
Loaded by tests/conftest.py (``pytest_plugins``); self-contained, so a pytester run can load it alone.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import http.server
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page

REPO = Path(__file__).resolve().parents[1]
WEB_DIST = REPO / "src" / "eoengine" / "platform" / "web_dist"
SCREENSHOTS = REPO / "tests" / "artifacts" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-quic", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 800}


def in_ci() -> bool:
    """Whether the tests run under CI (the CI variable set to anything but empty, 0 or false)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


def missing(problem: str, fix: str) -> NoReturn:
    """Stop a test that lacks a system part: fail under CI, skip elsewhere."""
    message = f"{problem}; {fix}"
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------- cheaper test processes

CHEAP_ARGON2 = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}
"""argon2id's least cost, for the servers the tests run in their own process (0.2 s a hash otherwise)."""


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashes() -> Iterator[None]:
    """Password hashes made in the test processes are argon2id at its least cost.

    The platform's servers in a test's process hash (make users, init) and verify (sign in) with
    ``eoengine.platform.security``'s hasher: at the production parameters each takes 0.2 s, and the
    tests make and sign in hundreds of users. The code path is the same; the parameters are what
    ``test_i12_platform_core``'s ``test_production_password_hashes_keep_their_cost`` checks, on the
    hasher kept here as ``PRODUCTION_HASHER``. Servers started as subprocesses keep the production cost.
    """
    from argon2 import PasswordHasher

    from eoengine.platform import security

    global PRODUCTION_HASHER
    if PRODUCTION_HASHER is None:  # not a pytester session inside a test session, which finds the cheap one
        PRODUCTION_HASHER = security._hasher
    saved = security._hasher, security._DUMMY
    security._hasher = PasswordHasher(**CHEAP_ARGON2)
    security._DUMMY = security._hasher.hash("not a password of anyone")
    try:
        yield
    finally:
        security._hasher, security._DUMMY = saved


PRODUCTION_HASHER: Any = None
"""``eoengine.platform.security``'s own hasher, while :func:`_cheap_password_hashes` replaces it."""


@pytest.fixture(scope="session", autouse=True)
def _one_tls_context() -> Iterator[None]:
    """The test process's httpx clients share the default TLS context instead of each building its own.

    httpx builds one for every Client (and every ``httpx.get``), loading the CA bundle again: 70 ms,
    and the tests make thousands of clients, all for plain http:// servers on 127.0.0.1. The shared
    context is the one httpx builds (per CA bundle setting); other ``verify`` values are passed on.
    """
    import httpx._transports.default as transports

    build = transports.create_ssl_context
    made: dict[tuple[bool, str | None, str | None], Any] = {}

    def shared(verify: Any = True, cert: Any = None, trust_env: bool = True) -> Any:
        if verify is not True or cert is not None:
            return build(verify=verify, cert=cert, trust_env=trust_env)
        key = (trust_env, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
        if key not in made:
            made[key] = build(verify=verify, cert=cert, trust_env=trust_env)
        return made[key]

    transports.create_ssl_context = shared  # type: ignore[assignment]  # the same signature
    try:
        yield
    finally:
        transports.create_ssl_context = build  # type: ignore[assignment]


# ---------------------------------------------------------------- PostgreSQL


def postgres_bindir() -> Path | None:
    """The newest /usr/lib/postgresql/VERSION/bin holding a postgres binary, or None."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/postgres")]
    return max(found, key=lambda bindir: [int(x) for x in re.findall(r"\d+", bindir.parent.name)], default=None)


class PgServer:
    """A throw-away PostgreSQL cluster on 127.0.0.1 (trust authentication, superuser ``eoengine``).

    As root (CI) the server runs as the ``postgres`` system user, which owns the cluster's folders.
    ``stop()`` and ``start()`` keep the data, for tests of a database that is briefly unreachable.
    """

    user = "eoengine"

    def __init__(self, bindir: Path, root: Path) -> None:
        self.bindir, self.root = bindir, root
        self.data, self.sockets, self.log = root / "data", root / "sockets", root / "postgres.log"
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0
        self.proc: subprocess.Popen[bytes] | None = None

    def _cmd(self, tool: str, *args: str) -> list[str]:
        cmd = [str(self.bindir / tool), *args]
        return ["runuser", "-u", "postgres", "--", *cmd] if self.as_postgres else cmd

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self._cmd(tool, *args), cwd=self.root, capture_output=True, text=True, check=False)

    def init(self) -> None:
        """Create the cluster (initdb). Raises RuntimeError with initdb's output when it fails."""
        self.sockets.mkdir(parents=True, exist_ok=True)
        if self.as_postgres:
            for path in (self.root, self.sockets):
                shutil.chown(path, "postgres", "postgres")
        done = self._run("initdb", "-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8", "--locale=C")
        if done.returncode:
            raise RuntimeError(f"initdb failed:\n{done.stdout}{done.stderr}")

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 30.0) -> None:
        """Start the server (no-op when running) and wait until pg_isready says it accepts connections."""
        if self.running:
            return
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self._cmd(
                "postgres", "-D", str(self.data), "-k", str(self.sockets), "-p", str(self.port),
                "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
                "-c", "full_page_writes=off"), cwd=self.root, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while self._run("pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port)).returncode:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not start:\n{self.log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop the server (pg_ctl stop -m fast), keeping its data; no-op when stopped."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            done = self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w")
            if done.returncode and self.proc.poll() is None:
                self.proc.terminate()
            self.proc.wait(timeout=30)
        self.proc = None

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of a database of this server."""
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str) -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE) on the maintenance database."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=self.user, dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]  # our own literal statements

    def create_database(self, name: str) -> str:
        """Create a database (``name``: letters, digits, underscores); returns its URL."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError(f"database name {name!r}: use lower-case letters, digits and underscores")
        self.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, closing the connections still open on it."""
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def throwaway_cluster(bindir: Path, prefix: str) -> Iterator[PgServer]:
    """A new cluster in a temporary folder, started; stopped and deleted when the block ends."""
    server = PgServer(bindir, Path(tempfile.mkdtemp(prefix=prefix)))
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The session's PostgreSQL server; stopped and deleted at the end of the session."""
    bindir = postgres_bindir()
    if bindir is None:
        missing("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres)",
                "run `make system-deps` (apt-get install postgresql)")
    with throwaway_cluster(bindir, "eoengine-pg-") as server:
        yield server


@pytest.fixture(scope="session")
def postgres_url(pg_server: PgServer) -> str:
    """``postgresql+psycopg://eoengine@127.0.0.1:PORT/eoengine``: one database for the whole session."""
    return pg_server.create_database("eoengine")


@contextlib.contextmanager
def fresh_database(server: PgServer, prefix: str = "test") -> Iterator[str]:
    """A fresh, empty database of ``server`` (its URL) until the block ends; then dropped."""
    server.start()  # a fault test before may have left the server stopped
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    url = server.create_database(name)
    try:
        yield url
    finally:
        server.start()
        server.drop_database(name)


@pytest.fixture
def pg_db(pg_server: PgServer) -> Iterator[str]:
    """A fresh, empty database for one test (its URL); dropped afterwards."""
    with fresh_database(pg_server) as url:
        yield url


DATABASES = ("sqlite", "postgresql")
"""The databases a platform runs on; the API tests run once on each."""


def _database_of(request: pytest.FixtureRequest, prefix: str) -> Iterator[str]:
    if request.param == "sqlite":
        yield ""  # the server's default: SQLite in its home
        return
    with fresh_database(request.getfixturevalue("pg_server"), prefix) as url:
        yield url


@pytest.fixture(scope="module", params=DATABASES)
def module_db(request: pytest.FixtureRequest) -> Iterator[str]:
    """The database URL of a module's server, once per database.

    ``""`` (SQLite under the server's home), then a fresh PostgreSQL database of the session's
    cluster, dropped after the module. pytest runs the module's tests on one database, then on
    the other, so a module starts one server per database.
    """
    yield from _database_of(request, "module")


@pytest.fixture(params=DATABASES)
def each_db(request: pytest.FixtureRequest) -> Iterator[str]:
    """As :func:`module_db`, for one test: ``""`` (SQLite), then a fresh PostgreSQL database."""
    yield from _database_of(request, "test")


# ---------------------------------------------------------------- the browser


class ConsoleLog:
    """The console messages and page errors of a page; ``check()`` fails on an error.

    A test expecting a console error (a 401 the page answers by showing the sign-in page, say) allows it
    with ``allow(regex)``, matched against the line ``console.error: TEXT (URL)``. Page errors (uncaught
    exceptions) cannot be allowed.
    """

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.page_errors: list[str] = []
        self.allowed: list[re.Pattern[str]] = []

    def attach(self, page: Page) -> None:
        """Record everything ``page`` logs from now on."""
        page.on("console", self.record_console)
        page.on("pageerror", self.record_page_error)

    def allow(self, pattern: str) -> None:
        """Let console errors matching ``pattern`` (a regex) pass the check."""
        self.allowed.append(re.compile(pattern))

    def record_console(self, message: ConsoleMessage) -> None:
        url = message.location.get("url") if message.location else ""
        self.messages.append(f"console.{message.type}: {message.text}" + (f" ({url})" if url else ""))

    def record_page_error(self, error: Any) -> None:
        stack = getattr(error, "stack", None) or ""
        self.page_errors.append(f"page error: {error}" + (f"\n{stack}" if stack else ""))

    def errors(self) -> list[str]:
        """The console errors not allowed, then every page error."""
        console = [m for m in self.messages if m.startswith("console.error:")
                   and not any(p.search(m) for p in self.allowed)]
        return console + self.page_errors

    def check(self) -> None:
        """Fail the test (pytest.fail) listing the errors, if any.

        Raises:
            pytest.fail.Exception: when a console error or page error was recorded.
        """
        errors = self.errors()
        if errors:
            pytest.fail(f"the page logged {len(errors)} error(s):\n" + "\n".join(errors), pytrace=False)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright's sync API (never a downloaded browser).

    While it is open (from the first browser test to the end of the session) the test thread counts as inside
    Playwright's event loop, so ``asyncio.run()`` there raises "cannot be called from a running event loop":
    run async code in a thread of its own, as ``serve_in_thread`` and FastAPI's TestClient do.
    """
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(executable).exists():
        missing("Chromium is not installed", "run `make system-deps` (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("Playwright for Python is not installed", "run `pip install -e '.[dev]'`")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def console_log() -> ConsoleLog:
    """The console log of the test's ``page`` (ask for it to allow an expected error)."""
    return ConsoleLog()


@pytest.fixture
def page(browser: Browser, console_log: ConsoleLog) -> Iterator[Page]:
    """A page at 1280×800 in a fresh context; the test fails at teardown if it logged a console or page error."""
    from playwright.sync_api import Error as PlaywrightError

    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    tab = context.new_page()
    console_log.attach(tab)
    yield tab
    with contextlib.suppress(PlaywrightError):
        tab.evaluate("0")  # a round trip: delivers the events still on their way
    context.close()
    console_log.check()


@pytest.fixture
def screenshot(page: Page) -> Callable[[str], Path]:
    """``screenshot(name)`` saves the page as tests/artifacts/screenshots/NAME.png and returns the path."""

    def shoot(name: str) -> Path:
        if not re.fullmatch(r"[\w.-]+", name):
            raise ValueError(f"screenshot name {name!r}: use letters, digits, '.', '-' and '_'")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return shoot


# ---------------------------------------------------------------- the built web app


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # the base class's signature
        pass


@contextlib.contextmanager
def static_site(folder: Path) -> Iterator[str]:
    """Serve ``folder`` with Python's http.server in a thread on 127.0.0.1; yields the base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def web_dist() -> Path:
    """The built web app (src/eoengine/platform/web_dist)."""
    if not (WEB_DIST / "index.html").is_file():
        missing("the web app is not built (no src/eoengine/platform/web_dist/index.html)",
                "run `make web` (npm ci and npm run build in web/)")
    return WEB_DIST
