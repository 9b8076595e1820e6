"""AOI predict jobs (``predict-area``): map_area run by a worker over the project's catalog, its map indexed with lineage."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import rasterio
from browse_support import error_of
from conftest import saved_package
from jobs_support import make_project, submit, wait_job, worker
from platform_server import LiveServer, live_platform
from sqlalchemy import select

from eoengine.errors import EOError
from eoengine.jobs.run import run_spec
from eoengine.jobs.specs import PredictAreaSpec, parse_spec
from eoengine.platform.db.models import Artifact


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    with live_platform(tmp_path / "home") as server:
        yield server


def _inner_bbox(item: dict[str, object]) -> str:
    """A box in the middle of an item (a quarter of its width and height)."""
    west, south, east, north = item["bbox"]  # type: ignore[misc]
    dx, dy = (east - west) / 4, (north - south) / 4
    return f"{west + dx},{south + dy},{east - dx},{north - dy}"


def test_an_area_job_maps_the_newest_scene_of_the_project_catalog(live: LiveServer, tmp_path: Path) -> None:
    folder = make_project(live)
    saved_package(folder / "models" / "pkg")
    with live.client() as c:
        (item,) = c.get("/projects/tiny/imagery").json()
        shutil.rmtree(folder / "out" / "catalog")  # the job brings the project's catalog up to date itself
        spec = {"kind": "predict-area", "model": "models/pkg", "output": "maps/area.tif", "bbox": _inner_bbox(item),
                "datetime": "1999-01-01T00:00:00Z/1999-12-31T23:59:59Z", "cache": "cache"}
        far = spec | {"bbox": "10,10,10.1,10.1", "output": "maps/far.tif"}
        with worker(live.platform.settings, tmp_path / "worker.log"):
            job = wait_job(c, submit(c, "tiny", spec)["id"], 300)
            missed = wait_job(c, submit(c, "tiny", far)["id"], 300)
        assert job["state"] == "succeeded", job["error"]
        assert job["result"]["scene_ids"] == ["s1999"] and job["result"]["map"].endswith("maps/area.tif")
        assert missed["state"] == "failed" and "no imagery for that area" in missed["error"]["error"]
        assert not (folder / "maps" / "far.tif").exists()
        lineage = c.get("/projects/tiny/lineage", params={"object": "map:maps/area.tif"}).json()
    with rasterio.open(folder / "maps" / "area.tif") as ds:
        assert ds.crs is not None and ds.count == 1 and len(set(ds.read(1).ravel().tolist())) > 1
        assert ds.width < 250 and ds.height < 250  # clipped to the area, not the whole scene
    with live.platform.db.read() as s:
        (made,) = s.scalars(select(Artifact).where(Artifact.kind == "map")).all()
    assert made.path == "maps/area.tif" and made.job_id == job["id"] and made.meta["scenes"] == ["s1999"]
    assert made.meta["footprint"]["type"] == "Polygon"
    ids = {n["type"] + ":" + n["id"] for n in lineage["nodes"]}
    assert {"scene:s1999", "model:models/pkg", "map:maps/area.tif"} <= ids


def test_bad_area_specs(live: LiveServer, tmp_path: Path) -> None:
    folder = make_project(live)
    base = {"kind": "predict-area", "model": "models/pkg", "output": "maps/a.tif", "bbox": "0,0,1,1"}
    with live.client() as c:
        for bad, problem in ((base | {"stac_api": "ftp://x"}, "stac_api"), (base | {"catalog": "/etc"}, "catalog (/etc)"),
                             (base | {"output": "../x.tif"}, "output (../x.tif)"), (base | {"max_cloud": 200}, "max_cloud"),
                             ({k: v for k, v in base.items() if k != "output"}, "output: required field is missing")):
            assert problem in error_of(c.post("/projects/tiny/jobs", json={"spec": bad}), 422)["error"], bad
    saved_package(folder / "models" / "pkg")
    both = parse_spec(base | {"aoi": '{"type": "Point", "coordinates": [0, 0]}'})
    assert isinstance(both, PredictAreaSpec)
    with pytest.raises(EOError, match="give bbox or aoi, not both"):
        run_spec(both)
    unbuilt = PredictAreaSpec(model=str(folder / "models/pkg"), output=tmp_path / "m.tif", bbox="0,0,1,1",
                              config=folder / "eoengine.yaml")
    with pytest.raises(EOError, match="no STAC catalog at"):
        run_spec(unbuilt)
    with pytest.raises(EOError, match="give catalog or stac_api, not both"):
        run_spec(unbuilt.model_copy(update={"catalog": tmp_path, "stac_api": "http://127.0.0.1:9/"}))
    error_of(httpx.get(f"{live.url}/api/v1/projects/tiny/jobs"), 401)
