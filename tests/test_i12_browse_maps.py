"""Maps over real HTTP: a real prediction (COG with colour table and probabilities) indexed in a project, described and tiled."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import morecantile
import numpy as np
import pytest
import rasterio
from browse_support import decode_tile, error_of, index_artifact, keep_outputs, reuse_outputs
from conftest import four_band_stack, saved_package
from platform_server import LiveServer, live_platform

from eoengine.jobs.run import run_spec
from eoengine.jobs.specs import PredictSpec

WEB_MERCATOR = morecantile.tms.get("WebMercatorQuad")



@pytest.fixture(scope="module")
def mapped(tmp_path_factory: pytest.TempPathFactory, module_db: str) -> Iterator[tuple[LiveServer, dict[str, int]]]:
    tmp = tmp_path_factory.mktemp("maps")
    with live_platform(tmp / "home", db_url=module_db) as live:
        with live.client() as c:
            assert c.post("/projects", json={"name": "maps", "template": "nc-landsat"}).status_code == 201
        folder = live.platform.settings.projects_dir / "maps"
        if not reuse_outputs(folder, "browse-maps"):  # predicted once, for the servers of both databases
            (folder / "out" / "maps").mkdir(parents=True)
            result = run_spec(PredictSpec(model=str(saved_package(tmp / "pkg")), scene=[str(four_band_stack(tmp / "four.tif"))],
                                          output=folder / "out/maps/classes.tif", probabilities=folder / "out/maps/probs.tif"))
            assert result.maps == [folder / "out/maps/classes.tif"]
            keep_outputs(folder, "browse-maps")
        ids = {"classes": index_artifact(live, "maps", "map", "classes", "out/maps/classes.tif", meta={"model": "pkg"}),
               "probs": index_artifact(live, "maps", "map", "probabilities", "out/maps/probs.tif")}
        yield live, ids



def _centre_tile(bbox: list[float], zoom: int) -> morecantile.Tile:
    return WEB_MERCATOR.tile((bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2, zoom)


def test_maps_are_listed_and_described_from_the_cog(mapped: tuple[LiveServer, dict[str, int]]) -> None:
    live, ids = mapped
    with live.client() as c:
        listed = c.get("/projects/maps/maps").json()
        assert [m["id"] for m in listed] == [ids["probs"], ids["classes"]]
        one = c.get(f"/projects/maps/maps/{ids['classes']}").json()
    with rasterio.open(live.platform.settings.projects_dir / "maps/out/maps/classes.tif") as ds:
        cmap = ds.colormap(1)
        assert one["width"] == ds.width and one["height"] == ds.height and one["crs"] == "EPSG:32615"
    assert one["kind"] == "classes" and one["meta"] == {"model": "pkg"}
    assert [(k["code"], k["name"]) for k in one["classes"]] == [(1, "c0"), (2, "c1"), (3, "c2")]
    assert [k["color"] for k in one["classes"]] == ["#{:02x}{:02x}{:02x}".format(*cmap[v][:3]) for v in (1, 2, 3)]
    west, south, east, north = one["bbox"]
    assert -94 < west < east < -93 and 15 < south < north < 16  # the sample stack, UTM zone 15N
    assert one["footprint"]["type"] == "Polygon"
    assert one["tiles"] == f"/projects/maps/maps/{ids['classes']}/tiles/{{z}}/{{x}}/{{y}}.png"
    probs = next(m for m in listed if m["id"] == ids["probs"])
    assert probs["kind"] == "values" and probs["bands"] == ["c0", "c1", "c2"] and probs["classes"] == []
    assert all(0.0 <= lo < hi <= 1.0 for lo, hi in probs["ranges"])


def test_class_tiles_show_the_colour_table(mapped: tuple[LiveServer, dict[str, int]]) -> None:
    live, ids = mapped
    with live.client() as c:
        one = c.get(f"/projects/maps/maps/{ids['classes']}").json()
        tile = _centre_tile(one["bbox"], 14)
        rgba = decode_tile(c.get(f"/projects/maps/maps/{ids['classes']}/tiles/{tile.z}/{tile.x}/{tile.y}.png"))
        outside = decode_tile(c.get(f"/projects/maps/maps/{ids['classes']}/tiles/14/0/0.png"))
        wide = _centre_tile(one["bbox"], 8)
        coarse = decode_tile(c.get(f"/projects/maps/maps/{ids['classes']}/tiles/{wide.z}/{wide.x}/{wide.y}.png"))
    opaque = rgba[..., 3] == 255
    assert opaque.mean() > 0.9  # the centre tile at zoom 14 (~2.4 km) lies inside the 7.5 km map
    colours = {tuple(bytes.fromhex(k["color"][1:])) for k in one["classes"]}
    seen = {tuple(p) for p in rgba[opaque][:, :3]}
    assert seen <= colours and len(seen) >= 2  # class colours only (nearest, never blended), several classes
    assert (outside[..., 3] == 0).all()
    assert 50 < (coarse[..., 3] > 0).sum() < 400  # the 7.5 km map is ~13 px wide at zoom 8 (from the overviews)


def test_value_tiles_use_a_ramp_per_band(mapped: tuple[LiveServer, dict[str, int]]) -> None:
    live, ids = mapped
    with live.client() as c:
        one = c.get(f"/projects/maps/maps/{ids['probs']}").json()
        tile = _centre_tile(one["bbox"], 14)
        url = f"/projects/maps/maps/{ids['probs']}/tiles/{tile.z}/{tile.x}/{tile.y}.png"
        first, third = decode_tile(c.get(url)), decode_tile(c.get(url, params={"band": 3}))
        error_of(c.get(url, params={"band": 4}), 422)
    assert (first[..., 3] == 255).mean() > 0.9
    assert len({tuple(p) for p in first[..., :3].reshape(-1, 3)}) > 20  # a continuous ramp, not a few classes
    assert not np.array_equal(first, third)


def test_bad_tiles_and_unknown_maps(mapped: tuple[LiveServer, dict[str, int]], tmp_path: Path) -> None:
    live, ids = mapped
    with live.client() as c:
        for zxy in ("25/0/0", "3/8/0", "3/0/-1", "-1/0/0"):
            error_of(c.get(f"/projects/maps/maps/{ids['classes']}/tiles/{zxy}.png"), 422)
        error_of(c.get("/projects/maps/maps/9999"), 404)
        error_of(c.get("/projects/maps/maps/9999/tiles/1/0/0.png"), 404)
        error_of(c.get("/projects/maps/maps/abc"), 422)
        error_of(c.get(f"/projects/maps/maps/{2**64}"), 422)  # beyond the database's integers
        error_of(c.get("/projects/maps/maps/0/tiles/1/0/0.png"), 422)
        gone = index_artifact(live, "maps", "map", "gone", "out/maps/gone.tif")
        escape = index_artifact(live, "maps", "map", "escape", "../../../etc/hostname")
        error_of(c.get(f"/projects/maps/maps/{gone}"), 404)
        error_of(c.get(f"/projects/maps/maps/{escape}"), 404)
        assert {m["id"] for m in c.get("/projects/maps/maps").json()} == set(ids.values())  # unreadable ones left out
        broken = live.platform.settings.projects_dir / "maps/out/maps/broken.tif"
        broken.write_text("not a raster")
        bad = index_artifact(live, "maps", "map", "broken", "out/maps/broken.tif")
        body = error_of(c.get(f"/projects/maps/maps/{bad}"), 422)
        assert "broken.tif" in body["error"]


def test_maps_need_membership(mapped: tuple[LiveServer, dict[str, int]]) -> None:
    live, ids = mapped
    outsider = live.user("olga-maps")
    with live.client(outsider) as o:
        error_of(o.get("/projects/maps/maps"), 404)
        error_of(o.get(f"/projects/maps/maps/{ids['classes']}/tiles/14/0/0.png"), 404)
    error_of(httpx.get(f"{live.url}/api/v1/projects/maps/maps"), 401)


def test_the_tile_renderer_is_loaded_with_the_app_not_by_the_first_tiles() -> None:
    # Imported by the first tile requests, on several threads at once, rio_tiler was sometimes half initialised
    # ("partially initialized module 'rio_tiler.io'"): a 500 for those tiles. The app now loads it when it starts.
    import subprocess
    import sys

    code = "import sys, eoengine.platform.app; print('rio_tiler.io' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "True"
