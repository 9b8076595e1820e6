"""The explore page in Chromium against a real platform server: from the project page to ``#/projects/:slug/explore``,
the date slider over the scenes in view (it follows the view as it moves), a recipe, the swipe between two dates
with its divider dragged, and a click on a pixel → the chart and table of its band values and index over time,
equal to what the series API answers for the clicked lon/lat (shown on the page).

The project is the NC sample (a Landsat scene of 2000-05-24) with three dated uploads inside it
(:mod:`explore_support`): four dates over the uploads, one west of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from explore_support import BOX, DATES, SLUG, explore_server, pixel_centre, scene_id
from platform_fixtures import REPO
from platform_server import LiveServer
from test_i12_web import sign_in

pytest.importorskip("playwright")

Page = Any  # playwright.sync_api.Page
NEWEST, OLDEST = scene_id(DATES[-1]), "lsat7_2000"
DOCS_IMG = REPO / "docs" / "img"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, web_dist: Path) -> Iterator[LiveServer]:
    with explore_server(tmp_path_factory.mktemp("explore-web")) as server:
        yield server


def screen(page: Page, lon: float, lat: float) -> tuple[float, float]:
    """The page coordinates of a lon/lat on the explore map."""
    x, y = page.evaluate("([lon, lat]) => { const m = window.eoengineMaps.explore; const p = m.project([lon, lat]);"
                         " const r = m.getCanvas().getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; }",
                         [lon, lat])
    return round(x), round(y)


def jump(page: Page, lon: float, lat: float, zoom: float) -> None:
    """Move the map's view (as a user's pan and zoom would) and wait until it is still."""
    page.evaluate("([lon, lat, zoom]) => window.eoengineMaps.explore.jumpTo({center: [lon, lat], zoom})", [lon, lat, zoom])


def shown(page: Page) -> str:
    return str(page.get_attribute("#explore-date", "data-item"))


def wait_for_tiles(page: Page, tiles: list[str], fragment: str, since: int = 0) -> None:
    """Wait until the page asked for a tile whose URL holds ``fragment`` (the page's waits deliver its events)."""
    deadline = time.monotonic() + 20
    while not any(fragment in u for u in tiles[since:]):
        assert time.monotonic() < deadline, (fragment, tiles[-5:])
        page.wait_for_timeout(100)


def right_half(page: Page) -> bytes:
    """A screenshot of the map's right half (right of the swipe divider's first place)."""
    box = page.locator("#explore-map").bounding_box()
    assert box is not None
    clip = {"x": box["x"] + box["width"] / 2 + 10, "y": box["y"], "width": box["width"] / 2 - 20, "height": box["height"]}
    return bytes(page.screenshot(clip=clip))


def cells(page: Page) -> tuple[list[str], list[list[str]]]:
    """The series table's header and rows."""
    head = page.locator("#series-table th").all_inner_texts()
    rows = [row.locator("td").all_inner_texts() for row in page.locator("#series-table tbody tr").all()]
    return head, rows


def number(text: str) -> float | None:
    return None if text == "—" else float(text.replace(",", ""))


def check_against_api(page: Page, live: LiveServer, asked: str) -> dict[str, Any]:
    """The table and charts show what the series API answers for the request the page made."""
    query = {k: v[0] for k, v in parse_qs(urlparse(asked).query).items()}
    with live.client() as c:
        body = c.get(f"/projects/{SLUG}/imagery/series", params=query).json()
    head, rows = cells(page)
    bands = head[2:-1]
    assert head[-1] == body["index"] and len(rows) == len(body["points"]) >= 1
    for row, point in zip(rows, body["points"], strict=True):
        assert row[:2] == [point["datetime"][:10], point["item"]]
        values = {b["names"][0]: b["value"] for b in point["bands"]}
        assert [number(v) for v in row[2:-1]] == [values.get(b) for b in bands], point["item"]
        want = point["index"]
        assert (number(row[-1]) is None) if want is None else number(row[-1]) == pytest.approx(want, rel=1e-3)
    drawn = page.locator("#series-index-chart path").get_attribute("d") or ""
    assert drawn.count("L") + drawn.count("M") == sum(p["index"] is not None for p in body["points"])
    assert page.locator("#series-band-chart path").evaluate_all("ps => ps.map(p => p.dataset.series)") == bands
    return dict(body)


def test_slider_recipe_swipe_and_pixel_series(live: LiveServer, page: Page, screenshot: Callable[[str], Path]) -> None:
    tiles: list[str] = []
    series: list[str] = []
    page.on("request", lambda r: tiles.append(r.url) if "/tiles/" in r.url else None)
    page.on("request", lambda r: series.append(r.url) if "/imagery/series" in r.url else None)
    sign_in(page, live.url)
    page.goto(f"{live.url}/#/projects/{SLUG}")
    page.locator("#explore-link").click()
    page.wait_for_function("location.hash.endsWith('/explore')")
    page.locator("#explore-date[data-item]").wait_for()

    west, south, east, north = BOX
    jump(page, (west + east) / 2, (south + north) / 2, 14)  # over the uploads: four dates
    page.locator("#explore-date", has_text="(4/4 in view)").wait_for()
    assert shown(page) == NEWEST and DATES[-1][:4] in page.inner_text("#explore-date")
    wait_for_tiles(page, tiles, f"/imagery/{NEWEST}/tiles/")
    page.locator("#explore-slider").focus()
    page.keyboard.press("Home")  # the slider to its oldest date
    page.wait_for_function("(i) => document.querySelector('#explore-date').dataset.item !== i", arg=NEWEST)
    assert shown(page) == OLDEST and "2000-05-24" in page.inner_text("#explore-date")
    wait_for_tiles(page, tiles, f"/imagery/{OLDEST}/tiles/")
    page.keyboard.press("ArrowRight")
    page.locator("#explore-date", has_text=DATES[0][:4]).wait_for()
    assert shown(page) == scene_id(DATES[0])

    jump(page, west - 0.03, (south + north) / 2, 15)  # west of the uploads: the Landsat scene alone
    page.locator("#explore-date", has_text="(1/1 in view)").wait_for()
    assert shown(page) == OLDEST and page.locator("#explore-slider").is_disabled()
    jump(page, (west + east) / 2, (south + north) / 2, 14)
    page.locator("#explore-date", has_text="(1/4 in view)").wait_for()  # the shown date stays while it is in view
    assert shown(page) == OLDEST

    before = len(tiles)
    page.locator("#explore-recipe").select_option("false-color")
    wait_for_tiles(page, tiles, "recipe=false-color", before)

    page.wait_for_function("window.eoengineMaps.explore.areTilesLoaded()")
    page.wait_for_timeout(300)
    unswiped = right_half(page)
    page.locator("#swipe").check()
    page.wait_for_function("() => { const m = window.eoengineMaps.swipe;"
                           " return m && m.loaded() && m.getSource('other-date') && m.areTilesLoaded(); }")
    page.wait_for_timeout(300)
    assert right_half(page) != unswiped  # the other date covers the map right of the divider
    right = page.locator("#explore-other").input_value()
    assert right != shown(page)
    assert page.get_attribute("#swipe-map", "data-item") == right
    wait_for_tiles(page, tiles, f"/imagery/{right}/tiles/")
    page.locator("#explore-other").select_option(NEWEST)
    page.wait_for_function("(i) => document.querySelector('#swipe-map').dataset.item === i", arg=NEWEST)
    handle = page.locator("#swipe-divider").bounding_box()
    assert handle is not None
    start = (handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(start[0] - 200, start[1], steps=5)
    page.mouse.up()
    moved = page.locator("#swipe-divider").bounding_box()
    assert moved is not None and moved["x"] == pytest.approx(handle["x"] - 200, abs=2)
    assert "inset(0px 0px 0px" in (page.eval_on_selector("#swipe-map", "e => e.style.clipPath") or "")

    lon, lat = pixel_centre(20, 28)
    page.mouse.click(*screen(page, lon, lat))
    page.locator("#explore-series[data-state=ready]").wait_for()
    assert series, "the page asked for no series"
    asked = {k: float(v[0]) for k, v in parse_qs(urlparse(series[-1]).query).items() if k in ("lon", "lat")}
    step = (east - west) / 40
    assert abs(asked["lon"] - lon) < step / 2 and abs(asked["lat"] - lat) < step / 2  # the clicked pixel
    assert page.inner_text("#series-point").startswith(f"lon {asked['lon']:.6f}, lat {asked['lat']:.6f}")
    body = check_against_api(page, live, series[-1])
    assert [p["item"] for p in body["points"]] == [OLDEST, *(scene_id(d) for d in DATES)]
    assert "4 scenes" in page.inner_text("#series-point")

    count = len(series)
    page.locator("#explore-index").select_option("NDWI")
    page.wait_for_function("() => [...document.querySelectorAll('#series-table th')].pop()?.textContent === 'NDWI'")
    assert len(series) == count + 1 and "index=NDWI" in series[-1]
    check_against_api(page, live, series[-1])
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS_IMG / "explore.png"))
    screenshot("explore")
