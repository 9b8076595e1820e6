"""Fetched scenes in a project's imagery catalog: a real fetch job's stacks in the imagery list, STAC API and tiles."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import morecantile
import numpy as np
import pytest
from browse_support import decode_tile
from jobs_support import fetch_project, make_project, submit, wait_job, worker
from platform_server import LiveServer, live_platform

WEB_MERCATOR = morecantile.tms.get("WebMercatorQuad")
PROPERTIES = {"datetime": "1999-11-18T16:20:00Z", "eo:cloud_cover": 12.5, "platform": "landsat-7",
              "instruments": ["etm+"]}


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    with live_platform(tmp_path / "home") as server:
        yield server


def _described_items(folder: Path) -> None:
    """Give the searched items (local files) the properties a STAC API's items carry: time, cloud cover, platform."""
    path = folder / "items.json"
    collection = json.loads(path.read_text())
    for feature in collection["features"]:
        feature["properties"].update(PROPERTIES)
    path.write_text(json.dumps(collection))


def _centre_tile(item: dict[str, object], zoom: int = 12) -> str:
    west, south, east, north = item["bbox"]  # type: ignore[misc]
    t = WEB_MERCATOR.tile((west + east) / 2, (south + north) / 2, zoom)
    return f"/projects/tiny/imagery/{item['id']}/tiles/{t.z}/{t.x}/{t.y}.png"


def test_fetched_scenes_join_the_catalog_with_their_properties(live: LiveServer, tmp_path: Path) -> None:
    folder = make_project(live)
    fetch_project(live)
    _described_items(folder)
    with live.client() as c:
        before = {i["id"]: i["collection"] for i in c.get("/projects/tiny/imagery").json()}
        assert before == {"s1999": "scenes"}
        spec = {"kind": "fetch", "items": "items.json", "bands": "blue,green,red,nir", "cache": "cache"}
        with worker(live.platform.settings, tmp_path / "worker.log"):
            job = wait_job(c, submit(c, "tiny", spec)["id"])
        assert job["state"] == "succeeded", job["error"]
        items = {i["id"]: i for i in c.get("/projects/tiny/imagery").json()}
        fetched = items["stack"]
        assert items["s1999"]["collection"] == "scenes" and fetched["collection"] == "fetched"
        assert fetched["datetime"] == "1999-11-18T16:20:00Z"
        assert fetched["properties"]["eo:cloud_cover"] == 12.5 and fetched["properties"]["platform"] == "landsat-7"
        assert fetched["properties"]["instruments"] == ["etm+"]
        assert {"true-color", "index:NDVI"} <= set(fetched["recipes"])

        found = c.get("/projects/tiny/stac/search", params={"collections": "fetched"}).json()["features"]
        assert [f["id"] for f in found] == ["stack"]
        assert found[0]["properties"]["eo:cloud_cover"] == 12.5 and found[0]["properties"]["platform"] == "landsat-7"
        assert found[0]["properties"]["datetime"] == "1999-11-18T16:20:00Z"
        cloudy = c.get("/projects/tiny/stac/search", params={"collections": "fetched", "filter-lang": "cql2-text",
                                                             "query": json.dumps({"eo:cloud_cover": {"lt": 10}})})
        assert cloudy.status_code == 200 and cloudy.json()["features"] == []
        item = c.get("/projects/tiny/stac/collections/fetched/items/stack").json()
        assert item["assets"]["data"]["href"].startswith(str((folder / "cache").resolve()))

        overview = c.get("/projects/tiny").json()["footprints"]["features"]
        shown = [(f["properties"]["name"], f["properties"]["datetime"]) for f in overview if f["properties"]["kind"] == "scene"]
        assert shown == [("s1999", "1999-11-18"), ("stack", "1999-11-18T16:20:00Z")]

        tile = decode_tile(c.get(_centre_tile(fetched)))
        assert (tile[..., 3] == 255).mean() > 0.2 and tile[..., :3].std() > 5  # an image, not a blank tile
        ndvi = decode_tile(c.get(_centre_tile(fetched), params={"recipe": "index:NDVI"}))
        assert not np.array_equal(ndvi, tile)


        for stack in (folder / "cache").rglob("*.tif"):  # a stack removed from the cache leaves the catalog
            stack.unlink()
        assert {i["id"] for i in c.get("/projects/tiny/imagery").json()} == {"s1999"}
        assert c.get(_centre_tile(fetched)).status_code == 404
