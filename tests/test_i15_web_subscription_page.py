"""The subscription page in Chromium after two real runs (issue 15): the per-class area chart, the map with a time
slider over the runs' maps, the second run's change polygons, the runs' status and drift, and the deliveries.

A live server and worker; the project's static catalog holds the 1999 Landsat scene, the subscription (each new scene,
a package of the project) runs at once; then the 2002 scene is added and "run now" maps it and its change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import saved_package
from jobs_support import make_project, wait_for, worker
from platform_server import LiveServer, live_platform
from test_i12_web import keep, sign_in
from test_i15_server_runs import AREA, S1999, S2002, catalog, finished

pytest.importorskip("playwright")

Page = Any  # playwright.sync_api.Page (imported lazily by the fixtures)


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory, web_dist: Path) -> Iterator[tuple[LiveServer, int]]:
    home = tmp_path_factory.mktemp("web-sub-page") / "home"
    with live_platform(home) as live:
        folder = make_project(live, "watch")
        saved_package(folder / "pkg")
        catalog(folder, [S1999])
        spec = {"name": "landsat", "area": AREA, "model": "pkg", "source": "stac", "cadence": "each-new-scene",
                "start": "1999-01-01T00:00:00Z"}
        with live.client() as c, worker(live.platform.settings, home.parent / "worker.log"):
            made = c.post("/projects/watch/subscriptions", json={"spec": spec})
            assert made.status_code == 201, made.text
            sub = made.json()["id"]
            wait_for(lambda: finished(live, 1), timeout=300, what="the first run")
            catalog(folder, [S1999, S2002])
            assert c.post(f"/projects/watch/subscriptions/{sub}/run").status_code in (200, 201, 202)
            jobs = wait_for(lambda: finished(live, 2), timeout=300, what="the second run")
        assert [j.state for j in jobs] == ["succeeded", "succeeded"], (home.parent / "worker.log").read_text()[-3000:]
        yield live, sub


def test_the_chart_the_maps_and_the_change_after_two_runs(ran: tuple[LiveServer, int], page: Page,
                                                         screenshot: Callable[[str], Path]) -> None:
    live, sub = ran
    with live.client() as c:
        base = f"/projects/watch/subscriptions/{sub}"
        series = c.get(f"{base}/stats").json()["series"]
        runs = c.get(f"{base}/runs").json()
        results = c.get(f"{base}/results").json()
    newest, oldest = results[-1], results[0]
    oldest_scene = next(r for r in runs if r["key"] == oldest["key"])["record"]["newest_scene"][:10]  # 1999-11-18
    tiles: list[str] = []
    page.on("request", lambda r: tiles.append(r.url) if "/tiles/" in r.url else None)
    sign_in(page, live.url)
    page.goto(f"{live.url}/#/projects/watch/subscriptions")
    page.locator(f'#subscription-table span[data-sub="{sub}"] a').click()  # the list links each subscription
    page.wait_for_function(f"location.hash === '#/projects/watch/subscriptions/{sub}'")
    page.locator(f'#run-shown[data-run="{newest["key"]}"]').wait_for()
    # the chart: one line per class the runs measured
    assert page.locator("#subscription-chart path[data-series]").count() == len({r["class"] for r in series})
    # the shown run's hectares are the stats API's
    shown = page.locator("#run-hectares [data-hectares]").evaluate_all("(s) => s.map((x) => Number(x.dataset.hectares))")
    assert shown == [r["hectares"] for r in series if r["run"] == newest["key"]]
    assert "change polygon(s)" in page.locator("#run-shown").inner_text()
    page.wait_for_function("() => window.eoengineMaps?.subscription?.getLayer('run-change-fill') !== undefined")
    wait_for(lambda: any(f"/maps/{newest['map_id']}/tiles/" in t for t in tiles), timeout=30, what="the map's tiles")
    # the slider goes back to the first run: its map, no change polygons
    page.locator("#run-slider").fill("0")
    page.locator(f'#run-shown[data-run="{oldest["key"]}"]').wait_for()
    assert page.locator("#run-date").inner_text() == f"imagery of {oldest_scene}"
    assert page.evaluate("() => window.eoengineMaps.subscription.getLayer('run-change-fill') === undefined")
    wait_for(lambda: any(f"/maps/{oldest['map_id']}/tiles/" in t for t in tiles), timeout=30, what="the first map's tiles")
    # the runs table: both succeeded, the second with its changed hectares
    statuses = page.locator("#subscription-runs [data-run]").evaluate_all("(s) => s.map((x) => x.innerText.trim())")
    assert statuses == [r["status"] for r in runs] == ["succeeded", "succeeded"]
    changed = next(r for r in runs if r["record"]["change"])["record"]["change"]["changed_hectares"]
    assert f"{changed:.2f} ha" in page.locator("#subscription-runs").inner_text()
    page.locator("#run-slider").fill(str(len(results) - 1))
    page.locator(f'#run-shown[data-run="{newest["key"]}"]').wait_for()
    page.wait_for_timeout(800)  # the tiles are drawn
    screenshot("subscription")
    keep(page, "subscription.png")


def test_an_unknown_run_has_no_change(ran: tuple[LiveServer, int]) -> None:
    live, sub = ran
    with live.client() as c:
        missing = c.get(f"/projects/watch/subscriptions/{sub}/runs/nope/change")
        first = c.get(f"/projects/watch/subscriptions/{sub}/runs").json()[-1]
        none = c.get(f"/projects/watch/subscriptions/{sub}/runs/{first['key']}/change")
    assert missing.status_code == 404 and "no run 'nope'" in missing.json()["error"] and missing.json()["fix"]
    assert none.status_code == 404 and "first map" in none.json()["error"]
