"""Subscriptions end to end on a live server and worker: the scheduler fires on an injected clock (issue 15).

A static STAC catalog in the project holds the 1999 Landsat scene; the subscription (each new
scene, a model package of the project, a webhook to a local receiver) runs when the clock reaches
its first due time. The test then adds the 2002 scene to the catalog, restarts the server, moves
the clock past the next poll, and checks the second run: a new map and STAC Item, per-class areas
(JSON, CSV, GeoParquet), the change against the first run, and signed webhooks received.
"""

from __future__ import annotations

import csv
import datetime as dt
import hmac
import io
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from hashlib import sha256
from pathlib import Path
from typing import Any

import geopandas as gpd
import httpx
import pytest
import rasterio
from conftest import OGT, saved_package, serve_in_thread
from jobs_support import make_project, wait_for, worker
from platform_server import LiveServer, live_platform
from sqlalchemy import select
from subscriptions_support import Receiver

from eoengine.platform.app import create_platform_app
from eoengine.platform.db.models import Artifact, Job
from eoengine.platform.scheduler import KIND
from eoengine.platform.settings import Platform
from eoengine.platform.subscriptions import CLOCK_ENV
from eoengine.sourcing.scan import scan_folder

S1999, S2002 = "LE70220491999322EDC01_stack", "LE70220492002106EDC00_stack"
BANDS = ["blue", "green", "red", "nir", "swir16", "swir22", "lwir", "pan"]
AREA = {"type": "Polygon", "coordinates": [[[-93.34, 15.70], [-93.30, 15.70], [-93.30, 15.74], [-93.34, 15.74],
                                            [-93.34, 15.70]]]}
SECRET = "a-secret-of-sixteen-or-more"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver(status=204)
    yield made
    made.close()


def catalog(folder: Path, scenes: list[str]) -> None:
    """The project's static catalog ``stac/`` of ``scenes`` (copied into ``imagery/``), scanned as the CLI scans."""
    (folder / "imagery").mkdir(exist_ok=True)
    for name in scenes:
        shutil.copyfile(OGT / f"{name}.gtif", folder / "imagery" / f"{name}.tif")
    shutil.rmtree(folder / "stac", ignore_errors=True)
    scan_folder(folder / "imagery", folder / "stac", "landsat-7", band_names=BANDS)


def set_clock(path: Path, when: dt.datetime) -> None:
    path.write_text(when.isoformat())


def run_jobs(live: LiveServer) -> list[Job]:
    with live.platform.db.read() as s:
        return list(s.scalars(select(Job).where(Job.kind == KIND).order_by(Job.id)))


def finished(live: LiveServer, n: int) -> list[Job]:
    jobs = run_jobs(live)
    return jobs if len(jobs) == n and all(j.state in ("succeeded", "failed") for j in jobs) else []


def test_two_scenes_two_runs_with_a_restart_between(tmp_path: Path, receiver: Receiver,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    clock = tmp_path / "clock"
    set_clock(clock, dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    monkeypatch.setenv(CLOCK_ENV, str(clock))  # the server (this process) and its worker (a child) read it
    home = tmp_path / "home"
    with live_platform(home) as live:
        folder = make_project(live, "watch")
        saved_package(folder / "pkg")
        catalog(folder, [S1999])
        spec = {"name": "landsat", "area": AREA, "model": "pkg", "source": "stac", "cadence": "each-new-scene",
                "start": "1999-01-01T00:00:00Z", "webhooks": [{"url": receiver.url, "secret": SECRET}]}
        with live.client() as c:
            plan = c.post("/projects/watch/subscriptions/dry-run", json={"spec": spec})
            assert plan.status_code == 200, plan.text
            (period,) = plan.json()["periods"]
            assert period["scene_ids"] == [S1999] and period["tiles"] > 0 and plan.json()["storage_bytes"] > 0
            assert c.get("/projects/watch/subscriptions").json() == []  # a dry run stores nothing
            made = c.post("/projects/watch/subscriptions", json={"spec": spec})
            assert made.status_code == 201, made.text
            sub = made.json()
        assert sub["next_due"] == "2000-01-01T00:00:00Z"  # each new scene: due from its creation ("now")
        with worker(live.platform.settings, tmp_path / "worker.log"):
            (first,) = wait_for(lambda: finished(live, 1), timeout=300, what="the first run")
        assert first.state == "succeeded", (first.error, (tmp_path / "worker.log").read_text()[-3000:])
        assert [r["status"] for r in first.result["runs"]] == ["succeeded"]
        with live.client() as c:
            after = c.post(f"/projects/watch/subscriptions/{sub['id']}/dry-run").json()
        assert [p["scene_ids"] for p in after["periods"]] == [[]]  # from the stored state: nothing new yet
    catalog(folder, [S1999, S2002])  # a newer scene arrives while the server is down
    set_clock(clock, dt.datetime(2003, 1, 1, tzinfo=dt.UTC))
    with restarted(live) as again, worker(again.platform.settings, tmp_path / "worker.log"):
        wait_for(lambda: finished(again, 2), timeout=300, what="the second run")
        with again.client() as c:
            check_outputs(again, c, sub["id"], folder)
        assert len(run_jobs(again)) == 2  # nothing fired twice
    check_webhooks(receiver)


@contextmanager
def restarted(live: LiveServer) -> Iterator[LiveServer]:
    """The server of ``live`` started again over its home (and database), with the same admin."""
    settings = live.platform.settings
    platform = Platform(settings)
    url, server = serve_in_thread(create_platform_app(settings, platform))
    try:
        yield LiveServer(url, platform, live.admin, server)
    finally:
        server.should_exit = True
        platform.db.dispose()


def check_outputs(live: LiveServer, c: httpx.Client, sub_id: int, folder: Path) -> None:
    base = f"/projects/watch/subscriptions/{sub_id}"
    runs = c.get(f"{base}/runs").json()
    assert [r["status"] for r in runs] == ["succeeded", "succeeded"]
    second, first = runs
    assert first["record"]["scene_ids"] == [S1999] and second["record"]["scene_ids"] == [S2002]
    assert second["key"] != first["key"] and second["record"]["change"]["previous_key"] == first["key"]
    assert second["record"]["change"]["changed_hectares"] >= 0
    assert c.get(base).json()["runs"] == 2 and c.get(base).json()["failures"] == 0
    results = c.get(f"{base}/results", params={"datetime": "2002-01-01T00:00:00Z/.."}).json()
    (late,) = results
    assert late["key"] == second["key"] and late["item"]["properties"]["eoengine:input_items"] == [S2002]
    assert late["map_path"].startswith("out/subscriptions/") and late["map_path"].endswith("map.tif")
    with rasterio.open(folder / late["map_path"]) as ds:
        assert ds.crs is not None and len(set(ds.read(1).ravel().tolist())) > 1
    shown = c.get(f"/projects/watch/maps/{late['map_id']}")
    assert shown.status_code == 200, shown.text
    assert len(c.get(f"{base}/results").json()) == 2
    assert c.get(f"{base}/results", params={"datetime": "1990-01-01T00:00:00Z/1990-02-01T00:00:00Z"}).json() == []
    assert c.get(f"{base}/results", params={"datetime": "last week"}).status_code == 422
    check_stats(c, base, runs)
    with live.platform.db.read() as s:
        indexed = s.scalars(select(Artifact).where(Artifact.kind == "map")).all()
    assert sorted(a.meta["run_key"] for a in indexed) == sorted(r["key"] for r in runs)
    lineage = c.get("/projects/watch/lineage", params={"object": f"map:{late['map_path']}"}).json()
    assert f"scene:{S2002}" in {n["type"] + ":" + n["id"] for n in lineage["nodes"]}
    check_stac(live, runs)
    deliveries = c.get(f"{base}/deliveries").json()
    assert {d["delivery"]["topic"] for d in deliveries} >= {"run.succeeded"}
    assert all(d["delivery"]["outcome"] == "delivered" for d in deliveries)


def check_stats(c: httpx.Client, base: str, runs: list[dict[str, Any]]) -> None:
    stats = c.get(f"{base}/stats").json()
    rows = stats["series"]
    assert stats["subscription"] == "landsat" and {r["run"] for r in rows} == {r["key"] for r in runs}
    assert set(rows[0]) == {"run", "datetime", "model_version", "class", "code", "pixels", "hectares"}
    for run in runs:
        assert [(r["class"], r["hectares"]) for r in rows if r["run"] == run["key"]] == [
            (s["name"], s["hectares"]) for s in run["record"]["stats"]]
        assert sum(s["hectares"] for s in run["record"]["stats"]) > 100  # of the ~18 km² area, what the map covers
    table = list(csv.DictReader(io.StringIO(c.get(f"{base}/stats", params={"format": "csv"}).text)))
    assert [(t["run"], float(t["hectares"])) for t in table] == [(r["run"], r["hectares"]) for r in rows]
    parquet = c.get(f"{base}/stats", params={"format": "parquet"})
    assert parquet.headers["content-type"] == "application/vnd.apache.parquet"
    frame = gpd.read_parquet(io.BytesIO(parquet.content))
    assert frame.crs.to_epsg() == 4326 and list(frame["hectares"]) == [r["hectares"] for r in rows]
    assert frame.geometry.iloc[0].bounds == pytest.approx((-93.34, 15.70, -93.30, 15.74))
    assert c.get(f"{base}/stats", params={"format": "xlsx"}).status_code == 422


def check_stac(live: LiveServer, runs: list[dict[str, Any]]) -> None:
    """pystac-client finds the run outputs in the project's STAC API, beside its imagery."""
    from pystac_client import Client as StacClient

    stac = StacClient.open(f"{live.url}/api/v1/projects/watch/stac",
                           headers={"Authorization": f"Bearer {live.admin.token}"})
    assert {"scenes", "subscription-landsat"} <= {col.id for col in stac.get_collections()}  # its imagery, its outputs
    found = list(stac.search(collections=["subscription-landsat"], intersects=AREA).items())
    assert sorted(i.id for i in found) == sorted(r["key"] for r in runs)
    late = list(stac.search(collections=["subscription-landsat"], datetime="2002-01-01T00:00:00Z/..").items())
    assert [i.properties["eoengine:input_items"] for i in late] == [[S2002]]


def check_webhooks(receiver: Receiver) -> None:
    events = [(h["x-eoengine-event"], json.loads(b)) for h, b in receiver.received]
    assert [e for e, _ in events].count("run.succeeded") == 2
    for headers, body in receiver.received:
        expected = "sha256=" + hmac.new(SECRET.encode(), body, sha256).hexdigest()
        assert hmac.compare_digest(headers["x-eoengine-signature"], expected)
