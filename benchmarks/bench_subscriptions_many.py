"""100 subscriptions due at once on 2 workers: all done, none doubled, and the wall time.

The server is ``eoengine server run --workers 0`` in its own process and the workers are two
``eoengine worker`` processes, as a team runs them; the schedulers are the workers' own loops
(:mod:`eoengine.platform.scheduler`). The clock is the injected one (``EOENGINE_CLOCK_FILE``, read by
the server and the workers). One project holds a static STAC catalog of one tiny real scene (a 64²
window of the sample Landsat stack) and the tests' tiny U-Net package; ``--subscriptions`` daily
subscriptions over the scene are made through the API while the clock stands before their first due
time, then the clock moves past it: every subscription falls due in the same tick of both schedulers.

Printed: the wall time from the clock's move until every run job has finished, the runs per
subscription (each must be exactly 1: none missed, none doubled, with two schedulers racing), the
mean time of a run job as its worker reports it, and jobs per second.

    .venv/bin/python benchmarks/bench_subscriptions_many.py [--subscriptions 100] [--workers 2]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import subscriptions_support as support
from bench_platform_api import NO_WORKER, Server, machine, platform_server, use_this_checkout
from bench_platform_jobs import seconds, workers
from conftest import saved_package

from eoengine.platform.subscriptions import CLOCK_ENV

BEFORE = dt.datetime(2021, 3, 1, 12, tzinfo=dt.UTC)
AFTER = dt.datetime(2021, 3, 2, 0, 0, 1, tzinfo=dt.UTC)
"""The clock before the first due time (2021-03-02T00:00Z of a daily cadence) and just after it."""


def project(server: Server) -> tuple[str, Path]:
    """A project with a one-scene static catalog ``stac/`` and a model package ``pkg/``; its slug and folder."""
    slug = server.create_project("Watched")
    folder = server.home / "projects" / slug
    scene = support.write_scene(folder / "scenes", "s0")
    support.catalog(folder / "stac", [("s0", "2021-03-01", 5.0, scene)])
    saved_package(folder / "pkg")
    return slug, folder


def subscribe(server: Server, slug: str, area: dict[str, Any], count: int) -> list[int]:
    """Make ``count`` daily subscriptions over ``area``; their ids."""
    ids = []
    with server.client() as c:
        for i in range(count):
            spec = {"name": f"watch {i:03d}", "area": area, "model": "pkg", "source": "stac", "cadence": "daily",
                    "start": "2021-03-01T00:00:00Z", "engine": "torch"}
            made = c.post(f"/projects/{slug}/subscriptions", json={"spec": spec})
            if made.status_code != 201:
                raise SystemExit(f"creating subscription {i} failed: {made.status_code} {made.text}")
            ids.append(int(made.json()["id"]))
    return ids


def run_jobs(server: Server, slug: str) -> list[dict[str, Any]]:
    """The project's subscription-run jobs."""
    with server.client() as c:
        listed = c.get(f"/projects/{slug}/jobs", params={"limit": 500})
        listed.raise_for_status()
        return [j for j in listed.json() if j["kind"] == "subscription-run"]


def wait_done(server: Server, slug: str, count: int, timeout_s: float = 3600) -> list[dict[str, Any]]:
    """Poll until ``count`` run jobs exist and all have finished; returns them."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        jobs = run_jobs(server, slug)
        if len(jobs) >= count and all(j["state"] in ("succeeded", "failed", "cancelled") for j in jobs):
            return jobs
        time.sleep(0.25)
    raise SystemExit(f"{count} run jobs did not finish within {timeout_s:.0f} s")


def runs_per_subscription(server: Server, slug: str, ids: list[int]) -> list[int]:
    """How many runs each subscription recorded."""
    with server.client() as c:
        return [len(c.get(f"/projects/{slug}/subscriptions/{i}/runs").json()) for i in ids]


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscriptions", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--settle", type=float, default=12.0, help="seconds to watch for doubled runs afterwards")
    args = parser.parse_args()
    use_this_checkout()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        clock = tmp / "clock"
        clock.write_text(BEFORE.isoformat())
        os.environ[CLOCK_ENV] = str(clock)  # the server and the workers started below inherit it
        with platform_server(tmp / "home", "", *NO_WORKER) as server, contextlib.ExitStack() as stack:
            slug, folder = project(server)
            ids = subscribe(server, slug, support.area_of(folder / "scenes" / "s0.tif", margin=0.1), args.subscriptions)
            stack.enter_context(workers(server, args.workers))
            time.sleep(2)  # the workers are up (and have ticked once: nothing is due yet)
            if run_jobs(server, slug):
                raise SystemExit("a run was fired before its due time")
            began = time.perf_counter()
            clock.write_text(AFTER.isoformat())
            jobs = wait_done(server, slug, args.subscriptions)
            wall = time.perf_counter() - began
            time.sleep(args.settle)  # more ticks of both schedulers: nothing may fire again
            later = run_jobs(server, slug)
            runs = runs_per_subscription(server, slug, ids)
    states = [j["state"] for j in jobs]
    running = [seconds(j, "started_at", "finished_at") for j in jobs]
    print(f"machine: {machine()}")
    print(f"{args.subscriptions} daily subscriptions due at once, {args.workers} workers (each its own scheduler loop)")
    print(f"  run jobs: {len(later)} ({states.count('succeeded')} succeeded, {states.count('failed')} failed); "
          f"runs per subscription: min {min(runs)}, max {max(runs)}")
    print(f"  wall time from the due time to the last run finished: {wall:.1f} s ({len(jobs) / wall:.2f} runs/s)")
    print(f"  a run job, started to finished (worker's clock): mean {statistics.mean(running):.2f} s, "
          f"median {statistics.median(running):.2f} s")
    ok = len(later) == args.subscriptions and set(runs) == {1} and states.count("succeeded") == args.subscriptions
    print("  all done, none doubled" if ok else "  FAILED: missed or doubled runs")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
