"""Map an area now, in Chromium against a real platform server and worker: draw a rectangle over the tiny project's
scene, pick its registered model, submit, follow the predict-area job, and see the map with its legend and hectares
(as the API gives them), then download the GeoPackage and open it; an area with no imagery shows the job's error.

The tiny project is built and trained for one epoch once (seconds) and its run registered as ``landcover`` v1; a
worker thread runs the jobs the page submits.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
import rasterio
from models_support import trained_project
from platform_fixtures import ConsoleLog
from platform_server import EXAMPLES, LiveServer, live_platform
from test_i12_web import DOCS_IMG, sign_in

pytest.importorskip("playwright")

Page = Any  # playwright.sync_api.Page (imported lazily by the fixtures)
JOB_TIMEOUT_MS = 180_000


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, web_dist: Path) -> Iterator[tuple[LiveServer, dict[str, Any]]]:
    from eoengine.platform.worker import Worker

    with live_platform(tmp_path_factory.mktemp("web-map-area") / "home", data_roots=(EXAMPLES,)) as live:
        made = trained_project(live)
        with live.client() as c:
            r = c.post("/projects/tiny/models", json={"run_id": made["run"].run_id, "name": "landcover"})
            assert r.status_code == 201, r.text
            (made["item"],) = c.get("/projects/tiny/imagery").json()
        worker = Worker(live.platform)
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        try:
            yield live, made
        finally:
            worker.stop.set()
            thread.join(timeout=30)


def screen(page: Page, lon: float, lat: float, name: str = "map-area") -> tuple[float, float]:
    """The page coordinates of a lon/lat on the page's map (``window.eoengineMaps[name]``)."""
    x, y = page.evaluate("([lon, lat, name]) => { const m = window.eoengineMaps[name]; const p = m.project([lon, lat]);"
                         " const r = m.getCanvas().getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; }",
                         [lon, lat, name])
    return round(x), round(y)


def lonlat(page: Page, x: float, y: float, name: str = "map-area") -> tuple[float, float]:
    """The lon/lat under page coordinates on the page's map (``window.eoengineMaps[name]``)."""
    got = page.evaluate("([x, y, name]) => { const m = window.eoengineMaps[name]; const r = m.getCanvas().getBoundingClientRect();"
                        " const l = m.unproject([x - r.left, y - r.top]); return [l.lng, l.lat]; }", [x, y, name])
    return float(got[0]), float(got[1])


def draw_rectangle(page: Page, corners: list[tuple[float, float]]) -> dict[str, Any]:
    """Draw a rectangle between two page points with the page's "Draw rectangle" tool; the area the page reports."""
    page.get_by_role("button", name="Draw rectangle").click()
    page.mouse.move(*corners[0])
    page.mouse.click(*corners[0])
    page.mouse.move(*corners[1], steps=5)
    page.mouse.click(*corners[1])
    page.locator("#area-coords").wait_for()
    drawn: dict[str, Any] = json.loads(page.get_attribute("#area-coords", "data-geometry") or "{}")
    return drawn


def open_page(page: Page, live: LiveServer) -> None:
    """Sign in, open the project and follow its link to the page; wait for the map to settle."""
    sign_in(page, live.url)
    page.goto(f"{live.url}/#/projects/tiny")
    page.locator("#map-area-link").click()
    page.wait_for_function("location.hash === '#/projects/tiny/map-area'")
    page.locator("#map-area-map canvas").wait_for()
    page.wait_for_function("window.eoengineMaps && window.eoengineMaps['map-area'] && window.eoengineMaps['map-area'].loaded()")


def test_draw_an_area_map_it_and_download_its_polygons(served: tuple[LiveServer, dict[str, Any]], page: Page,
                                                       screenshot: Callable[[str], Path], tmp_path: Path) -> None:
    live, made = served
    open_page(page, live)
    west, south, east, north = made["item"]["bbox"]
    corners = [screen(page, west + f * (east - west), south + g * (north - south)) for f, g in ((0.3, 0.35), (0.7, 0.75))]
    (lon0, lat0), (lon1, lat1) = (lonlat(page, *c) for c in corners)  # before the page zooms to the drawn area
    pixel = 2 * abs(lonlat(page, corners[0][0] + 1, corners[0][1])[0] - lon0)  # two screen pixels, in degrees
    drawn = draw_rectangle(page, corners)
    ring = drawn["coordinates"][0]
    assert drawn["type"] == "Polygon" and len(ring) == 5 and ring[0] == ring[-1]
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    assert min(lons) == pytest.approx(lon0, abs=pixel) and max(lons) == pytest.approx(lon1, abs=pixel)
    assert min(lats) == pytest.approx(lat0, abs=pixel) and max(lats) == pytest.approx(lat1, abs=pixel)
    shown = page.inner_text("#area-coords")
    assert f"lon {min(lons):.5f} to {max(lons):.5f}, lat {min(lats):.5f} to {max(lats):.5f}" in shown
    assert page.input_value("#map-area-from") == page.input_value("#map-area-to") == "1999-11-18"  # the scene's date
    page.get_by_label("Model", exact=True).select_option("models:/landcover/1")
    page.get_by_role("button", name="Map this area").click()
    page.locator("#map-area-job[data-state=succeeded], #map-area-job[data-state=failed]").wait_for(timeout=JOB_TIMEOUT_MS)
    assert page.get_attribute("#map-area-job", "data-state") == "succeeded", page.inner_text("#map-area-job")
    page.locator("#map-area-legend").wait_for()

    with live.client() as c:
        (job,) = [j for j in c.get("/projects/tiny/jobs").json() if j["kind"] == "predict-area"]
        assert json.loads(job["spec"]["aoi"]) == drawn and job["spec"]["model"] == "models:/landcover/1"
        (info,) = [m for m in c.get("/projects/tiny/maps").json() if m["job_id"] == job["id"]]
        areas = c.get(f"/projects/tiny/maps/{info['id']}/areas", params={"area": json.dumps(drawn)}).json()
    legend = page.locator("#map-area-legend li").evaluate_all("(li) => li.map((l) => [Number(l.dataset.code), l.textContent])")
    assert legend == [[k["code"], k["name"]] for k in info["classes"]] and len(legend) == 5
    table = page.locator("#map-area-hectares tbody tr").evaluate_all(
        "(rows) => rows.map((r) => [...r.cells].map((c) => c.textContent))")
    assert table[:-1] == [[a["name"], str(a["code"]), f"{a['pixels']:,}", f"{a['hectares']:.2f}"] for a in areas]
    assert table[-1][0] == "Total" and table[-1][3] == f"{sum(a['hectares'] for a in areas):.2f}"
    assert sum(a["pixels"] for a in areas) > 100
    assert page.evaluate(f"!!window.eoengineMaps['map-area'].getLayer('result-{info['id']}')")

    with page.expect_download() as got:
        page.locator("#download-gpkg").click()
    saved = tmp_path / got.value.suggested_filename
    got.value.save_as(saved)
    assert saved.name == Path(info["path"]).stem + ".gpkg"
    polygons = gpd.read_file(saved, layer="classes")
    with rasterio.open(live.platform.settings.projects_dir / "tiny" / info["path"]) as ds:
        assert polygons.crs == ds.crs
        pixel_ha = abs(ds.transform.a * ds.transform.e) / 1e4
    assert set(polygons["name"]) <= {a["name"] for a in areas} and len(polygons) > 0
    total = sum(a["hectares"] for a in areas)
    assert total - 4 * pixel_ha * len(polygons) <= polygons["hectares"].sum() <= total + 1e-6
    page.wait_for_timeout(500)  # the map's tiles drawn
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS_IMG / "map-area.png"), full_page=True)
    screenshot("map-area")


def test_an_uploaded_area_without_imagery_shows_the_jobs_error(served: tuple[LiveServer, dict[str, Any]], page: Page,
                                                               tmp_path: Path, console_log: ConsoleLog) -> None:
    live, _ = served
    open_page(page, live)
    point = tmp_path / "point.geojson"
    point.write_text(json.dumps({"type": "Point", "coordinates": [10, 10]}))
    page.set_input_files("#area-file", str(point))
    page.locator("#alerts .alert").first.wait_for()
    assert "point.geojson is not a GeoJSON area" in page.inner_text("#alerts")
    far = tmp_path / "far.geojson"
    square = [[10, 10], [10.01, 10], [10.01, 10.01], [10, 10.01], [10, 10]]
    far.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [square]}}]}))
    page.set_input_files("#area-file", str(far))
    page.locator("#area-coords").wait_for()
    assert "lon 10.00000 to 10.01000, lat 10.00000 to 10.01000" in page.inner_text("#area-coords")
    page.get_by_label("Model", exact=True).select_option("models:/landcover/1")
    page.get_by_role("button", name="Map this area").click()
    page.locator("#map-area-job[data-state=failed]").wait_for(timeout=JOB_TIMEOUT_MS)
    assert "no imagery for that area" in page.inner_text("#map-area-job .job-error")
    assert page.locator("#map-area-legend").count() == 0
