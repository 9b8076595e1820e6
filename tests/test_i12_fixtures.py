"""The platform's test fixtures work: a real PostgreSQL cluster, Debian's Chromium with WebGL, the console check,
and the web app's shell (router, map, API wrapper) in that browser."""

from __future__ import annotations

import asyncio
import concurrent.futures
import http.server
import json
import os
import subprocess
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from platform_fixtures import REPO, ConsoleLog, PgServer, free_port, missing, static_site

pytest_plugins = ["pytester"]

TESTS = Path(__file__).resolve().parent


# ---------------------------------------------------------------- PostgreSQL


def test_postgres_serves_through_sqlalchemy_and_psycopg(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql+psycopg://eoengine@127.0.0.1:")
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        assert conn.execute(sa.text("SELECT 1")).scalar() == 1
        assert "PostgreSQL" in conn.execute(sa.text("SELECT version()")).scalar_one()
        assert conn.execute(sa.text("SELECT current_database()")).scalar() == "eoengine"
    assert engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"
    engine.dispose()


def test_pg_db_is_a_fresh_database_per_test(pg_db: str, postgres_url: str) -> None:
    assert pg_db != postgres_url
    fresh, shared = sa.create_engine(pg_db), sa.create_engine(postgres_url)
    with fresh.begin() as conn:
        conn.execute(sa.text("CREATE TABLE only_here (id int)"))
    assert "only_here" in sa.inspect(fresh).get_table_names()
    assert "only_here" not in sa.inspect(shared).get_table_names()
    fresh.dispose()
    shared.dispose()


def test_stop_and_start_keep_the_data(pg_db: str, pg_server: PgServer) -> None:
    engine = sa.create_engine(pg_db)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE kept (id int primary key, name text)"))
        conn.execute(sa.text("INSERT INTO kept VALUES (1, 'survives a restart')"))
    engine.dispose()
    pg_server.stop()
    assert not pg_server.running
    with pytest.raises(sa.exc.OperationalError):
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    pg_server.start()
    engine.dispose()  # the pool's connections died with the server
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT name FROM kept WHERE id = 1")).scalar() == "survives a restart"
    engine.dispose()


def test_missing_system_part_fails_under_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="chromium is missing; run make system-deps"):
        missing("chromium is missing", "run make system-deps")
    for value in ("", "false", "0"):
        monkeypatch.setenv("CI", value)
        with pytest.raises(pytest.skip.Exception, match="chromium is missing"):
            missing("chromium is missing", "run make system-deps")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        missing("chromium is missing", "run make system-deps")


# ---------------------------------------------------------------- the browser and the built app


def test_built_app_shows_its_shell_with_no_network(page: Any, web_dist: Path, screenshot: Any) -> None:
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    with static_site(web_dist) as url:
        page.goto(f"{url}/#/signin")  # the one page that asks the API nothing before the user acts
        page.wait_for_selector("h1")
        webgl = page.evaluate("!!document.createElement('canvas').getContext('webgl2') "
                              "|| !!document.createElement('canvas').getContext('webgl')")
        assert webgl  # MapLibre's maps need it (tests/test_i12_web.py checks them on a real server)
        assert page.inner_text("h1") == "Sign in"
        assert page.title() == "Sign in · eoengine"
        path = screenshot("i12-fixtures-signin")
    assert path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    outside = [u for u in requests if not u.startswith((url, "blob:" + url, "data:"))]
    assert requests and not outside, outside  # no fonts, styles or scripts from elsewhere


ROUTES = """async () => {
  const m = await import('/src/router.ts');
  const page = () => {};
  const routes = [{ pattern: '/projects', title: 'Projects', page },
                  { pattern: '/projects/:slug/datasets/:ref', title: 'Dataset', page }];
  const found = m.matchRoute(routes, '#/projects/demo/datasets/chips%40v1?bands=red');
  return [found.route.title, found.params, found.query.get('bands'), m.matchRoute(routes, '#/no/such/page')];
}"""


def test_router_decodes_params_and_sends_unknown_hashes_to_projects(page: Any, console_log: ConsoleLog,
                                                                      dev_app: str) -> None:
    console_log.allow(r"status of 401")  # the projects page asks who is signed in: nobody
    page.goto(f"{dev_app}/#/signin")
    page.wait_for_selector("h1")
    assert page.evaluate(ROUTES) == ["Dataset", {"slug": "demo", "ref": "chips@v1"}, "red", None]
    page.goto(f"{dev_app}/#/no/such/page")
    page.wait_for_function("location.hash.startsWith('#/signin?next=%23%2Fprojects')")  # via Projects, signed out
    assert page.inner_text("h1") == "Sign in"


def test_console_check_fires_on_console_and_page_errors(browser: Any) -> None:
    context = browser.new_context()
    tab = context.new_page()
    log = ConsoleLog()
    log.attach(tab)
    tab.set_content("<script>console.log('fine'); console.error('deliberate console error');"
                    " setTimeout(() => { throw new Error('deliberate page error'); });</script>")
    tab.wait_for_timeout(200)
    tab.evaluate("0")
    context.close()
    assert "console.log: fine" in log.messages
    with pytest.raises(pytest.fail.Exception, match=r"(?s)2 error\(s\).*deliberate console error.*deliberate page error"):
        log.check()
    log.allow(r"deliberate console error")
    with pytest.raises(pytest.fail.Exception, match=r"(?s)1 error\(s\):\npage error: .*deliberate page error"):
        log.check()
    clean = ConsoleLog()
    clean.messages.append("console.warning: only a warning")
    clean.check()


def test_async_code_runs_in_a_thread_beside_the_open_browser(browser: Any) -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    refused = answer()
    with pytest.raises(RuntimeError, match="running event loop"):  # the limit the browser fixture documents
        asyncio.run(refused)
    refused.close()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert pool.submit(asyncio.run, answer()).result() == 42


def test_page_fixture_fails_the_test_at_teardown(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(f"import sys\nsys.path.insert(0, {str(TESTS)!r})\npytest_plugins = ['platform_fixtures']\n")
    pytester.makepyfile(textwrap.dedent("""
        def test_clean(page):
            page.set_content("<p>fine</p><script>console.warn('a warning is no error')</script>")

        def test_erroring(page):
            page.set_content("<script>console.error('deliberate console error')</script>")

        def test_allowed(page, console_log):
            console_log.allow("expected 401")
            page.set_content("<script>console.error('expected 401')</script>")
    """))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_erroring*", "*console.error: deliberate console error*"])


# ---------------------------------------------------------------- the API wrapper (web/src/api.ts)


class ScriptedApi(http.server.BaseHTTPRequestHandler):
    """Answers of the platform's shape (JSON; {"error","fix"} on failure) for the wrapper, before the server exists."""

    def log_message(self, format: str, *args: Any) -> None:  # the base class's signature
        pass

    def _answer(self, status: int, body: bytes, kind: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _route(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        sent = self.rfile.read(length).decode() if length else ""
        if self.path.startswith("/api/v1/echo"):
            echo = {"method": self.command, "path": self.path, "csrf": self.headers.get("X-CSRF-Token"),
                    "type": self.headers.get("Content-Type"), "body": sent}
            self._answer(200, json.dumps(echo).encode())
        elif self.path == "/api/v1/invalid":
            self._answer(422, json.dumps({"error": "config: 1 problem", "fix": "set output_dir"}).encode())
        elif self.path in ("/api/v1/private", "/api/v1/auth/me"):
            self._answer(401, json.dumps({"error": "not signed in", "fix": "sign in"}).encode())
        else:
            self._answer(502, b"<html>bad gateway</html>", "text/html")

    do_GET = do_POST = do_PUT = do_DELETE = _route


@pytest.fixture(scope="module")
def dev_app() -> Iterator[str]:
    """The web app served by Vite's dev server (sources as modules), its /api passed to ScriptedApi."""
    vite = REPO / "web" / "node_modules" / ".bin" / "vite"
    if not vite.exists():
        missing("web/node_modules is not installed", "run `make web` (npm ci in web/)")
    api = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ScriptedApi)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    port = free_port()
    # without CI in its environment: with CI set, the dev server's pages never finished loading (600 s timeouts)
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"EOENGINE_SERVER": f"http://127.0.0.1:{api.server_address[1]}"}
    proc = subprocess.Popen([str(vite), "--port", str(port), "--strictPort", "--clearScreen", "false"],
                            cwd=REPO / "web", env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # Vite prints its URL once it listens
            if f":{port}" in line:
                break
        else:
            raise RuntimeError("vite dev server did not start")
        # keep reading what it prints, so a full pipe never blocks it
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        api.shutdown()
        api.server_close()


API_CALLS = """async () => {
  const m = await import('/src/api.ts');
  document.cookie = 'eoengine_csrf=csrf-123; path=/';
  const out = {};
  out.get = await m.api('/echo', { query: { a: 'x y', b: undefined } });
  out.post = await m.api('/echo', { json: { name: 'p' } });
  out.del = await m.api('/echo/1', { method: 'DELETE' });
  try { await m.api('/invalid', { json: {} }); } catch (e) {
    out.invalid = [e.name, e.status, e.message, e.fix, e instanceof m.ApiError];
  }
  try { await m.api('/gateway'); } catch (e) { out.gateway = [e.status, e.message, e.fix]; }
  location.hash = '#/projects/demo';
  try { await m.api('/private'); } catch (e) { m.reportError(e); }
  out.hash = location.hash;
  return out;
}"""
SHOW_ERROR = """async () => {
  const m = await import('/src/api.ts');
  try { await m.api('/invalid', { json: {} }); } catch (e) { m.reportError(e); }
}"""


def test_api_wrapper_sends_csrf_on_unsafe_methods_and_turns_error_bodies_into_shown_errors(
        page: Any, console_log: ConsoleLog, dev_app: str) -> None:
    console_log.allow(r"status of (401|422|502)")  # the browser logs each failed fetch; the app handles them
    page.goto(f"{dev_app}/#/signin")
    page.wait_for_selector("h1")
    out = page.evaluate(API_CALLS)
    assert out["get"] == {"method": "GET", "path": "/api/v1/echo?a=x+y", "csrf": None, "type": None, "body": ""}
    assert out["post"]["method"] == "POST" and out["post"]["csrf"] == "csrf-123"
    assert out["post"]["type"] == "application/json" and json.loads(out["post"]["body"]) == {"name": "p"}
    assert out["del"]["method"] == "DELETE" and out["del"]["csrf"] == "csrf-123"
    assert out["invalid"] == ["ApiError", 422, "config: 1 problem", "set output_dir", True]
    assert out["gateway"][0] == 502 and "502" in out["gateway"][1] and out["gateway"][2]
    assert out["hash"] == "#/signin?next=%23%2Fprojects%2Fdemo"  # a 401 sends the user to sign in
    page.wait_for_function("document.querySelector('h1')?.textContent === 'Sign in'")
    page.evaluate(SHOW_ERROR)
    alert = page.locator("#alerts .alert")
    assert alert.count() == 1 and "config: 1 problem" in alert.inner_text() and "set output_dir" in alert.inner_text()
