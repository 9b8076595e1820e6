"""Map an area now, the API: a predict-area job's map measured within an area (hectares per class, as class_areas
counts them), downloaded as its COG, and vectorised into a GeoPackage; bad areas and callers refused.

A worker process runs one real predict-area job over the tiny project's catalog (an untrained package), so the
map's row links to the job whose area is the default.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import httpx
import numpy as np
import pytest
import rasterio
from browse_support import error_of, index_artifact
from conftest import saved_package, write_raster
from jobs_support import make_project, submit, wait_job, worker
from platform_server import LiveServer, live_platform
from shapely.geometry import box, mapping, shape

from eoengine.errors import Invalid
from eoengine.inference import map_polygons as mp
from eoengine.inference.class_areas import class_areas


def _inner(item: dict[str, Any], part: float) -> dict[str, Any]:
    """A lon/lat polygon in the middle of an item, ``part`` of its width and height (a triangle-cut box)."""
    west, south, east, north = item["bbox"]
    dx, dy = (east - west) * (1 - part) / 2, (north - south) * (1 - part) / 2
    w, s, e, n = west + dx, south + dy, east - dx, north - dy
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [(w + e) / 2, n], [w, (s + n) / 2], [w, s]]]}


@pytest.fixture(scope="module")
def mapped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("map-area")
    with live_platform(tmp / "home") as live:
        folder = make_project(live)
        saved_package(folder / "models" / "pkg")
        with live.client() as c:
            (item,) = c.get("/projects/tiny/imagery").json()
            aoi = _inner(item, 0.6)
            spec = {"kind": "predict-area", "model": "models/pkg", "output": "maps/area.tif", "aoi": json.dumps(aoi),
                    "datetime": "1999-01-01T00:00:00Z/1999-12-31T23:59:59Z", "cache": "cache"}
            with worker(live.platform.settings, tmp / "worker.log"):
                job = wait_job(c, submit(c, "tiny", spec)["id"], 300)
            assert job["state"] == "succeeded", job["error"]
            (made,) = c.get("/projects/tiny/maps").json()
        assert made["job_id"] == job["id"]
        yield live, {"folder": folder, "map": made, "aoi": aoi, "item": item, "file": folder / "maps" / "area.tif"}


def test_hectares_per_class_are_class_areas_within_the_jobs_area_or_the_one_asked(
        mapped: tuple[LiveServer, dict[str, Any]]) -> None:
    live, m = mapped
    url = f"/projects/tiny/maps/{m['map']['id']}/areas"
    smaller = _inner(m["item"], 0.3)
    with live.client() as c:
        default = c.get(url).json()
        asked = c.get(url, params={"area": json.dumps(smaller)}).json()
        feature = c.get(url, params={"area": json.dumps({"type": "Feature", "geometry": smaller, "properties": {}})}).json()
        colours = {k["code"]: k["color"] for k in c.get(f"/projects/tiny/maps/{m['map']['id']}").json()["classes"]}
    for got, area in ((default, m["aoi"]), (asked, smaller)):
        want = class_areas(m["file"], area)
        assert [(a["code"], a["name"], a["pixels"]) for a in got] == [(w.code, w.name, w.pixels) for w in want]
        assert [a["hectares"] for a in got] == pytest.approx([w.hectares for w in want], rel=1e-12)
        assert [a["color"] for a in got] == [colours[a["code"]] for a in got]
    assert feature == asked
    whole = sum(w.hectares for w in class_areas(m["file"]))
    assert 0 < sum(a["hectares"] for a in asked) < sum(a["hectares"] for a in default) <= whole
    assert sum(a["pixels"] for a in default) > 0 and len([a for a in default if a["pixels"]]) > 1


def test_the_cog_downloads_as_it_is(mapped: tuple[LiveServer, dict[str, Any]]) -> None:
    live, m = mapped
    with live.client() as c:
        r = c.get(f"/projects/tiny/maps/{m['map']['id']}/download")
    assert r.status_code == 200 and r.content == m["file"].read_bytes()
    assert r.headers["content-type"].startswith("image/tiff") and 'filename="area.tif"' in r.headers["content-disposition"]


def test_the_geopackage_holds_the_class_polygons_within_the_area(mapped: tuple[LiveServer, dict[str, Any]],
                                                                 tmp_path: Path) -> None:
    live, m = mapped
    with live.client() as c:
        r = c.get(f"/projects/tiny/maps/{m['map']['id']}/polygons")
        areas = c.get(f"/projects/tiny/maps/{m['map']['id']}/areas").json()
    assert r.status_code == 200 and 'filename="area.gpkg"' in r.headers["content-disposition"]
    (tmp_path / "area.gpkg").write_bytes(r.content)
    got = gpd.read_file(tmp_path / "area.gpkg", layer="classes")
    with rasterio.open(m["file"]) as ds:
        crs, pixel_ha = ds.crs, abs(ds.transform.a * ds.transform.e) / 1e4
    assert got.crs == crs and list(got.columns) == ["code", "name", "hectares", "geometry"]
    named = {a["code"]: a["name"] for a in areas}
    assert {(int(k), n) for k, n in zip(got["code"], got["name"], strict=True)} <= set(named.items())
    assert got["hectares"].to_numpy() == pytest.approx(got.geometry.area.to_numpy() / 1e4)
    total = sum(a["hectares"] for a in areas)
    dropped = pixel_ha * 4 * len(got)  # at most a few polygons of < 4 pixels are dropped at the area's edge
    assert total - dropped <= got["hectares"].sum() <= total + 1e-6
    area_native = gpd.GeoSeries([shape(m["aoi"])], crs="EPSG:4326").to_crs(crs).iloc[0].buffer(30)
    assert all(area_native.contains(g) for g in got.geometry)  # clipped to the area
    assert {a["code"] for a in areas if a["pixels"] > 50} <= set(got["code"].astype(int))
    assert not list(Path("/tmp").glob("eoengine-polygons-*/area.gpkg"))  # the temporary file is gone once sent


def test_unsimplified_polygons_hold_exactly_the_pixels_class_areas_counts(mapped: tuple[LiveServer, dict[str, Any]]) -> None:
    _, m = mapped
    polygons = mp.map_polygons(m["file"], m["aoi"], tolerance=0, min_pixels=0)
    want = {a.code: a.hectares for a in class_areas(m["file"], m["aoi"]) if a.pixels}
    assert polygons.groupby("code")["hectares"].sum().to_dict() == pytest.approx(want, rel=1e-9)


def test_a_window_above_the_limit_is_refused_before_reading(mapped: tuple[LiveServer, dict[str, Any]],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    live, m = mapped
    monkeypatch.setattr(mp, "MAX_POLYGON_PIXELS", 100)
    with pytest.raises(Invalid, match=r"polygons are made of at most 100 at once"):
        mp.map_polygons(m["file"], m["aoi"])
    with live.client() as c:  # the server runs in this process: the same limit
        body = error_of(c.get(f"/projects/tiny/maps/{m['map']['id']}/polygons"), 422)
    assert "pixels of the map" in body["error"] and "smaller area" in body["fix"]


def test_bad_areas_and_maps(mapped: tuple[LiveServer, dict[str, Any]]) -> None:
    live, m = mapped
    base = f"/projects/tiny/maps/{m['map']['id']}"
    far = mapping(box(10, 10, 10.1, 10.1))
    huge = mapping(box(-20, -20, 20, 20))
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    write_raster(m["folder"] / "maps" / "values.tif", np.ones((1, 8, 8), dtype="float32"))
    values = index_artifact(live, "tiny", "map", "values", "maps/values.tif")
    with live.client() as c:
        for route in ("areas", "polygons"):
            assert "not JSON" in error_of(c.get(f"{base}/{route}", params={"area": "{nope"}), 422)["error"]
            # longer than the 8,000 characters the route declares (its schema no longer offers what no URL can carry)
            error_of(c.get(f"{base}/{route}", params={"area": "0" * 8_001}), 422)
            for bad in ({"type": "Point", "coordinates": [0, 0]}, huge, bowtie):
                error_of(c.get(f"{base}/{route}", params={"area": json.dumps(bad)}), 422)
            assert "holds values" in error_of(c.get(f"/projects/tiny/maps/{values}/{route}"), 422)["error"]
            error_of(c.get(f"/projects/tiny/maps/9999/{route}"), 404)
        assert "does not overlap" in error_of(c.get(f"{base}/polygons", params={"area": json.dumps(far)}), 422)["error"]
        assert all(a["pixels"] == 0 for a in c.get(f"{base}/areas", params={"area": json.dumps(far)}).json())
        error_of(c.get("/projects/tiny/maps/9999/download"), 404)


def test_viewers_may_read_outsiders_and_strangers_may_not(mapped: tuple[LiveServer, dict[str, Any]]) -> None:
    live, m = mapped
    viewer, outsider = live.user("vera-area"), live.user("olga-area")
    with live.client() as c:
        assert c.post("/projects/tiny/members", json={"username": "vera-area", "role": "viewer"}).status_code == 201
    for route in ("areas", "download", "polygons"):
        url = f"/projects/tiny/maps/{m['map']['id']}/{route}"
        with live.client(viewer) as v:
            assert v.get(url).status_code == 200
        with live.client(outsider) as o:
            error_of(o.get(url), 404)
        error_of(httpx.get(f"{live.url}/api/v1{url}"), 401)
