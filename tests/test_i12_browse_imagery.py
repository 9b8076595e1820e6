"""A project's imagery over real HTTP: its STAC API (mounted per project, behind sign-in) and tiles by recipe."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import morecantile
import numpy as np
import pystac_client
import pytest
from browse_support import decode_tile, error_of
from conftest import OGT, truncated_stack
from platform_server import LiveServer, live_platform

WEB_MERCATOR = morecantile.tms.get("WebMercatorQuad")
SCENE = "lsat7_2000"




@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, module_db: str) -> Iterator[LiveServer]:
    with live_platform(tmp_path_factory.mktemp("imagery") / "home", db_url=module_db) as server:
        with server.client() as c:
            assert c.post("/projects", json={"name": "nc", "template": "nc-landsat"}).status_code == 201
        yield server


def _scene(live: LiveServer) -> dict[str, object]:
    with live.client() as c:
        items = c.get("/projects/nc/imagery").json()
    return next(i for i in items if i["id"] == SCENE)


def test_imagery_lists_the_config_scenes(live: LiveServer) -> None:
    scene = _scene(live)
    assert scene["collection"] == "scenes" and str(scene["datetime"]).startswith("2000-05-24")
    assert {"red", "green", "blue", "nir", "swir16", "swir22", "swir1"} <= set(scene["bands"])  # type: ignore[arg-type]
    assert {"true-color", "false-color", "index:NDVI", "index:NBR"} <= set(scene["recipes"])  # type: ignore[arg-type]
    west, south, east, north = scene["bbox"]  # type: ignore[misc]
    assert -78.8 < west < east < -78.6 and 35.6 < south < north < 35.9  # Raleigh
    assert (live.platform.settings.projects_dir / "nc/out/catalog/scenes/collection.json").is_file()


def test_stac_api_is_mounted_per_project(live: LiveServer) -> None:
    base = f"{live.url}/api/v1/projects/nc/stac"
    with live.client() as c:
        landing = c.get("/projects/nc/stac/").json()
        assert {link["href"] for link in landing["links"] if link["rel"] == "search"} == {f"{base}/search"}
        found = c.get("/projects/nc/stac/search", params={"bbox": "-78.7,35.7,-78.65,35.75"}).json()
        assert [f["id"] for f in found["features"]] == [SCENE]
        assert found["features"][0]["links"][0]["href"] == f"{base}/collections/scenes/items/{SCENE}"
        assert c.get("/projects/nc/stac/search", params={"bbox": "10,10,11,11"}).json()["features"] == []
        item = c.get(f"/projects/nc/stac/collections/scenes/items/{SCENE}").json()
        assert item["assets"]["red"]["eo:bands"] == [{"name": "red", "common_name": "red"}]
        assert item["assets"]["swir2"]["raster:bands"][0]["nodata"] == -32768
        error_of(c.get("/projects/nc/stac/collections/scenes/items/nope"), 404)
        error_of(c.get("/projects/nc/stac/search", params={"bbox": "1,2"}), 400)  # the STAC API's bad-query status
    client = pystac_client.Client.open(f"{base}/", headers={"Authorization": f"Bearer {live.admin.token}"})
    assert [i.id for i in client.search(intersects={"type": "Point", "coordinates": [-78.7, 35.75]}).items()] == [SCENE]


def test_stac_api_checks_the_caller(live: LiveServer) -> None:
    outsider = live.user("omar-img")
    error_of(httpx.get(f"{live.url}/api/v1/projects/nc/stac/search"), 401)
    with live.client(outsider) as o:
        error_of(o.get("/projects/nc/stac/"), 404)
        error_of(o.get(f"/projects/nc/imagery/{SCENE}/tiles/12/0/0.png"), 404)
    with live.client() as c:
        error_of(c.get("/projects/none/stac/"), 404)


def _tile_url(item: dict[str, object], zoom: int, slug: str = "nc") -> str:
    """The URL of the tile at an item's centre."""
    west, south, east, north = item["bbox"]  # type: ignore[misc]
    t = WEB_MERCATOR.tile((west + east) / 2, (south + north) / 2, zoom)
    return f"/projects/{slug}/imagery/{item['id']}/tiles/{t.z}/{t.x}/{t.y}.png"


def test_tiles_by_recipe(live: LiveServer) -> None:
    scene = _scene(live)
    url = _tile_url(scene, 14)
    with live.client() as c:
        true, false = decode_tile(c.get(url)), decode_tile(c.get(url, params={"recipe": "false-color"}))
        ndvi, ndwi = (decode_tile(c.get(url, params={"recipe": f"index:{i}"})) for i in ("NDVI", "NDWI"))
        outside = decode_tile(c.get(f"/projects/nc/imagery/{SCENE}/tiles/14/0/0.png"))
    for img in (true, false, ndvi, ndwi):
        assert (img[..., 3] == 255).mean() > 0.95  # the centre tile (~2.4 km) is inside the 14 km scene
        assert len({tuple(p) for p in img[..., :3].reshape(-1, 3)}) > 50
    rgb = true[..., :3][true[..., 3] == 255]
    assert (rgb == 255).mean() < 0.1 and (rgb == 0).mean() < 0.1  # a 2-98 % stretch: few pixels clipped
    assert not np.array_equal(true, false) and not np.array_equal(ndvi, ndwi)
    # false colour puts nir in red: vegetation (bright nir, dark red) is redder in it than in true colour
    assert false[..., 0].mean() > true[..., 0].mean()
    assert (outside[..., 3] == 0).all()


def test_bad_recipes_and_tiles(live: LiveServer) -> None:
    url = _tile_url(_scene(live), 12)
    with live.client() as c:
        body = error_of(c.get(url, params={"recipe": "sepia"}), 422)
        assert "true-color" in body["fix"] and "index:NDVI" in body["fix"]
        body = error_of(c.get(url, params={"recipe": "index:NDVX"}), 422)
        assert "NDVI" in body["fix"]
        body = error_of(c.get(url, params={"recipe": "index:RVI"}), 422)  # a radar index: no such bands
        assert "its bands" in body["fix"]
        error_of(c.get(url, params={"recipe": "bands:red,green"}), 422)
        error_of(c.get(f"/projects/nc/imagery/{SCENE}/tiles/30/0/0.png"), 422)
        error_of(c.get(f"/projects/nc/imagery/{SCENE}/tiles/2/4/0.png"), 422)
        error_of(c.get("/projects/nc/imagery/nope/tiles/1/0/0.png"), 404)


def test_uploaded_imagery_joins_the_catalog(live: LiveServer) -> None:
    stack = OGT / "LE70220491999322EDC01_stack.gtif"
    with live.client() as c, stack.open("rb") as f:
        r = c.post("/projects/nc/uploads", files={"file": (stack.name, f)}, data={"kind": "imagery"})
        assert r.status_code == 201, r.text
        items = {i["id"]: i for i in c.get("/projects/nc/imagery").json()}
        found = c.get("/projects/nc/stac/search", params={"collections": "uploads"}).json()
    assert set(items) == {SCENE, stack.stem} and items[stack.stem]["collection"] == "uploads"
    assert [f["id"] for f in found["features"]] == [stack.stem]
    assert str(items[stack.stem]["datetime"]).startswith("1999-11-18")  # the Landsat id's year and day
    with live.client() as c:
        url = _tile_url(items[stack.stem], 13)
        grey = decode_tile(c.get(url, params={"recipe": "bands:b4"}))
        colour = decode_tile(c.get(url, params={"recipe": "bands:b3,b2,b1"}))
    assert (grey[..., 3] == 255).mean() > 0.9 and (grey[..., 0] == grey[..., 1]).all()  # one band: grey
    assert not (colour[..., 0] == colour[..., 1]).all()


def test_unreadable_scenes_are_left_out_or_named(live: LiveServer, tmp_path: Path) -> None:
    with live.client() as c:
        assert c.post("/projects", json={"name": "broken", "template": "nc-landsat"}).status_code == 201
        (live.platform.settings.projects_dir / "broken/data/lsat7_2000_30.tif").write_text("no longer a raster")
        body = error_of(c.get("/projects/broken/imagery"), 422)
        assert "lsat7_2000_30.tif" in body["error"]
        error_of(c.get("/projects/broken/stac/search"), 422)
        stack = OGT / "LE70220491999322EDC01_stack.gtif"
        with stack.open("rb") as f:
            assert c.post("/projects/broken/uploads", files={"file": (stack.name, f)},
                          data={"kind": "imagery"}).status_code == 201
        assert [i["id"] for i in c.get("/projects/broken/imagery").json()] == [stack.stem]  # the broken scene left out
        with truncated_stack(tmp_path).open("rb") as f:  # opens, but its blocks cannot be read
            assert c.post("/projects/broken/uploads", files={"file": ("cut.tif", f)},
                          data={"kind": "imagery"}).status_code == 201
        cut = next(i for i in c.get("/projects/broken/imagery").json() if i["id"] == "cut")
        url = _tile_url(cut, 12, "broken")
        assert "b1, b2, b3, b4" in error_of(c.get(url), 422)["fix"]  # no common names: no true colour
        body = error_of(c.get(url, params={"recipe": "bands:b3,b2,b1"}), 422)
        assert "cut.tif" in body["error"]
