"""Platform job throughput and per-job overhead: 50 tiny jobs with 1 and 2 workers, on SQLite and PostgreSQL.

The server is ``eoengine server run --workers 0`` in its own process and the workers are
``eoengine worker --home HOME --db URL`` processes, as a team runs them. Jobs are submitted and
followed through the public API (``POST /api/v1/projects/{slug}/jobs``, ``GET /api/v1/jobs/{id}``).

The job is the cheapest real spec: ``{"kind": "build"}`` of the NC Landsat project (the ``nc-landsat``
template) once its dataset is built, so each job checks its inputs' hashes against the manifest and
finds the dataset up to date. A worker runs every job in a process of its own, forked from its
preloaded launcher (:mod:`eoengine.platform.launcher`, the build stage already imported), which
runs the spec, records the outcome and indexes the dataset.

Overhead: jobs run one at a time (submit, poll every 20 ms until succeeded), the mean time from submit
to succeeded minus the time ``run_spec`` of the same spec takes in this process (warm: the stages
already imported); the time of the spec in a fresh interpreter (imports included) is printed too.
Throughput: 50 jobs submitted at once, wall time from the first submit until all are seen succeeded.

    .venv/bin/python benchmarks/bench_platform_jobs.py [--jobs 50] [--sequential 10] [--no-postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from bench_platform_api import (
    NO_WORKER,
    Server,
    eoengine,
    in_process,
    machine,
    platform_server,
    postgres,
    use_this_checkout,
)

SPEC: dict[str, Any] = {"kind": "build"}
TARGET_S = 1.0
FINISHED = ("succeeded", "failed", "cancelled")
COLD = """
import sys, time
t0 = time.perf_counter()
from eoengine.jobs.run import run_spec
from eoengine.jobs.specs import BuildDatasetSpec
done = run_spec(BuildDatasetSpec(config="eoengine.yaml"))
print(time.perf_counter() - t0, done.up_to_date)
"""


@contextlib.contextmanager
def workers(server: Server, count: int) -> Iterator[None]:
    """``count`` ``eoengine worker`` processes on the server's home and database until the block ends."""
    db = ["--db", server.db_url] if server.db_url else []
    with contextlib.ExitStack() as logs:
        procs = [subprocess.Popen(eoengine("worker", "--home", str(server.home), *db), stdout=log, stderr=log)
                 for log in (logs.enter_context(open(server.home / f"worker-{i}.log", "ab")) for i in range(count))]
        try:
            yield
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=60)


def submit(server: Server, slug: str) -> int:
    """Queue one build job; returns its id."""
    with server.client() as c:
        made = c.post(f"/projects/{slug}/jobs", json={"spec": SPEC})
    if made.status_code != 201:
        raise SystemExit(f"submitting a job failed: {made.status_code} {made.text}")
    return int(made.json()["id"])


def finished(server: Server, job: dict[str, Any]) -> dict[str, Any]:
    """A finished job, or SystemExit with its error and the end of its log when it did not succeed."""
    if job["state"] != "succeeded":
        with server.client() as c:
            log = c.get(f"/jobs/{job['id']}/log").text[-3000:]
        raise SystemExit(f"job {job['id']} {job['state']}: {job['error']}; the end of its log:\n{log}")
    return job


def wait_all(server: Server, slug: str, ids: set[int], poll_s: float = 0.1, timeout_s: float = 3600) -> list[dict[str, Any]]:
    """Poll the project's job list until every job of ``ids`` has finished; returns them (all succeeded)."""
    end = time.monotonic() + timeout_s
    with server.client() as c:
        while time.monotonic() < end:
            listed = c.get(f"/projects/{slug}/jobs", params={"limit": 500})
            listed.raise_for_status()
            done = [j for j in listed.json() if j["id"] in ids and j["state"] in FINISHED]
            if len(done) == len(ids):
                return [finished(server, j) for j in done]
            time.sleep(poll_s)
    raise SystemExit(f"jobs {sorted(ids)} did not finish within {timeout_s:.0f} s")


def wait_one(server: Server, job_id: int, poll_s: float = 0.02, timeout_s: float = 600) -> dict[str, Any]:
    """Poll ``GET /jobs/{id}`` until the job has finished; returns it (succeeded)."""
    end = time.monotonic() + timeout_s
    with server.client() as c:
        while time.monotonic() < end:
            job = c.get(f"/jobs/{job_id}")
            job.raise_for_status()
            if job.json()["state"] in FINISHED:
                return finished(server, job.json())
            time.sleep(poll_s)
    raise SystemExit(f"job {job_id} did not finish within {timeout_s:.0f} s")


def seconds(job: dict[str, Any], start: str, end: str) -> float:
    """Seconds between two of a job's timestamps (server clock)."""
    return (dt.datetime.fromisoformat(job[end]) - dt.datetime.fromisoformat(job[start])).total_seconds()


def in_process_times(folder: Path, repeats: int = 10) -> tuple[float, float]:
    """The spec run in this process (median seconds, stages already imported) and in a fresh interpreter (wall).

    Raises:
        SystemExit: The dataset was not up to date, or the fresh interpreter failed.

    """
    from eoengine.jobs.run import run_spec
    from eoengine.jobs.specs import BuildDatasetSpec

    spec = BuildDatasetSpec(config=folder / "eoengine.yaml")
    if not run_spec(spec).up_to_date:
        raise SystemExit(f"the dataset of {folder} is not up to date after its first build")
    warm = float(np.median(in_process(lambda: run_spec(spec), repeats, warmup=1)))
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", COLD], cwd=folder, capture_output=True, text=True, check=False)
    cold = time.perf_counter() - t0
    if done.returncode:
        raise SystemExit(f"run_spec in a fresh interpreter failed:\n{done.stderr[-2000:]}")
    return warm, cold


@dataclass(frozen=True)
class Overhead:
    """Jobs run one at a time: client-seen submit → succeeded, and the server's queued and running times."""

    seen: float
    queued: float
    running: float
    spec: float | None
    """Seconds the runner reports for the spec (run_spec with its imports, indexing, the outcome written), if it does."""


def runner_seconds(server: Server, job_id: int) -> float | None:
    """The runner's own time for a job, from the job's log (``... succeeded in X s``), or None when not found."""
    with server.client() as c:
        text = c.get(f"/jobs/{job_id}/log").text
    found = re.findall(r"succeeded in ([0-9.]+) s", text)
    return float(found[-1]) if found else None


def one_at_a_time(server: Server, slug: str, count: int) -> Overhead:
    """Submit ``count`` jobs one after the other, each once the last has succeeded; mean times."""
    seen, jobs = [], []
    for _ in range(count):
        t0 = time.perf_counter()
        jobs.append(wait_one(server, submit(server, slug)))
        seen.append(time.perf_counter() - t0)
    spec = [runner_seconds(server, j["id"]) for j in jobs]
    return Overhead(float(np.mean(seen)), float(np.mean([seconds(j, "created_at", "started_at") for j in jobs])),
                    float(np.mean([seconds(j, "started_at", "finished_at") for j in jobs])),
                    None if None in spec else float(np.mean([x for x in spec if x is not None])))


def burst(server: Server, slug: str, count: int) -> tuple[float, float, int]:
    """Submit ``count`` jobs at once and wait for all.

    Returns:
        The wall time from the first submit until all were seen succeeded, the server's span (first
        created → last finished) and how many found the dataset up to date.

    """
    t0 = time.perf_counter()
    ids = {submit(server, slug) for _ in range(count)}
    jobs = wait_all(server, slug, ids)
    wall = time.perf_counter() - t0
    span = (max(dt.datetime.fromisoformat(j["finished_at"]) for j in jobs)
            - min(dt.datetime.fromisoformat(j["created_at"]) for j in jobs)).total_seconds()
    return wall, span, sum(bool((j["result"] or {}).get("up_to_date")) for j in jobs)


def bench_backend(label: str, server: Server, jobs: int, sequential: int) -> None:
    """The overhead (1 worker) and the throughput with 1 and 2 workers on one server."""
    slug = server.create_project("NC landcover")
    folder = server.home / "projects" / slug
    rates: list[tuple[int, float, float, int]] = []
    with workers(server, 1):
        first = wait_one(server, submit(server, slug), poll_s=0.5)
        print(f"\n{label}: first build of the dataset (a job): {seconds(first, 'started_at', 'finished_at'):.1f} s")
        warm, cold = in_process_times(folder)
        over = one_at_a_time(server, slug, sequential)
        rates.append((1, *burst(server, slug, jobs)))
    with workers(server, 2):
        rates.append((2, *burst(server, slug, jobs)))
    cost = over.seen - warm
    inside = "" if over.spec is None else f", of which the runner's spec, index and outcome {over.spec:.2f} s"
    print(f"  per-job overhead ({sequential} jobs one at a time, 1 worker): submit -> succeeded {over.seen:.2f} s "
          f"(queued {over.queued:.2f} s, running {over.running:.2f} s{inside}); run_spec in-process "
          f"{warm * 1000:.0f} ms, in a fresh interpreter with its imports {cold:.2f} s")
    print(f"  overhead = {over.seen:.2f} - {warm:.3f} = {cost:.2f} s per job: target < {TARGET_S:.0f} s "
          + ("met" if cost < TARGET_S else "NOT met"))
    print(f"  {'workers':>7}{'jobs':>6}{'wall s':>9}{'jobs/s':>8}{'server span s':>15}{'up to date':>12}{'vs 1 worker':>13}")
    for count, wall, span, fresh in rates:
        print(f"  {count:>7}{jobs:>6}{wall:>9.1f}{jobs / wall:>8.2f}{span:>15.1f}{fresh:>12}{rates[0][1] / wall:>13.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=50, help="Jobs submitted at once per worker count")
    ap.add_argument("--sequential", type=int, default=10, help="Jobs run one at a time for the overhead")
    ap.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = ap.parse_args()
    use_this_checkout()
    print(f"job: {SPEC} of the nc-landsat project, dataset up to date; server 'eoengine server run --workers 0', "
          f"workers 'eoengine worker' processes; {machine()}")
    with tempfile.TemporaryDirectory(prefix="eoengine-bench-") as tmp:
        with platform_server(Path(tmp) / "sqlite", "", *NO_WORKER) as server:
            bench_backend("SQLite", server, args.jobs, args.sequential)
        with postgres(not args.no_postgres) as pg:
            if pg is not None:
                with platform_server(Path(tmp) / "postgres", pg.create_database("bench_jobs"), *NO_WORKER) as server:
                    bench_backend("PostgreSQL", server, args.jobs, args.sequential)
    print(f"\nat the end: {machine()}")


if __name__ == "__main__":
    main()
