"""Platform API latency: p50/p99 and requests/s of the project overview and a tile route at 1, 4 and 16 clients.

The server is a real one in its own process (``eoengine server init`` then ``eoengine server run
--workers 0`` on 127.0.0.1, so it does not share the clients' GIL), on SQLite and, when PostgreSQL is installed, on a
throw-away cluster (tests/platform_fixtures.py's ``PgServer``). The project comes from the ``nc-landsat``
template. Each client is a thread with its own ``httpx.Client`` (one keep-alive connection); every
client warms up first, then all start together and share the N timed requests of the level.

Baselines, measured in the same run:

* the overview built and serialised in this process (``routes.projects.overview`` and its JSON, on the
  same database; no HTTP, no authentication): the server's overhead;
* for the tile route, the same tiles rendered in this process by the functions the route calls
  (rio-tiler), without HTTP;
* p50 at 4 and 16 clients against p50 at 1 client: how latency grows with load.

    .venv/bin/python benchmarks/bench_platform_api.py [--requests 400] [--no-postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout's code, not the installed one

from conftest import start_server
from platform_fixtures import PgServer, free_port, postgres_bindir, throwaway_cluster

REPO = Path(__file__).resolve().parents[1]
LEVELS = (1, 4, 16)
TEMPLATE = "nc-landsat"
NO_WORKER = ("--workers", "0")
"""``server run`` without its embedded worker: only requests load the server."""


# ---------------------------------------------------------------- a platform in its own process


def use_this_checkout() -> None:
    """Put this checkout's ``src`` first on the path of the server and workers started, as on this process's."""
    path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), path) if p)


def eoengine(*args: str) -> list[str]:
    """The command line of ``eoengine ARGS`` with this interpreter."""
    return [sys.executable, "-m", "eoengine", *args]


@dataclass
class Server:
    """A running platform server: its URL, home, database URL and the first admin's token."""

    url: str
    home: Path
    db_url: str
    token: str

    def client(self) -> httpx.Client:
        """A client of the API with the admin's token and one connection."""
        return httpx.Client(base_url=f"{self.url}/api/v1", timeout=120, limits=httpx.Limits(max_connections=1),
                            headers={"Authorization": f"Bearer {self.token}"})

    def create_project(self, name: str) -> str:
        """Make a project from the NC Landsat template; returns its slug."""
        with self.client() as c:
            made = c.post("/projects", json={"name": name, "template": TEMPLATE})
            if made.status_code != 201:
                raise SystemExit(f"creating the project failed: {made.status_code} {made.text}")
            return str(made.json()["slug"])


def init_home(home: Path, db_url: str = "") -> str:
    """``eoengine server init``: the database and the first admin; returns the admin's API token."""
    db = ["--db", db_url] if db_url else []
    done = subprocess.run(eoengine("server", "init", "--home", str(home), *db),
                          capture_output=True, text=True, check=False)
    found = re.search(r"API token \(shown once\): (\S+)", done.stdout)
    if done.returncode or not found:
        raise SystemExit(f"eoengine server init failed:\n{done.stdout}{done.stderr}")
    return found.group(1)


@contextlib.contextmanager
def platform_server(home: Path, db_url: str = "", *run_args: str) -> Iterator[Server]:
    """A fresh platform home (``server init``) served by ``eoengine server run`` until the block ends.

    Args:
        home: The server's folder (made).
        db_url: The database (default: SQLite under ``home``).
        *run_args: More options of ``server run``.

    Yields:
        The running platform.

    """
    token = init_home(home, db_url)
    port = free_port()
    db = ["--db", db_url] if db_url else []
    proc = start_server(eoengine("server", "run", "--home", str(home), "--port", str(port), *db, *run_args), port)
    try:
        yield Server(f"http://127.0.0.1:{port}", home, db_url, token)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


@contextlib.contextmanager
def postgres(enabled: bool = True) -> Iterator[PgServer | None]:
    """A throw-away PostgreSQL cluster (None, with a note, when disabled or not installed)."""
    bindir = postgres_bindir() if enabled else None
    if bindir is None:
        print("PostgreSQL: " + ("not installed (make system-deps), skipped" if enabled else "skipped (--no-postgres)"))
        yield None
        return
    with throwaway_cluster(bindir, "eoengine-bench-pg-") as server:
        yield server


# ---------------------------------------------------------------- load


@dataclass(frozen=True)
class Level:
    """The timed requests of one concurrency level."""

    clients: int
    latencies: np.ndarray
    wall: float

    @property
    def rate(self) -> float:
        """Requests per second over the level."""
        return len(self.latencies) / self.wall

    def p(self, q: float) -> float:
        """A latency percentile, in ms."""
        return float(np.percentile(self.latencies, q) * 1000)


def load(server: Server, paths: list[str], clients: int, requests: int, warmup: int = 10) -> Level:
    """GET ``paths`` (in turn) from ``clients`` threads, each with its own connection.

    Args:
        server: The server.
        paths: API paths, cycled through.
        clients: Concurrent clients.
        requests: Timed requests, shared by the clients.
        warmup: Untimed requests of each client before the timed ones.

    Returns:
        The latencies and the wall time of the timed requests.

    Raises:
        SystemExit: A request did not answer 200.

    """
    start = threading.Barrier(clients + 1)
    ticket = itertools.count()
    latencies: list[float] = []
    failures: list[str] = []

    def client(first: int) -> None:
        with server.client() as c:
            for i in range(warmup):
                c.get(paths[(first + i) % len(paths)])
            start.wait()
            while (i := next(ticket)) < requests and not failures:
                t0 = time.perf_counter()
                answer = c.get(paths[i % len(paths)])
                latencies.append(time.perf_counter() - t0)
                if answer.status_code != 200:
                    failures.append(f"GET {paths[i % len(paths)]}: {answer.status_code} {answer.text[:300]}")

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if failures:
        raise SystemExit(failures[0])
    return Level(clients, np.array(latencies), wall)


def in_process(call: Callable[[], object], repeats: int, warmup: int = 5) -> np.ndarray:
    """Seconds per call of ``call``, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return np.array(times)


def bracketed(server: Server, paths: list[str], requests: int, baseline: Callable[[], float]) -> list[tuple[Level, float]]:
    """Each concurrency level, with the in-process baseline measured right before and right after it.

    Args:
        server: The server.
        paths: The API paths requested (in turn).
        requests: Timed requests per level.
        baseline: Seconds per call in-process (a median), measured again at every bracket.

    Returns:
        Per level: its requests and the mean of the baselines around it (seconds).

    """
    marks, levels = [baseline()], []
    for clients in LEVELS:
        levels.append(load(server, paths, clients, requests))
        marks.append(baseline())
    return [(lv, (a + b) / 2) for lv, a, b in zip(levels, marks, marks[1:], strict=False)]


def table(title: str, rows: list[tuple[Level, float]], baseline: str) -> None:
    """Print one route's levels, with p50 against 1 client and against the in-process baseline."""
    print(f"\n{title}\n  in-process baseline: {baseline} (p50, measured before and after each level)")
    print(f"  {'clients':>7}{'requests':>10}{'requests/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'p50 vs 1 client':>17}"
          f"{'in-process ms':>15}{'p50 vs in-process':>19}")
    one = rows[0][0].p(50)
    for lv, base in rows:
        print(f"  {lv.clients:>7}{len(lv.latencies):>10}{lv.rate:>12.1f}{lv.p(50):>9.1f}{lv.p(99):>9.1f}"
              f"{lv.p(50) / one:>17.2f}{base * 1000:>15.1f}{lv.p(50) / (base * 1000):>19.2f}")


# ---------------------------------------------------------------- the routes


def overview_in_process(server: Server, slug: str, repeats: int = 100) -> float:
    """Median seconds of the overview built and serialised in this process, on the server's database (no HTTP, no auth)."""
    from sqlalchemy import select

    from eoengine.platform.db.models import Project
    from eoengine.platform.routes.projects import overview
    from eoengine.platform.settings import Platform, PlatformSettings

    state = Platform(PlatformSettings(home=server.home, db_url=server.db_url))
    try:
        with state.db.read() as session:
            project = session.scalars(select(Project).where(Project.slug == slug)).one()
            return float(np.median(in_process(lambda: overview(state, session, project, "admin").model_dump_json(),
                                              repeats)))
    finally:
        state.db.dispose()


def scene_tiles(bbox: list[float], at_least: int = 16) -> tuple[int, list[tuple[int, int, int]]]:
    """The first zoom at which ``at_least`` Web Mercator tiles cover a bbox (degrees), and those tiles."""
    import morecantile

    grid, (west, south, east, north) = morecantile.tms.get("WebMercatorQuad"), bbox[:4]
    for z in range(8, 19):
        tiles = [(t.z, t.x, t.y) for t in grid.tiles(west, south, east, north, [z])]
        if len(tiles) >= at_least:
            return z, tiles
    return z, tiles


def tile_in_process(server: Server, slug: str, item_id: str, tiles: list[tuple[int, int, int]],
                    repeats: int = 40) -> float:
    """Median seconds of a true-colour tile rendered in this process by the route's renderer (rio-tiler; no HTTP)."""
    from eoengine.platform.imagery import project_catalog
    from eoengine.platform.projects import CONFIG, validate_config
    from eoengine.platform.routes.imagery import parse_recipe, render

    folder = server.home / "projects" / slug
    text = (folder / CONFIG).read_text()
    index = project_catalog(validate_config(text, folder), text, folder, [])
    item = next(r.item for r in index.records if r.item["id"] == item_id)
    recipe, turn = parse_recipe("true-color"), itertools.cycle(tiles)
    return float(np.median(in_process(lambda: render(item, recipe, *next(turn)), repeats)))


def bench_tiles(label: str, server: Server, slug: str, requests: int) -> None:
    """Measure the imagery tile route over the project's scene, or say why it cannot be measured."""
    with server.client() as c:
        listed = c.get(f"/projects/{slug}/imagery")
    if listed.status_code == 404 and "imagery" not in listed.text:
        print(f"\nimagery tiles, {label}: the route is not on this server (GET /projects/{slug}/imagery: 404); "
              "not measured")
        return
    listed.raise_for_status()
    item = listed.json()[0]
    z, tiles = scene_tiles(item["bbox"])
    paths = [f"/projects/{slug}/imagery/{item['id']}/tiles/{tz}/{x}/{y}.png?recipe=true-color" for tz, x, y in tiles]
    rows = bracketed(server, paths, requests, lambda: tile_in_process(server, slug, item["id"], tiles))
    table(f"GET /api/v1/projects/{slug}/imagery/{item['id']}/tiles/{{z}}/{{x}}/{{y}}.png?recipe=true-color "
          f"({len(tiles)} tiles of zoom {z} in turn), {label}", rows,
          "the same tiles rendered by routes.imagery.render (rio-tiler read, stretch, PNG)")


def bench_server(label: str, server: Server, requests: int) -> None:
    """Measure the overview and the imagery tile route of a fresh NC project on one server."""
    slug = server.create_project("NC landcover")
    rows = bracketed(server, [f"/projects/{slug}"], requests, lambda: overview_in_process(server, slug))
    table(f"GET /api/v1/projects/{slug} (overview), {label}", rows, "overview() + its JSON, on the same database")
    bench_tiles(label, server, slug, requests)


def machine() -> str:
    """The cores and the load average now (the machine is shared: figures drift with its load)."""
    return f"{os.cpu_count()} cores, load average {' / '.join(f'{x:.1f}' for x in os.getloadavg())}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=400, help="Timed requests per concurrency level")
    ap.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = ap.parse_args()
    use_this_checkout()
    print(f"platform server: 'eoengine server run' (uvicorn, one process) on 127.0.0.1; {machine()}; "
          f"{args.requests} timed requests per level after 10 per client; clients: threads, one connection each")
    with tempfile.TemporaryDirectory(prefix="eoengine-bench-") as tmp:
        with platform_server(Path(tmp) / "sqlite", "", *NO_WORKER) as server:
            bench_server("SQLite", server, args.requests)
        with postgres(not args.no_postgres) as pg:
            if pg is not None:
                with platform_server(Path(tmp) / "postgres", pg.create_database("bench_api"), *NO_WORKER) as server:
                    bench_server("PostgreSQL", server, args.requests)
    print(f"\nat the end: {machine()}")


if __name__ == "__main__":
    main()
