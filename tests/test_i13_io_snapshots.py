"""Label snapshots: the accepted labels frozen under the hash of their content, and built into a dataset by a job."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from annotation_io_support import BASE, add_feature, annotation_project, set_state, user_id
from browse_support import error_of
from conftest import run_cli
from jobs_support import wait_job, worker
from platform_server import LiveServer, live_platform
from sqlalchemy import select

from eoengine.datasets.schema import DatasetManifest
from eoengine.platform.db.models import Artifact, Event


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    with live_platform(tmp_path / "home") as server:
        yield server


@pytest.fixture
def accepted(live: LiveServer) -> dict[str, Any]:
    """A set on the sample stack with two accepted cells of labels, and one open cell."""
    made = annotation_project(live)
    grid, tasks, item, admin = made["grid"], made["tasks"], made["item"], user_id(live, "admin")
    add_feature(live, tasks[(0, 0)], grid.box(10, 20, 30, 40), 2, admin, item)
    add_feature(live, tasks[(0, 1)], grid.box(5, 70, 60, 100), 1, admin, item)
    add_feature(live, tasks[(2, 2)], grid.box(130, 130, 140, 140), 5, admin, item)
    set_state(live, [tasks[(0, 0)], tasks[(0, 1)]], "accepted", reviewer=admin)
    return made


def _snapshot(live: LiveServer, set_id: int, status: int, token: str | None = None) -> dict[str, Any]:
    with live.client(token) as c:
        r = c.post(f"{BASE}/sets/{set_id}/snapshots")
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    return body


def test_a_snapshot_is_named_by_its_content_and_taken_once(live: LiveServer, accepted: dict[str, Any]) -> None:
    made = _snapshot(live, accepted["set"], 201)
    folder = accepted["folder"] / made["path"]
    assert made["path"] == f"labels/snapshots/{made['hash']}" and (made["features"], made["tasks"]) == (2, 2)
    labels, complete = (folder / "labels.geojson").read_text(), (folder / "complete.geojson").read_text()
    canonical = json.dumps({"complete.geojson": complete, "labels.geojson": labels}, sort_keys=True, separators=(",", ":"))
    assert made["hash"] == hashlib.sha256(canonical.encode()).hexdigest()
    assert sorted(f["properties"]["label"] for f in json.loads(labels)["features"]) == [1, 2]
    assert len(json.loads(complete)["features"]) == 2
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no staging folder left
    again = _snapshot(live, accepted["set"], 200)
    assert again == made
    with live.client() as c:
        assert c.get(f"{BASE}/sets/{accepted['set']}/snapshots").json() == [made]
    with live.platform.db.read() as s:
        (row,) = s.scalars(select(Artifact).where(Artifact.kind == "labels")).all()
        events = s.scalars(select(Event).where(Event.action == "labels.snapshot")).all()
    assert row.version == made["hash"] and row.path == f"{made['path']}/labels.geojson" and len(events) == 1
    assert events[0].data["inputs"] == [f"annotation_set:{accepted['set']}"]
    set_state(live, [accepted["tasks"][(2, 2)]], "accepted")
    newer = _snapshot(live, accepted["set"], 201)
    assert newer["hash"] != made["hash"] and newer["features"] == 3


def test_snapshots_refuse_what_they_cannot_freeze(live: LiveServer, accepted: dict[str, Any]) -> None:
    viewer = live.user("viewer")
    with live.client() as c:
        assert c.post("/projects/tiny/members", json={"username": "viewer", "role": "viewer"}).status_code == 201
    assert "review" in error_of(_post(live, f"{BASE}/sets/{accepted['set']}/snapshots", viewer), 403)["fix"]
    set_state(live, list(accepted["tasks"].values()), "submitted")
    assert "accepted" in error_of(_post(live, f"{BASE}/sets/{accepted['set']}/snapshots"), 422)["error"]
    assert "no snapshot" in error_of(_post(live, f"{BASE}/sets/{accepted['set']}/snapshots/abc/build"), 404)["error"]


def _post(live: LiveServer, path: str, token: str | None = None) -> Any:
    with live.client(token) as c:
        return c.post(path)


def test_building_a_snapshot_gives_the_version_the_cli_gives_from_its_download_anywhere(
        live: LiveServer, accepted: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    made = _snapshot(live, accepted["set"], 201)
    with live.client() as c:
        r = c.post(f"{BASE}/sets/{accepted['set']}/snapshots/{made['hash']}/build")
        assert r.status_code == 201, r.text
        with worker(live.platform.settings, tmp_path / "worker.log"):
            job = wait_job(c, r.json()["id"], 300)
        assert job["state"] == "succeeded", job["error"]
        path = f"labels:{made['path']}/labels.geojson"
        lineage = c.get("/projects/tiny/lineage", params={"object": path}).json()
    built = DatasetManifest.read(Path(job["result"]["path"]))
    assert built.name == f"tiny-{made['hash'][:12]}" and Path(job["result"]["path"]).parent.parent.name == "out"
    assert f"dataset:{built.name}@{built.version}" in {f"{n['type']}:{n['id']}" for n in lineage["nodes"]}
    # The downloaded snapshot, unzipped elsewhere beside a copy of the scene at the config's path, builds the same
    # version (a version hashes its inputs' names and contents, not where they sit)
    with live.client() as c:
        r = c.get(f"{BASE}/sets/{accepted['set']}/snapshots/{made['hash']}/download")
        assert r.status_code == 200 and r.headers["content-type"] == "application/zip", r.text
        assert error_of(c.get(f"{BASE}/sets/{accepted['set']}/snapshots/abc/download"), 404)
    away = tmp_path / "0-elsewhere"
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        assert sorted(zf.namelist()) == ["eoengine.yaml", f"{made['path']}/complete.geojson", f"{made['path']}/labels.geojson"]
        zf.extractall(away)
    for name in ("labels.geojson", "complete.geojson"):  # laid out as in the project
        assert (away / made["path"] / name).read_bytes() == (accepted["folder"] / made["path"] / name).read_bytes()
    cfg = yaml.safe_load((away / "eoengine.yaml").read_text())
    assert cfg["imagery"]["scenes"][0]["stack"] == "data/stack.tif" and cfg["name"] == built.name
    (away / "data").mkdir()
    shutil.copyfile(accepted["folder"] / "data" / "stack.tif", away / "data" / "stack.tif")
    code, _, err = run_cli(["dataset", "build", str(away / "eoengine.yaml")], capsys)
    assert code == 0, err
    (cli,) = (away / "eoengine-out" / "datasets").glob(f"{built.name}@*")
    assert DatasetManifest.read(cli).version == built.version
