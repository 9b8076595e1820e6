"""Helpers of the job tests: a tiny project on a live platform, worker processes, waiting for a job's state."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml
from conftest import OGT, REPO, tiny_config
from platform_server import LiveServer

from eoengine.platform.settings import PlatformSettings

T = TypeVar("T")
SRC = REPO / "src"
LABELS = ("shp", "shx", "dbf", "prj", "cpg")


def project_config(**overrides: Any) -> dict[str, Any]:
    """The tiny config (the open-geo-tutorial scene and its polygons), with paths inside its project folder."""
    cfg = tiny_config(Path("."), **{"output_dir": "out", **overrides})
    cfg["imagery"]["scenes"][0]["stack"] = "data/stack.tif"
    cfg["labels"]["path"] = "data/training_data.shp"
    return cfg


def fill_project(folder: Path) -> None:
    """Put the tiny config's scene and labels into a project folder (``data/``)."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(OGT / "LE70220491999322EDC01_stack.gtif", folder / "data" / "stack.tif")
    for ext in LABELS:
        shutil.copyfile(OGT / f"training_data.{ext}", folder / "data" / f"training_data.{ext}")


def make_project(live: LiveServer, name: str = "tiny", token: str | None = None, **overrides: Any) -> Path:
    """A project of the tiny config on a live platform (made over HTTP), its files written in; returns its folder."""
    with live.client(token) as c:
        r = c.post("/projects", json={"name": name, "config": yaml.safe_dump(project_config(**overrides))})
        assert r.status_code == 201, r.text
    folder = live.platform.settings.projects_dir / r.json()["slug"]
    fill_project(folder)
    return folder


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a process of the tests: this checkout's sources first on the path."""
    path = os.pathsep.join([str(SRC), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")])
    return os.environ | {"PYTHONPATH": path} | extra


def start_worker(settings: PlatformSettings, log: Path, concurrency: int = 1, stale_after: float = 2.0,
                 grace: float = 5.0) -> subprocess.Popen[bytes]:
    """``eoengine worker`` on a platform's home and database, its output into ``log``."""
    cmd = [sys.executable, "-m", "eoengine", "worker", "--home", str(settings.home), "--concurrency", str(concurrency),
           "--stale-after", str(stale_after), "--grace", str(grace)]
    with log.open("ab") as out:
        return subprocess.Popen(cmd, env=child_env(EOENGINE_DB=settings.database_url), stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


@contextmanager
def worker(settings: PlatformSettings, log: Path, **options: Any) -> Iterator[subprocess.Popen[bytes]]:
    """A worker process for the block; stopped (SIGTERM, then SIGKILL) when it ends."""
    proc = start_worker(settings, log, **options)
    try:
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Stop a process started by a test (SIGTERM, then SIGKILL)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for(check: Callable[[], T | None], timeout: float = 60.0, every: float = 0.2, what: str = "") -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < end, f"timed out waiting for {what or check}"
        time.sleep(every)


def job_state(c: httpx.Client, job_id: int) -> dict[str, Any]:
    """A job as the API shows it."""
    r = c.get(f"/jobs/{job_id}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def wait_job(c: httpx.Client, job_id: int, timeout: float = 120.0, states: tuple[str, ...] = (
        "succeeded", "failed", "cancelled")) -> dict[str, Any]:
    """Wait until a job is in one of ``states``; returns it."""
    def check() -> dict[str, Any] | None:
        job = job_state(c, job_id)
        return job if job["state"] in states else None

    return wait_for(check, timeout, what=f"job {job_id} to be {'/'.join(states)}")


def submit(c: httpx.Client, slug: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Submit a job; returns it as queued."""
    r = c.post(f"/projects/{slug}/jobs", json={"spec": spec})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def alive(pid: int) -> bool:
    """Whether a process exists (a zombie child of this process counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def fetch_project(live: LiveServer) -> None:
    """Make the project "tiny" quick to fetch for: its scene scanned into a catalog and searched into items.json."""
    import pystac

    from eoengine.config.query import SearchQuery
    from eoengine.sourcing.scan import scan_folder
    from eoengine.sourcing.search import search

    folder = live.platform.settings.projects_dir / "tiny"
    fill_project(folder)
    scan_folder(folder / "data", folder / "catalog", "landsat-7", exclude=["training_data*"], fixed_date="1999-11-18",
                band_names=["blue", "green", "red", "nir", "swir16", "lwir", "swir22", "pan"])
    items = search(str(folder / "catalog"), SearchQuery.of({}))
    pystac.ItemCollection(list(items)).save_object(str(folder / "items.json"))
